"""Remote actions on a charger: what each asks for, how it is checked, and what it sends (an OCPP
JSON payload through the Site, the same as the HTTP API takes)."""

from __future__ import annotations

import base64
import binascii
import math
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from ocpp.v16.enums import (
    AvailabilityType,
    CertificateUse,
    ChargingProfilePurposeType,
    ChargingRateUnitType,
    HashAlgorithm,
    Log,
    MessageTrigger,
    ResetType,
    UpdateType,
)

from ocpp_console.site import CommandError, Site, SiteError
from ocpp_console.timeutil import iso, utcnow


class FieldError(ValueError):
    pass


class FormError(CommandError):
    """The form's values do not make a request (checked across fields): nothing was sent."""

    outcome = "invalid"


async def _add_firmware(site: Site, _charger_id: str, values: dict[str, Any]) -> Any:
    try:
        return await site.add_firmware(values["path"], values["name"])
    except SiteError as exc:
        raise FormError(f"{exc}; nothing was added") from None


@dataclass(frozen=True)
class Field:
    name: str
    label: str
    kind: str = "text"  # text | int | float | money | date | choice | datetime | url | password | pem
    required: bool = False
    choices: tuple[str, ...] = ()
    placeholder: str = ""
    max_length: int | None = None
    minimum: float | None = None
    choices_from: str = ""  # "firmware": the choices are the site's firmware library, read when the form opens

    def parse(self, raw: str) -> Any:
        text = raw.strip()
        if not text:
            if self.required:
                raise FieldError(f"{self.label} is required")
            return None
        if self.kind == "pem":
            text = _pem(self.label, text)
        if self.max_length is not None and len(text) > self.max_length:
            raise FieldError(f"{self.label}: at most {self.max_length} characters")
        if self.kind in ("int", "float"):
            try:
                value: Any = int(text) if self.kind == "int" else float(text)
            except ValueError:
                raise FieldError(f"{self.label}: {text!r} is not a {'whole ' if self.kind == 'int' else ''}number") from None
            if not math.isfinite(value):  # float() takes "nan" and "inf": no field means those
                raise FieldError(f"{self.label}: {text!r} is not a number")
            if self.minimum is not None and value < self.minimum:
                raise FieldError(f"{self.label}: at least {self.minimum:g}")
            return value
        if self.kind == "money":
            try:
                value = Decimal(text.replace(",", "."))
            except InvalidOperation:
                raise FieldError(f"{self.label}: {text!r} is not an amount (e.g. 25.00 or -3.50)") from None
            if not value.is_finite() or value == 0:
                raise FieldError(f"{self.label}: an amount other than 0")
            return value
        if self.kind == "date":
            try:
                return date.fromisoformat(text)
            except ValueError:
                raise FieldError(f"{self.label}: a date like 2026-11-25") from None
        if self.kind == "choice":
            if text not in self.choices:
                raise FieldError(f"{self.label}: one of {', '.join(self.choices)}")
            return text
        if self.kind == "datetime":
            try:
                dt = datetime.fromisoformat(text)
            except ValueError:
                raise FieldError(f"{self.label}: use a date and time like 2026-11-25T14:30") from None
            if dt.tzinfo is None:
                dt = dt.astimezone()  # the operator types local time
            return iso(dt)
        if self.kind == "url":
            if "://" not in text:
                raise FieldError(f"{self.label}: a URL such as ftp://host/path or https://host/file")
            return text
        return text


_PEM_BLOCK = re.compile(r"-----BEGIN ([A-Z0-9 ]+)-----(.*?)-----END \1-----", re.S)


def _is_base64(text: str) -> bool:
    try:
        return bool(base64.b64decode(text, validate=True))
    except (binascii.Error, ValueError):
        return False


def _pem(label: str, text: str) -> str:
    """PEM typed or pasted into one line (an Input keeps only a paste's first line): `\\n` escapes
    become newlines, each block is laid out again (base64 in lines of 64), and a bare base64 body
    becomes one CERTIFICATE block."""
    text = text.replace("\\n", "\n")
    if "-----BEGIN" not in text:
        body = "".join(text.split())
        if not _is_base64(body):
            raise FieldError(f"{label}: PEM text (with \\n for line breaks) or the base64 between its BEGIN and END lines")
        text = f"-----BEGIN CERTIFICATE-----{body}-----END CERTIFICATE-----"
    blocks = list(_PEM_BLOCK.finditer(text))
    if not blocks:
        raise FieldError(f"{label}: a BEGIN line without its END (paste it with \\n for line breaks, "
                         "or only the base64 between them)")
    if _PEM_BLOCK.sub("", text).strip():
        raise FieldError(f"{label}: text outside the BEGIN ... END blocks")
    out = []
    for block in blocks:
        body = "".join(block.group(2).split())
        lines = [body[i : i + 64] for i in range(0, len(body), 64)]
        out.append("\n".join([f"-----BEGIN {block.group(1)}-----", *lines, f"-----END {block.group(1)}-----"]))
    return "\n".join(out) + "\n"


def _request_id() -> str:
    """A default requestId for GetLog and SignedUpdateFirmware: the time, unique enough per operator."""
    return str(int(utcnow().timestamp()))


def _hash_data(values: dict[str, Any]) -> dict[str, str]:
    return {
        "hashAlgorithm": values["hash_algorithm"],
        "issuerNameHash": values["issuer_name_hash"],
        "issuerKeyHash": values["issuer_key_hash"],
        "serialNumber": values["serial_number"],
    }


def _log_parameters(values: dict[str, Any]) -> dict[str, str]:
    log = {"remoteLocation": values["location"]} if values.get("location") else {}  # none: to the central system
    if values.get("oldest"):
        log["oldestTimestamp"] = values["oldest"]
    if values.get("latest"):
        log["latestTimestamp"] = values["latest"]
    return log


def _firmware(values: dict[str, Any]) -> dict[str, str]:
    firmware = {
        "location": values["location"],
        "retrieveDateTime": values["retrieve_date"],
        "signingCertificate": values["signing_certificate"],
        "signature": values["signature"],
    }
    if values.get("install_date"):
        firmware["installDateTime"] = values["install_date"]
    return firmware


Runner = Callable[[Site, str, dict[str, Any]], Awaitable[dict[str, Any]]]


def _operation(action: str, payload: Callable[[dict[str, Any]], dict[str, Any]]) -> Runner:
    """Send OCPP `action` with the payload made from the form's values (fields left empty: absent)."""

    async def run(site: Site, charger_id: str, values: dict[str, Any]) -> dict[str, Any]:
        return await site.operate(charger_id, action, {k: v for k, v in payload(values).items() if v is not None})

    return run


@dataclass(frozen=True)
class ActionSpec:
    key: str
    title: str
    help: str
    fields: tuple[Field, ...]
    run: Runner
    # True: confirm first when a car is charging on this charger; "always": confirm every time
    disturbs: bool | str = False
    defaults: Callable[[dict[str, Any]], dict[str, str]] = field(default=lambda ctx: {})
    # The form's primary button, named after what it does (default: the title, e.g. "Reset")
    button: str = ""

    @property
    def button_label(self) -> str:
        return self.button or BUTTONS.get(self.key) or self.title


def lockout_warning(action: str, values: dict[str, Any]) -> str | None:
    """What to confirm before a change that can lock a charger out (the key is a CiString)."""
    if action != "change_config":
        return None
    key = str(values.get("key") or "").strip().lower()
    if key == "securityprofile":
        profile = str(values.get("value") or "").strip()
        return (
            f"Once the charger accepts SecurityProfile {profile}, it is refused below profile {profile}: it must "
            "already trust our server certificate and use the wss:// address (profile 2), or hold a client "
            "certificate from our CA (profile 3), or it cannot connect again.\n"
            "The way back: ocpp-console chargers add ID --security-profile N (or the HTTP API), "
            "and configure the charger on site."
        )
    if key == "authorizationkey":
        return (
            "The charger's password changes. Both keys are valid until it logs in with the new one; a charger "
            "that stores it wrongly can no longer log in (set a new password with chargers set-password)."
        )
    return None


def _firmware_source(values: dict[str, Any]) -> dict[str, Any]:
    """A library image (the central system fills in its own URL) or the operator's URL, one of them."""
    if values.get("firmware") and values.get("location"):
        raise FormError("choose a library image or give a URL, not both; nothing was sent")
    if values.get("firmware"):
        return {"firmware": values["firmware"], "transferProtocol": values.get("transfer_protocol") or "http"}
    if values.get("location"):
        return {"location": values["location"]}
    raise FormError("choose a library image or give a URL; nothing was sent")


def _now_plus(minutes: int) -> str:
    return (utcnow().astimezone() + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M")


def _local_list(text: str | None) -> list[dict[str, Any]]:
    entries = []
    for part in (text or "").split(","):
        part = part.strip()
        if not part:
            continue
        tag, _, status = part.partition("=")
        entries.append({"idTag": tag.strip(), "idTagInfo": {"status": (status.strip() or "Accepted")}})
    return entries


def _profile(values: dict[str, Any]) -> dict[str, Any]:
    purpose = values["purpose"]
    schedule: dict[str, Any] = {
        "chargingRateUnit": values["unit"],
        "chargingSchedulePeriod": [{"startPeriod": 0, "limit": float(values["limit"])}],
    }
    profile: dict[str, Any] = {
        "chargingProfileId": values["profile_id"],
        "stackLevel": values["stack_level"],
        "chargingProfilePurpose": purpose,
    }
    if purpose == ChargingProfilePurposeType.charge_point_max_profile:
        profile["chargingProfileKind"] = "Absolute"
        schedule["startSchedule"] = iso(utcnow())
    else:
        profile["chargingProfileKind"] = "Relative"
    if values.get("transaction_id") is not None:
        profile["transactionId"] = values["transaction_id"]
    profile["chargingSchedule"] = schedule
    return profile


def _keys(text: str | None) -> list[str] | None:
    keys = [k.strip() for k in (text or "").split(",") if k.strip()]
    return keys or None


# Each form's primary button says what it does.
BUTTONS = {
    "remote_start": "Start transaction", "remote_stop": "Stop transaction", "reset": "Reset charger",
    "unlock": "Unlock connector", "availability": "Change availability", "clear_cache": "Clear cache",
    "trigger": "Trigger message", "get_config": "Get configuration", "change_config": "Set key",
    "update_firmware": "Update firmware", "get_diagnostics": "Request diagnostics", "reserve": "Reserve connector",
    "cancel_reservation": "Cancel reservation", "send_local_list": "Send local list",
    "get_local_list_version": "Get version", "set_profile": "Set charging profile", "clear_profile": "Clear profiles",
    "composite_schedule": "Get schedule", "data_transfer": "Send data", "install_certificate": "Install certificate",
    "installed_certificates": "List certificates", "delete_certificate": "Delete certificate",
    "certificate_signed": "Send certificate", "extended_trigger": "Trigger message",
    "renew_certificate": "Request new certificate", "install_operator_ca": "Install our CA",
    "get_log": "Request log", "signed_update_firmware": "Update firmware",
}

CONNECTOR = Field("connector_id", "Connector", "int", minimum=0)
ID_TAG = Field("id_tag", "Id tag", required=True, max_length=20, placeholder="e.g. RFID-0001")
CERTIFICATE_USE = Field("certificate_type", "Certificate type", "choice", required=True,
                        choices=tuple(u.value for u in CertificateUse))
PEM_HINT = "-----BEGIN CERTIFICATE-----\\nMIIB...\\n-----END CERTIFICATE----- (or only the base64)"
# MessageTrigger serves both triggers in ocpp 2.1.0; DiagnosticsStatusNotification is TriggerMessage's only.
EXTENDED_TRIGGERS = tuple(m.value for m in MessageTrigger if m != MessageTrigger.diagnostics_status_notification)

ACTIONS: tuple[ActionSpec, ...] = (
    ActionSpec(
        "remote_start", "Remote Start", "Ask the charger to start a transaction for an id tag.",
        (ID_TAG, Field("connector_id", "Connector", "int", minimum=1)),
        _operation("RemoteStartTransaction", lambda v: {"idTag": v["id_tag"], "connectorId": v["connector_id"]}),
        defaults=lambda ctx: {"connector_id": str(ctx.get("free_connector") or 1)},  # not the busy one
    ),
    ActionSpec(
        "remote_stop", "Remote Stop", "Stop a running transaction.",
        (Field("transaction_id", "Transaction", "int", required=True, minimum=1),),
        _operation("RemoteStopTransaction", lambda v: {"transactionId": v["transaction_id"]}),
        disturbs="always",
        defaults=lambda ctx: {"transaction_id": str(ctx.get("transaction_id") or "")},
    ),
    ActionSpec(
        "reset", "Reset", "Reboot the charger; running transactions are stopped.",
        (Field("type", "Type", "choice", required=True, choices=(ResetType.soft.value, ResetType.hard.value)),),
        _operation("Reset", lambda v: {"type": v["type"]}),
        disturbs=True,
        defaults=lambda ctx: {"type": ResetType.soft.value},
    ),
    ActionSpec(
        "unlock", "Unlock Connector", "Release the cable lock of a connector (stops its transaction).",
        (Field("connector_id", "Connector", "int", required=True, minimum=1),),
        _operation("UnlockConnector", lambda v: {"connectorId": v["connector_id"]}),
        disturbs=True,
        defaults=lambda ctx: {"connector_id": str(ctx.get("free_connector") or 1)},  # not the busy one
    ),
    ActionSpec(
        "availability", "Change Availability", "Make a connector (0: the whole charger) operative or inoperative.",
        (
            Field("connector_id", "Connector (0 = all)", "int", required=True, minimum=0),
            Field("type", "Availability", "choice", required=True,
                  choices=(AvailabilityType.operative.value, AvailabilityType.inoperative.value)),
        ),
        _operation("ChangeAvailability", lambda v: {"connectorId": v["connector_id"], "type": v["type"]}),
        disturbs=True,
        defaults=lambda ctx: {"connector_id": "0", "type": AvailabilityType.inoperative.value},
    ),
    ActionSpec(
        "clear_cache", "Clear Cache", "Empty the charger's authorization cache.", (),
        _operation("ClearCache", lambda v: {}),
    ),
    ActionSpec(
        "trigger", "Trigger Message", "Ask the charger to send a message now.",
        (
            Field("requested_message", "Message", "choice", required=True, choices=tuple(m.value for m in MessageTrigger)),
            Field("connector_id", "Connector (optional)", "int", minimum=0),
        ),
        _operation("TriggerMessage", lambda v: {"requestedMessage": v["requested_message"], "connectorId": v["connector_id"]}),
        defaults=lambda ctx: {"requested_message": MessageTrigger.status_notification.value},
    ),
    ActionSpec(
        "get_config", "Get Configuration", "Fetch configuration keys (empty: all of them).",
        (Field("keys", "Keys (comma-separated, optional)"),),
        _operation("GetConfiguration", lambda v: {"key": _keys(v["keys"])}),
    ),
    ActionSpec(
        "change_config", "Change Configuration", "Set one configuration key.",
        (Field("key", "Key", required=True, max_length=50), Field("value", "Value", required=True, max_length=500)),
        _operation("ChangeConfiguration", lambda v: {"key": v["key"], "value": v["value"]}),
        defaults=lambda ctx: {k: str(ctx[k]) for k in ("key", "value") if ctx.get(k) is not None},
    ),
    ActionSpec(
        "update_firmware", "Update Firmware", "Have the charger download and install firmware: an image of the "
        "site's library (served by the central system, on the address the charger reaches it by), or a URL.",
        (
            Field("firmware", "Library image", "choice", choices_from="firmware"),
            Field("location", "or Location URL", "url", placeholder="https://host/firmware-2.0.0.bin"),
            Field("transfer_protocol", "Served by (library image)", "choice", choices=("http", "ftp")),
            Field("retrieve_date", "Retrieve at", "datetime", required=True),
            Field("retries", "Retries", "int", minimum=0),
            Field("retry_interval", "Retry interval (s)", "int", minimum=0),
        ),
        _operation("UpdateFirmware", lambda v: {**_firmware_source(v), "retrieveDate": v["retrieve_date"],
                                                "retries": v["retries"], "retryInterval": v["retry_interval"]}),
        defaults=lambda ctx: {"retrieve_date": _now_plus(0), "transfer_protocol": "http"},
    ),
    ActionSpec(
        "add_firmware", "Add Firmware Image", "Copy an image file on the central system's machine into the "
        "firmware library (with its size and SHA-256), to send with Update Firmware.",
        (Field("path", "File path", required=True, placeholder="/home/me/Downloads/firmware-2.0.0.bin"),
         Field("name", "Name in the library (optional)")),
        _add_firmware,
    ),
    ActionSpec(
        "get_diagnostics", "Get Diagnostics", "Have the charger upload a diagnostics file.",
        (
            Field("location", "Upload URL (empty: to the central system)", "url", placeholder="ftp://host/diagnostics/"),
            Field("start_time", "From (optional)", "datetime"),
            Field("stop_time", "To (optional)", "datetime"),
        ),
        _operation("GetDiagnostics", lambda v: {"location": v["location"], "startTime": v["start_time"],
                                                "stopTime": v["stop_time"]}),
    ),
    ActionSpec(
        "reserve", "Reserve Now", "Reserve a connector for an id tag until the expiry time.",
        (Field("connector_id", "Connector", "int", required=True, minimum=0), ID_TAG,
         Field("expiry_date", "Expires at", "datetime", required=True)),
        # no reservationId: the site takes the next free one, and its answer carries it
        _operation("ReserveNow", lambda v: {"connectorId": v["connector_id"], "idTag": v["id_tag"],
                                            "expiryDate": v["expiry_date"]}),
        defaults=lambda ctx: {"connector_id": str(ctx.get("free_connector") or 1), "expiry_date": _now_plus(30)},
    ),
    ActionSpec(
        "cancel_reservation", "Cancel Reservation", "Cancel a reservation by its id.",
        (Field("reservation_id", "Reservation", "int", required=True, minimum=0),),
        _operation("CancelReservation", lambda v: {"reservationId": v["reservation_id"]}),
    ),
    ActionSpec(
        "send_local_list", "Send Local List", "Send the charger a local authorization list.",
        (
            Field("list_version", "Version", "int", required=True, minimum=1),
            Field("update_type", "Update", "choice", required=True, choices=(UpdateType.full.value, UpdateType.differential.value)),
            Field("entries", "Entries: TAG[=Status], ...", placeholder="RFID-1, RFID-2=Blocked"),
        ),
        _operation("SendLocalList", lambda v: {"listVersion": v["list_version"], "updateType": v["update_type"],
                                               "localAuthorizationList": _local_list(v["entries"])}),
        defaults=lambda ctx: {"list_version": str((ctx.get("local_list_version") or 0) + 1), "update_type": UpdateType.full.value},
    ),
    ActionSpec(
        "get_local_list_version", "Get Local List Version", "Ask which local list version the charger holds.", (),
        _operation("GetLocalListVersion", lambda v: {}),
    ),
    ActionSpec(
        "set_profile", "Set Charging Profile", "Limit charging power with a charging profile.",
        (
            Field("connector_id", "Connector (0 = charger)", "int", required=True, minimum=0),
            Field("purpose", "Purpose", "choice", required=True, choices=tuple(p.value for p in ChargingProfilePurposeType)),
            Field("profile_id", "Profile id", "int", required=True, minimum=1),
            Field("stack_level", "Stack level", "int", required=True, minimum=0),
            Field("limit", "Limit", "float", required=True, minimum=0),
            Field("unit", "Unit", "choice", required=True, choices=(ChargingRateUnitType.watts.value, ChargingRateUnitType.amps.value)),
            Field("transaction_id", "Transaction (TxProfile only)", "int", minimum=1),
        ),
        _operation("SetChargingProfile", lambda v: {"connectorId": v["connector_id"], "csChargingProfiles": _profile(v)}),
        disturbs=True,
        defaults=lambda ctx: {
            "connector_id": "0", "purpose": ChargingProfilePurposeType.tx_default_profile.value, "profile_id": "1",
            "stack_level": "0", "limit": "7400", "unit": ChargingRateUnitType.watts.value,
        },
    ),
    ActionSpec(
        "clear_profile", "Clear Charging Profile", "Remove charging profiles (empty fields: all).",
        (
            Field("id", "Profile id", "int", minimum=0),
            Field("connector_id", "Connector", "int", minimum=0),
            Field("purpose", "Purpose", "choice", choices=tuple(p.value for p in ChargingProfilePurposeType)),
            Field("stack_level", "Stack level", "int", minimum=0),
        ),
        _operation("ClearChargingProfile", lambda v: {"id": v["id"], "connectorId": v["connector_id"],
                                                      "chargingProfilePurpose": v["purpose"], "stackLevel": v["stack_level"]}),
    ),
    ActionSpec(
        "composite_schedule", "Get Composite Schedule", "Ask what power the charger will allow over a period.",
        (
            Field("connector_id", "Connector", "int", required=True, minimum=0),
            Field("duration", "Duration (s)", "int", required=True, minimum=1),
            Field("unit", "Unit (optional)", "choice", choices=(ChargingRateUnitType.watts.value, ChargingRateUnitType.amps.value)),
        ),
        _operation("GetCompositeSchedule", lambda v: {"connectorId": v["connector_id"], "duration": v["duration"],
                                                      "chargingRateUnit": v["unit"]}),
        defaults=lambda ctx: {"connector_id": str(ctx.get("connector_id") or 1), "duration": "3600"},
    ),
    ActionSpec(
        "data_transfer", "Data Transfer", "Send vendor-specific data.",
        (Field("vendor_id", "Vendor id", required=True, max_length=255), Field("message_id", "Message id", max_length=50),
         Field("data", "Data")),
        _operation("DataTransfer", lambda v: {"vendorId": v["vendor_id"], "messageId": v["message_id"], "data": v["data"]}),
    ),
    # -- the security extension (OCPP 1.6 security whitepaper) --
    ActionSpec(
        "install_certificate", "Install Certificate", "Install a root certificate on the charger.",
        (CERTIFICATE_USE, Field("certificate", "Certificate (PEM)", "pem", required=True, max_length=5500,
                                placeholder=PEM_HINT)),
        _operation("InstallCertificate", lambda v: {"certificateType": v["certificate_type"], "certificate": v["certificate"]}),
        defaults=lambda ctx: {"certificate_type": CertificateUse.central_system_root_certificate.value},
    ),
    ActionSpec(
        "installed_certificates", "Get Installed Certificates", "List the root certificates of one type (hashes in the message log).",
        (CERTIFICATE_USE,),
        _operation("GetInstalledCertificateIds", lambda v: {"certificateType": v["certificate_type"]}),
        defaults=lambda ctx: {"certificate_type": CertificateUse.central_system_root_certificate.value},
    ),
    ActionSpec(
        "delete_certificate", "Delete Certificate", "Remove an installed certificate, named by its hash data.",
        (
            Field("hash_algorithm", "Hash algorithm", "choice", required=True, choices=tuple(h.value for h in HashAlgorithm)),
            Field("issuer_name_hash", "Issuer name hash", required=True, max_length=128),
            Field("issuer_key_hash", "Issuer key hash", required=True, max_length=128),
            Field("serial_number", "Serial number", required=True, max_length=40),
        ),
        _operation("DeleteCertificate", lambda v: {"certificateHashData": _hash_data(v)}),
        disturbs="always",  # a charger without its central system's root certificate cannot connect over TLS
        defaults=lambda ctx: {"hash_algorithm": HashAlgorithm.sha256.value},
    ),
    ActionSpec(
        "certificate_signed", "Certificate Signed", "Send the charger its signed certificate (chain).",
        (Field("certificate_chain", "Certificate chain (PEM)", "pem", required=True, max_length=10000,
               placeholder=PEM_HINT),),
        _operation("CertificateSigned", lambda v: {"certificateChain": v["certificate_chain"]}),
    ),
    ActionSpec(
        "extended_trigger", "Extended Trigger Message", "Ask the charger to send a message now (security extension).",
        (
            Field("requested_message", "Message", "choice", required=True, choices=EXTENDED_TRIGGERS),
            Field("connector_id", "Connector (optional)", "int", minimum=0),
        ),
        _operation("ExtendedTriggerMessage", lambda v: {"requestedMessage": v["requested_message"],
                                                        "connectorId": v["connector_id"]}),
        defaults=lambda ctx: {"requested_message": MessageTrigger.log_status_notification.value},
    ),
    ActionSpec(
        "renew_certificate", "Renew Certificate",
        "Ask the charger for a new certificate signing request; the operator CA signs it and sends the certificate.",
        (),
        # a new certificate signing request; the operator CA signs it when it comes
        _operation("ExtendedTriggerMessage",
                   lambda v: {"requestedMessage": MessageTrigger.sign_charge_point_certificate.value}),
    ),
    ActionSpec(
        "install_operator_ca", "Install Our CA",
        "Install the operator CA's certificate on the charger as its central system root certificate.",
        (),
        lambda site, cp, v: site.install_operator_ca(cp),
    ),
    ActionSpec(
        "get_log", "Get Log", "Have the charger upload its diagnostics or security log.",
        (
            Field("log_type", "Log", "choice", required=True, choices=tuple(t.value for t in Log)),
            Field("location", "Upload URL (empty: to the central system)", "url", max_length=512,
                  placeholder="ftp://host/logs/"),
            Field("request_id", "Request id", "int", required=True),
            Field("oldest", "From (optional)", "datetime"),
            Field("latest", "To (optional)", "datetime"),
        ),
        _operation("GetLog", lambda v: {"logType": v["log_type"], "requestId": v["request_id"], "log": _log_parameters(v)}),
        defaults=lambda ctx: {"log_type": Log.security_log.value, "request_id": _request_id()},
    ),
    ActionSpec(
        "signed_update_firmware", "Signed Update Firmware", "Have the charger download, verify and install signed firmware.",
        (
            Field("location", "Location URL", "url", required=True, max_length=512, placeholder="https://host/firmware-2.0.0.bin"),
            Field("retrieve_date", "Retrieve at", "datetime", required=True),
            Field("install_date", "Install at (optional)", "datetime"),
            Field("signing_certificate", "Signing certificate (PEM)", "pem", required=True, max_length=5500,
                  placeholder=PEM_HINT),
            Field("signature", "Signature (base64)", required=True, max_length=800),
            Field("request_id", "Request id", "int", required=True),
        ),
        _operation("SignedUpdateFirmware", lambda v: {"requestId": v["request_id"], "firmware": _firmware(v)}),
        defaults=lambda ctx: {"retrieve_date": _now_plus(0), "request_id": _request_id()},
    ),
)

ACTIONS_BY_KEY = {a.key: a for a in ACTIONS}


def describe_result(result: Any) -> str:
    """A one-line summary of a charger's answer for a notification."""
    if result is None:
        return "done"
    fields = result if isinstance(result, dict) else vars(result)  # OCPP JSON, or an ocpp call_result
    values = {k: v for k, v in fields.items() if v not in (None, [], {})}
    if "status" in values and len(values) == 1:
        return str(values["status"])
    parts = []
    for key, value in values.items():
        text = _certificates(value) or str(value)
        parts.append(f"{key}={text if len(text) < 60 else text[:57] + '...'}")
    return ", ".join(parts) or "done"


def _certificates(value: Any) -> str | None:
    """Certificate hash data by serial number, the part an engineer can match with the certificate
    (the whole hashes are in the message log)."""
    if not isinstance(value, list) or not value or not all(isinstance(v, dict) and _serial(v) is not None for v in value):
        return None
    return f"{len(value)} (serial {', '.join(str(_serial(v)) for v in value)})"


def _serial(hash_data: dict[str, Any]) -> Any:
    return hash_data.get("serial_number", hash_data.get("serialNumber"))


def _form_only(key: str, title: str, help: str, fields: tuple[Field, ...], button: str) -> ActionSpec:
    """A form that is not a charger operation (the app acts on its values itself)."""

    async def nothing(site: Site, charger_id: str, values: dict[str, Any]) -> dict[str, Any]:
        return {}

    return ActionSpec(key, title, help, fields, nothing, button=button)


WALLET_FORM = _form_only(
    "wallet", "Wallet movement", "Top up, refund or adjust the wallet this id tag spends (a fleet tag: its parent's).",
    (
        Field("amount", "Amount (negative to take money out)", "money", required=True, placeholder="25.00"),
        Field("kind", "Kind", "choice", required=True, choices=("topup", "refund", "adjustment")),
        Field("reason", "Reason", required=True, max_length=200, placeholder="cash at the depot office"),
    ),
    "Record movement",
)
EXPORT_FORM = _form_only(
    "export", "Export CSV", "Write a CSV file (days in local time; empty: everything).",
    (
        Field("path", "File", required=True),
        Field("first", "From day (optional)", "date", placeholder="2026-11-01"),
        Field("last", "To day (optional)", "date", placeholder="2026-11-30"),
    ),
    "Write CSV",
)

PASSWORD_FORM = _form_only(
    "password", "Charger password",
    "The password (AuthorizationKey) this charger gives with HTTP Basic; kept only as a salted hash. "
    "Empty: remove it (then only security profile 0 lets the charger in).",
    (Field("password", "Password, 16 to 40 characters", "password", max_length=40),),
    "Save password",
)

SITE_LIMIT_FORM = _form_only(
    "site_limit", "Set site limit",
    "The grid connection the running sessions share, in kW; the chargers get their new shares at once. "
    "Empty: load management off (our profiles are cleared, each car charges at its charger's maximum).",
    (Field("limit_kw", "Site limit in kW (empty: off)", "float", minimum=0.1, placeholder="40"),),
    "Set limit",
)
