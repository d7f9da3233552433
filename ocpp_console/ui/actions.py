"""Remote actions on a charger: what each asks for, how it is checked, and what it sends."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from ocpp.v16.enums import (
    AvailabilityType,
    ChargingProfilePurposeType,
    ChargingRateUnitType,
    MessageTrigger,
    ResetType,
    UpdateType,
)

from ocpp_console.csms.commands import Commands
from ocpp_console.timeutil import iso, utcnow


class FieldError(ValueError):
    pass


@dataclass(frozen=True)
class Field:
    name: str
    label: str
    kind: str = "text"  # text | int | float | money | date | choice | datetime | url | password
    required: bool = False
    choices: tuple[str, ...] = ()
    placeholder: str = ""
    max_length: int | None = None
    minimum: float | None = None

    def parse(self, raw: str) -> Any:
        text = raw.strip()
        if not text:
            if self.required:
                raise FieldError(f"{self.label} is required")
            return None
        if self.max_length is not None and len(text) > self.max_length:
            raise FieldError(f"{self.label}: at most {self.max_length} characters")
        if self.kind in ("int", "float"):
            try:
                value: Any = int(text) if self.kind == "int" else float(text)
            except ValueError:
                raise FieldError(f"{self.label}: {text!r} is not a {'whole ' if self.kind == 'int' else ''}number") from None
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


Runner = Callable[[Commands, str, dict[str, Any]], Awaitable[Any]]


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


CONNECTOR = Field("connector_id", "Connector", "int", minimum=0)
ID_TAG = Field("id_tag", "Id tag", required=True, max_length=20, placeholder="e.g. RFID-0001")

ACTIONS: tuple[ActionSpec, ...] = (
    ActionSpec(
        "remote_start", "Remote Start", "Ask the charger to start a transaction for an id tag.",
        (ID_TAG, Field("connector_id", "Connector", "int", minimum=1)),
        lambda c, cp, v: c.remote_start_transaction(cp, v["id_tag"], v["connector_id"]),
        defaults=lambda ctx: {"connector_id": str(ctx.get("connector_id") or 1)},
    ),
    ActionSpec(
        "remote_stop", "Remote Stop", "Stop a running transaction.",
        (Field("transaction_id", "Transaction", "int", required=True, minimum=1),),
        lambda c, cp, v: c.remote_stop_transaction(cp, v["transaction_id"]),
        disturbs="always",
        defaults=lambda ctx: {"transaction_id": str(ctx.get("transaction_id") or "")},
    ),
    ActionSpec(
        "reset", "Reset", "Reboot the charger; running transactions are stopped.",
        (Field("type", "Type", "choice", required=True, choices=(ResetType.soft.value, ResetType.hard.value)),),
        lambda c, cp, v: c.reset(cp, ResetType(v["type"])),
        disturbs=True,
        defaults=lambda ctx: {"type": ResetType.soft.value},
    ),
    ActionSpec(
        "unlock", "Unlock Connector", "Release the cable lock of a connector (stops its transaction).",
        (Field("connector_id", "Connector", "int", required=True, minimum=1),),
        lambda c, cp, v: c.unlock_connector(cp, v["connector_id"]),
        disturbs=True,
        defaults=lambda ctx: {"connector_id": str(ctx.get("connector_id") or 1)},
    ),
    ActionSpec(
        "availability", "Change Availability", "Make a connector (0: the whole charger) operative or inoperative.",
        (
            Field("connector_id", "Connector (0 = all)", "int", required=True, minimum=0),
            Field("type", "Availability", "choice", required=True,
                  choices=(AvailabilityType.operative.value, AvailabilityType.inoperative.value)),
        ),
        lambda c, cp, v: c.change_availability(cp, v["connector_id"], AvailabilityType(v["type"])),
        disturbs=True,
        defaults=lambda ctx: {"connector_id": "0", "type": AvailabilityType.inoperative.value},
    ),
    ActionSpec(
        "clear_cache", "Clear Cache", "Empty the charger's authorization cache.", (),
        lambda c, cp, v: c.clear_cache(cp),
    ),
    ActionSpec(
        "trigger", "Trigger Message", "Ask the charger to send a message now.",
        (
            Field("requested_message", "Message", "choice", required=True, choices=tuple(m.value for m in MessageTrigger)),
            Field("connector_id", "Connector (optional)", "int", minimum=0),
        ),
        lambda c, cp, v: c.trigger_message(cp, MessageTrigger(v["requested_message"]), v["connector_id"]),
        defaults=lambda ctx: {"requested_message": MessageTrigger.status_notification.value},
    ),
    ActionSpec(
        "get_config", "Get Configuration", "Fetch configuration keys (empty: all of them).",
        (Field("keys", "Keys (comma-separated, optional)"),),
        lambda c, cp, v: c.get_configuration(cp, _keys(v["keys"])),
    ),
    ActionSpec(
        "change_config", "Change Configuration", "Set one configuration key.",
        (Field("key", "Key", required=True, max_length=50), Field("value", "Value", required=True, max_length=500)),
        lambda c, cp, v: c.change_configuration(cp, v["key"], v["value"]),
        defaults=lambda ctx: {k: str(ctx[k]) for k in ("key", "value") if ctx.get(k) is not None},
    ),
    ActionSpec(
        "update_firmware", "Update Firmware", "Have the charger download and install firmware.",
        (
            Field("location", "Location URL", "url", required=True, placeholder="https://host/firmware-2.0.0.bin"),
            Field("retrieve_date", "Retrieve at", "datetime", required=True),
            Field("retries", "Retries", "int", minimum=0),
            Field("retry_interval", "Retry interval (s)", "int", minimum=0),
        ),
        lambda c, cp, v: c.update_firmware(cp, v["location"], v["retrieve_date"], v["retries"], v["retry_interval"]),
        defaults=lambda ctx: {"retrieve_date": _now_plus(0)},
    ),
    ActionSpec(
        "get_diagnostics", "Get Diagnostics", "Have the charger upload a diagnostics file.",
        (
            Field("location", "Upload URL", "url", required=True, placeholder="ftp://host/diagnostics/"),
            Field("start_time", "From (optional)", "datetime"),
            Field("stop_time", "To (optional)", "datetime"),
        ),
        lambda c, cp, v: c.get_diagnostics(cp, v["location"], start_time=v["start_time"], stop_time=v["stop_time"]),
    ),
    ActionSpec(
        "reserve", "Reserve Now", "Reserve a connector for an id tag until the expiry time.",
        (Field("connector_id", "Connector", "int", required=True, minimum=0), ID_TAG,
         Field("expiry_date", "Expires at", "datetime", required=True)),
        lambda c, cp, v: c.reserve_now(cp, v["connector_id"], v["id_tag"], v["expiry_date"]),
        defaults=lambda ctx: {"connector_id": str(ctx.get("connector_id") or 1), "expiry_date": _now_plus(30)},
    ),
    ActionSpec(
        "cancel_reservation", "Cancel Reservation", "Cancel a reservation by its id.",
        (Field("reservation_id", "Reservation", "int", required=True, minimum=0),),
        lambda c, cp, v: c.cancel_reservation(cp, v["reservation_id"]),
    ),
    ActionSpec(
        "send_local_list", "Send Local List", "Send the charger a local authorization list.",
        (
            Field("list_version", "Version", "int", required=True, minimum=1),
            Field("update_type", "Update", "choice", required=True, choices=(UpdateType.full.value, UpdateType.differential.value)),
            Field("entries", "Entries: TAG[=Status], ...", placeholder="RFID-1, RFID-2=Blocked"),
        ),
        lambda c, cp, v: c.send_local_list(cp, v["list_version"], UpdateType(v["update_type"]), _local_list(v["entries"])),
        defaults=lambda ctx: {"list_version": str((ctx.get("local_list_version") or 0) + 1), "update_type": UpdateType.full.value},
    ),
    ActionSpec(
        "get_local_list_version", "Get Local List Version", "Ask which local list version the charger holds.", (),
        lambda c, cp, v: c.get_local_list_version(cp),
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
        lambda c, cp, v: c.set_charging_profile(cp, v["connector_id"], _profile(v)),
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
        lambda c, cp, v: c.clear_charging_profile(
            cp, v["id"], v["connector_id"], ChargingProfilePurposeType(v["purpose"]) if v["purpose"] else None, v["stack_level"]
        ),
    ),
    ActionSpec(
        "composite_schedule", "Get Composite Schedule", "Ask what power the charger will allow over a period.",
        (
            Field("connector_id", "Connector", "int", required=True, minimum=0),
            Field("duration", "Duration (s)", "int", required=True, minimum=1),
            Field("unit", "Unit (optional)", "choice", choices=(ChargingRateUnitType.watts.value, ChargingRateUnitType.amps.value)),
        ),
        lambda c, cp, v: c.get_composite_schedule(
            cp, v["connector_id"], v["duration"], ChargingRateUnitType(v["unit"]) if v["unit"] else None
        ),
        defaults=lambda ctx: {"connector_id": str(ctx.get("connector_id") or 1), "duration": "3600"},
    ),
    ActionSpec(
        "data_transfer", "Data Transfer", "Send vendor-specific data.",
        (Field("vendor_id", "Vendor id", required=True, max_length=255), Field("message_id", "Message id", max_length=50),
         Field("data", "Data")),
        lambda c, cp, v: c.data_transfer(cp, v["vendor_id"], v["message_id"], v["data"]),
    ),
)

ACTIONS_BY_KEY = {a.key: a for a in ACTIONS}


def describe_result(result: Any) -> str:
    """A one-line summary of a charger's answer for a notification."""
    if result is None:
        return "done"
    values = {k: v for k, v in vars(result).items() if v not in (None, [], {})}
    if "status" in values and len(values) == 1:
        return str(values["status"])
    parts = []
    for key, value in values.items():
        text = str(value)
        parts.append(f"{key}={text if len(text) < 60 else text[:57] + '...'}")
    return ", ".join(parts) or "done"


def _form_only(key: str, title: str, help: str, fields: tuple[Field, ...]) -> ActionSpec:
    """A form that is not a charger operation (the app acts on its values itself)."""

    async def nothing(commands: Commands, charger_id: str, values: dict[str, Any]) -> None:
        return None

    return ActionSpec(key, title, help, fields, nothing)


WALLET_FORM = _form_only(
    "wallet", "Wallet movement", "Top up, refund or adjust the wallet this id tag spends (a fleet tag: its parent's).",
    (
        Field("amount", "Amount (negative to take money out)", "money", required=True, placeholder="25.00"),
        Field("kind", "Kind", "choice", required=True, choices=("topup", "refund", "adjustment")),
        Field("reason", "Reason", required=True, max_length=200, placeholder="cash at the depot office"),
    ),
)
EXPORT_FORM = _form_only(
    "export", "Export CSV", "Write a CSV file (days in local time; empty: everything).",
    (
        Field("path", "File", required=True),
        Field("first", "From day (optional)", "date", placeholder="2026-11-01"),
        Field("last", "To day (optional)", "date", placeholder="2026-11-30"),
    ),
)

PASSWORD_FORM = _form_only(
    "password", "Charger password",
    "The password (AuthorizationKey) this charger gives with HTTP Basic; kept only as a salted hash. "
    "Empty: remove it (then only security profile 0 lets the charger in).",
    (Field("password", "Password, 16 to 40 characters", "password", max_length=40),),
)
