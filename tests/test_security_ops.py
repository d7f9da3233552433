"""The security extension's central-system operations (OCPP 1.6 security whitepaper), sent with
Commands to the built-in simulator over real sockets: answers, follow-up notifications, and every
frame of them checked against the official schemas."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from ocpp.v16.enums import (
    CertificateSignedStatus,
    CertificateStatus,
    CertificateUse,
    DeleteCertificateStatus,
    GetInstalledCertificateStatus,
    Log,
    LogStatus,
    MessageTrigger,
    TriggerMessageStatus,
    UpdateFirmwareStatus,
)
from textual.widgets import Input

from ocpp_console.csms import CentralSystem, InvalidCommand
from ocpp_console.csms import events as evs
from ocpp_console.csms.protocol import to_camel
from ocpp_console.site.local import LocalSite
from ocpp_console.sim.security import certificate_hash_data, pem_certificates
from ocpp_console.timeutil import iso, utcnow
from ocpp_console.ui.actions import ACTIONS_BY_KEY, Field, FieldError
from ocpp_console.ui.screens.modals import ActionForm
from tests.conftest import Console, EventWaiter
from tests.schemas import validator
from tests.test_sim import base_url, fast_options, file_server, fresh, running  # noqa: F401 - a fixture
from tests.test_ui import SIZE as UI_SIZE
from tests.test_ui import until as ui_until

# Self-signed EC certificates made with openssl; the expected identifiers are what
# `openssl ocsp -issuer X.pem -cert X.pem -sha256 -req_text` prints for them.
CENTRAL_ROOT = """-----BEGIN CERTIFICATE-----
MIIBszCCAVigAwIBAgIFC63A/+4wCgYIKoZIzj0EAwIwNTEZMBcGA1UECgwQRXhh
bXBsZSBPcGVyYXRvcjEYMBYGA1UEAwwPRXhhbXBsZSBSb290IENBMCAXDTI2MTEy
NTEwNDk1MloYDzIxMjYxMTAxMTA0OTUyWjA1MRkwFwYDVQQKDBBFeGFtcGxlIE9w
ZXJhdG9yMRgwFgYDVQQDDA9FeGFtcGxlIFJvb3QgQ0EwWTATBgcqhkjOPQIBBggq
hkjOPQMBBwNCAASzmlD3YHvUD3ErmNWJ2zP0TUnWb/4xpe3fEA/T6GCjH4snGwBL
BlJjo4xV61VJG7GO0k5dlW8oJ2HxrwwdLKSmo1MwUTAdBgNVHQ4EFgQUYe20NfvZ
CEJ2WZ8wc3Kx82tQnsEwHwYDVR0jBBgwFoAUYe20NfvZCEJ2WZ8wc3Kx82tQnsEw
DwYDVR0TAQH/BAUwAwEB/zAKBggqhkjOPQQDAgNJADBGAiEA63G6Z4tbYULbYSbb
+7WNgKoNxpEf6Ehyn5hs4bSy5gkCIQC0SbWNZngZCM9xpDnOWawqsIJUTz1IzTaQ
Dbjx32zORA==
-----END CERTIFICATE-----
"""
CENTRAL_ROOT_IDS = {
    "hash_algorithm": "SHA256",
    "issuer_name_hash": "aeb98f06f0b2fefc75c69502285fa5925d5b069d75785095ac7af50b9e46efa0",
    "issuer_key_hash": "9ffd142ff0237d3efd2ee424b884994c57613e7bce2863bf684bd807b96d3eef",
    "serial_number": "badc0ffee",
}
MANUFACTURER_ROOT = """-----BEGIN CERTIFICATE-----
MIIBvDCCAWKgAwIBAgIBATAKBggqhkjOPQQDAjA8MRYwFAYDVQQKDA1FeGFtcGxl
IE1ha2VyMSIwIAYDVQQDDBlFeGFtcGxlIE1hbnVmYWN0dXJlciBSb290MCAXDTI2
MTEyNTEwNDk1NVoYDzIxMjYxMTAxMTA0OTU1WjA8MRYwFAYDVQQKDA1FeGFtcGxl
IE1ha2VyMSIwIAYDVQQDDBlFeGFtcGxlIE1hbnVmYWN0dXJlciBSb290MFkwEwYH
KoZIzj0CAQYIKoZIzj0DAQcDQgAEjszH7uspRMa+Bv7H8KTzTx6jThGC3ccJS70+
btzAFKLmKc9H405D+5vzJitHXXHub67sFdZMNEb+LbBS6hN9EqNTMFEwHQYDVR0O
BBYEFC8nwjSazW3FMFsO4WBka+EZGdlbMB8GA1UdIwQYMBaAFC8nwjSazW3FMFsO
4WBka+EZGdlbMA8GA1UdEwEB/wQFMAMBAf8wCgYIKoZIzj0EAwIDSAAwRQIhAMdH
7BQx77qQgWZB1Pfd5I0gOq1abOwnjuJajG6ycVUZAiA8mXWsGKNfk3j26d495AWy
ZpPEcg2bAfEZjQ8ZVSm4Ng==
-----END CERTIFICATE-----
"""
# The same certificate named with SHA384, upper-case hex and a serial with its leading zero, as
# `openssl ocsp -sha384` prints it: the charger must still find it.
MANUFACTURER_ROOT_SHA384 = {
    "hashAlgorithm": "SHA384",
    "issuerNameHash": "CEBACA341EE113669E0DF3C135DB21A435AD4987589A605D4C78D864D2C2249FB3B7EC3CA4EC6AE354688BD8302270A4",
    "issuerKeyHash": "C1A3CCF9DC7F02674DD3BA6B30A8B7B0797D042D8CB7769D5378BB79E3F88D1AED618BCE5FE425F4080433EE1AE4F714",
    "serialNumber": "01",
}
SECURITY_ACTIONS = {
    "CertificateSigned", "DeleteCertificate", "ExtendedTriggerMessage", "GetInstalledCertificateIds", "GetLog",
    "InstallCertificate", "SignedUpdateFirmware", "LogStatusNotification", "SignedFirmwareStatusNotification",
    "SecurityEventNotification",
}


def assert_frames_valid(waiter: EventWaiter, cp_id: str) -> int:
    """Every security-extension CALL and CALLRESULT exchanged with `cp_id` passes the official schema
    (an independent check: jsonschema, not the validators the code uses). Returns how many."""
    checked = 0
    for e in waiter.events:
        if not (isinstance(e, evs.MessageLogged) and e.charger_id == cp_id and e.action in SECURITY_ACTIONS):
            continue
        frame = json.loads(e.raw)
        assert e.message_type in (2, 3), f"a CALLERROR in the security exchanges: {e.raw}"
        name = e.action if e.message_type == 2 else f"{e.action}Response"
        payload = frame[3] if e.message_type == 2 else frame[2]
        errors = [err.message for err in validator(name).iter_errors(payload)]
        assert not errors, f"{name} {payload} invalid: {errors}"
        checked += 1
    return checked


async def notes(csms: CentralSystem, cp_id: str, action: str) -> list[tuple[str, int | None]]:
    """(status, requestId) of every notification `action` the central system stored for `cp_id`."""
    rows = await csms.store.notifications(cp_id)
    return [(r["status"], json.loads(r["payload"]).get("requestId")) for r in rows if r["action"] == action]


def notification(action: str, status: str | None = None) -> Any:
    return lambda e: isinstance(e, evs.NotificationReceived) and e.action == action and status in (None, e.status)


# -- certificates ----------------------------------------------------------------------------------


def test_certificate_identifiers_are_openssls() -> None:
    (der,) = pem_certificates(CENTRAL_ROOT)
    assert certificate_hash_data(der) == CENTRAL_ROOT_IDS
    assert pem_certificates(CENTRAL_ROOT + MANUFACTURER_ROOT)[1] == pem_certificates(MANUFACTURER_ROOT)[0]


async def test_certificates_installed_listed_and_deleted(csms: CentralSystem, waiter: EventWaiter) -> None:
    c = csms.commands
    central, manufacturer = CertificateUse.central_system_root_certificate, CertificateUse.manufacturer_root_certificate
    async with running(base_url(csms), "SIM-CERT"):
        assert (await c.get_installed_certificate_ids("SIM-CERT", central)).status == GetInstalledCertificateStatus.not_found
        assert (await c.install_certificate("SIM-CERT", central, CENTRAL_ROOT)).status == CertificateStatus.accepted
        # The string values work as well as the enums (the HTTP API passes the JSON's strings).
        installed = await c.install_certificate("SIM-CERT", "ManufacturerRootCertificate", MANUFACTURER_ROOT)
        assert installed.status == CertificateStatus.accepted
        # Installing the same certificate again does not list it twice.
        assert (await c.install_certificate("SIM-CERT", central, CENTRAL_ROOT)).status == CertificateStatus.accepted

        listed = await c.get_installed_certificate_ids("SIM-CERT", central)
        assert listed.status == GetInstalledCertificateStatus.accepted
        assert listed.certificate_hash_data == [CENTRAL_ROOT_IDS]
        listed_mf = await c.get_installed_certificate_ids("SIM-CERT", "ManufacturerRootCertificate")
        assert [h["serial_number"] for h in listed_mf.certificate_hash_data] == ["1"]

        # The hash data as it came back (snake_case) names the certificate to delete.
        deleted = await c.delete_certificate("SIM-CERT", listed.certificate_hash_data[0])
        assert deleted.status == DeleteCertificateStatus.accepted
        gone = await c.get_installed_certificate_ids("SIM-CERT", central)
        assert (gone.status, gone.certificate_hash_data) == (GetInstalledCertificateStatus.not_found, None)
        again = await c.delete_certificate("SIM-CERT", {
            "hashAlgorithm": "SHA256", "issuerNameHash": CENTRAL_ROOT_IDS["issuer_name_hash"],
            "issuerKeyHash": CENTRAL_ROOT_IDS["issuer_key_hash"], "serialNumber": CENTRAL_ROOT_IDS["serial_number"],
        })
        assert again.status == DeleteCertificateStatus.not_found

        # The manufacturer's root is still there, and goes when named with SHA384 (camelCase, as in OCPP JSON).
        assert (await c.delete_certificate("SIM-CERT", MANUFACTURER_ROOT_SHA384)).status == DeleteCertificateStatus.accepted
        assert (await c.get_installed_certificate_ids("SIM-CERT", manufacturer)).status == (
            GetInstalledCertificateStatus.not_found
        )

        # Not PEM, or a chain where one root certificate is expected: Rejected.
        assert (await c.install_certificate("SIM-CERT", central, "not a certificate")).status == CertificateStatus.rejected
        chain = CENTRAL_ROOT + MANUFACTURER_ROOT
        assert (await c.install_certificate("SIM-CERT", central, chain)).status == CertificateStatus.rejected
        broken = "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n"
        assert (await c.install_certificate("SIM-CERT", central, broken)).status == CertificateStatus.rejected

    commands = await csms.store.commands("SIM-CERT")
    assert {r["action"] for r in commands} == {"GetInstalledCertificateIds", "InstallCertificate", "DeleteCertificate"}
    assert {r["outcome"] for r in commands} == {"ok"}
    assert assert_frames_valid(waiter, "SIM-CERT") == 2 * len(commands)


async def test_certificate_signed(csms: CentralSystem, waiter: EventWaiter) -> None:
    async with running(base_url(csms), "SIM-SIGNED") as charger:
        ca = await csms.operator_ca()
        signed = ca.sign_csr(charger.certificates.csr("SIM-SIGNED", "ocpp-console"), "SIM-SIGNED")
        result = await csms.commands.certificate_signed("SIM-SIGNED", signed.chain_pem)
        assert result.status == CertificateSignedStatus.accepted
        assert charger.certificates.charge_point_chain == signed.chain_pem
        row = await csms.store.charger("SIM-SIGNED")
        assert (row["certificate_serial"], row["certificate_expiry"]) == (signed.serial_hex, iso(signed.not_after))
        # Certificates for someone else's key, or no certificate at all: Rejected, and reported as a
        # security event; the charger keeps its own, and so does the central system's record.
        reported = fresh(waiter)
        refused = await csms.commands.certificate_signed("SIM-SIGNED", CENTRAL_ROOT + MANUFACTURER_ROOT)
        assert refused.status == CertificateSignedStatus.rejected
        await reported(notification("SecurityEventNotification", "InvalidChargePointCertificate"))
        reported = fresh(waiter)
        refused = await csms.commands.certificate_signed("SIM-SIGNED", "-----BEGIN CERTIFICATE-----")
        assert refused.status == CertificateSignedStatus.rejected
        await reported(notification("SecurityEventNotification", "InvalidChargePointCertificate"))
        assert charger.certificates.charge_point_chain == signed.chain_pem  # the good one is kept
        assert (await csms.store.charger("SIM-SIGNED"))["certificate_serial"] == signed.serial_hex
    assert assert_frames_valid(waiter, "SIM-SIGNED") == 3 * 2 + 2 * 2


# -- ExtendedTriggerMessage --------------------------------------------------------------------------


async def test_extended_trigger_message(csms: CentralSystem, waiter: EventWaiter) -> None:
    async with running(base_url(csms), "SIM-XT", connectors=2):
        trigger = csms.commands.extended_trigger_message

        booted = fresh(waiter)
        assert (await trigger("SIM-XT", MessageTrigger.boot_notification)).status == TriggerMessageStatus.accepted
        await booted(lambda e: isinstance(e, evs.ChargerBooted) and e.charger_id == "SIM-XT")

        heartbeat = fresh(waiter)
        assert (await trigger("SIM-XT", "Heartbeat")).status == TriggerMessageStatus.accepted
        await heartbeat(lambda e: isinstance(e, evs.MessageLogged) and e.action == "Heartbeat" and e.direction == "in")

        status = fresh(waiter)
        assert (await trigger("SIM-XT", MessageTrigger.status_notification, 2)).status == TriggerMessageStatus.accepted
        changed = await status(lambda e: isinstance(e, evs.StatusChanged))
        assert (changed.connector_id, changed.status) == (2, "Available")

        meter = fresh(waiter)
        assert (await trigger("SIM-XT", MessageTrigger.meter_values, 1)).status == TriggerMessageStatus.accepted
        assert (await meter(lambda e: isinstance(e, evs.MeterSample))).connector_id == 1

        # Nothing under way: both report Idle, without a requestId.
        for message, action in (
            (MessageTrigger.firmware_status_notification, "FirmwareStatusNotification"),
            (MessageTrigger.log_status_notification, "LogStatusNotification"),
        ):
            note = fresh(waiter)
            assert (await trigger("SIM-XT", message)).status == TriggerMessageStatus.accepted
            await note(notification(action, "Idle"))
        assert await notes(csms, "SIM-XT", "LogStatusNotification") == [("Idle", None)]

        # A new certificate: the charger sends a CSR, the operator CA signs it, CertificateSigned
        # delivers it; an unknown connector is refused.
        installed = fresh(waiter)
        signing = await trigger("SIM-XT", MessageTrigger.sign_charge_point_certificate)
        assert signing.status == TriggerMessageStatus.accepted
        await installed(lambda e: isinstance(e, evs.CertificateInstalled) and e.charger_id == "SIM-XT")
        assert (await trigger("SIM-XT", MessageTrigger.status_notification, 5)).status == TriggerMessageStatus.rejected
        # Only TriggerMessage knows DiagnosticsStatusNotification: refused before anything is sent.
        with pytest.raises(InvalidCommand):
            await trigger("SIM-XT", MessageTrigger.diagnostics_status_notification)

    # Each triggered message went out after the trigger's answer.
    frames = [e for e in waiter.events if isinstance(e, evs.MessageLogged) and e.charger_id == "SIM-XT"]
    answer = next(i for i, e in enumerate(frames) if e.action == "ExtendedTriggerMessage" and e.message_type == 3)
    boot = [i for i, e in enumerate(frames) if e.action == "BootNotification" and e.direction == "in"]
    assert boot[-1] > answer
    commands = await csms.store.commands("SIM-XT")
    assert [r["outcome"] for r in commands].count("invalid") == 1
    # 8 answered triggers, 1 LogStatusNotification, 1 CertificateSigned
    assert assert_frames_valid(waiter, "SIM-XT") == 8 * 2 + 2 + 2


# -- GetLog ------------------------------------------------------------------------------------------


async def test_get_log_uploads_and_reports(csms: CentralSystem, waiter: EventWaiter) -> None:
    async with running(base_url(csms), "SIM-LOG"):
        uploaded = fresh(waiter)
        result = await csms.commands.get_log(
            "SIM-LOG", Log.diagnostics_log, 41, {"remoteLocation": "ftp://logs.invalid/upload/"}
        )
        assert result.status == LogStatus.accepted
        assert result.filename.startswith("DiagnosticsLog-SIM-LOG-") and result.filename.endswith(".log")
        await uploaded(notification("LogStatusNotification", "Uploaded"))
        assert await notes(csms, "SIM-LOG", "LogStatusNotification") == [("Uploading", 41), ("Uploaded", 41)]
    assert assert_frames_valid(waiter, "SIM-LOG") == 2 + 2 * 2


async def test_get_log_really_uploads_the_security_log(
    csms: CentralSystem, waiter: EventWaiter, file_server: tuple[str, list[tuple[str, str, bytes]]]
) -> None:
    url, requests = file_server
    async with running(base_url(csms), "SIM-LOGU", options=fast_options(upload_diagnostics=True)):
        await csms.commands.install_certificate("SIM-LOGU", CertificateUse.central_system_root_certificate, CENTRAL_ROOT)
        uploaded = fresh(waiter)
        log = {"remoteLocation": f"{url}/logs/", "oldestTimestamp": iso(utcnow() - timedelta(days=1))}
        result = await csms.commands.get_log("SIM-LOGU", "SecurityLog", 7, log, retries=1, retry_interval=1)
        assert result.status == LogStatus.accepted
        await uploaded(notification("LogStatusNotification", "Uploaded"))
    puts = [(path, body) for method, path, body in requests if method == "PUT"]
    assert [p for p, _ in puts] == [f"/logs/{result.filename}"]
    assert b"security log" in puts[0][1] and b"InstallCertificate CentralSystemRootCertificate: Accepted" in puts[0][1]
    assert await notes(csms, "SIM-LOGU", "LogStatusNotification") == [("Uploading", 7), ("Uploaded", 7)]


async def test_get_log_replacing_an_upload_under_way(csms: CentralSystem, waiter: EventWaiter) -> None:
    async with running(base_url(csms), "SIM-LOG2") as charger:
        location = {"remoteLocation": "ftp://logs.invalid/"}
        charger.options.transfer_s = 1e9  # the first upload lasts until the second GetLog replaces it
        uploading = fresh(waiter)
        first = await csms.commands.get_log("SIM-LOG2", Log.security_log, 1, location)
        assert first.status == LogStatus.accepted
        await uploading(notification("LogStatusNotification", "Uploading"))

        # Asked meanwhile, the charger tells how the upload is going, with its requestId.
        triggered = fresh(waiter)
        asked = await csms.commands.extended_trigger_message("SIM-LOG2", MessageTrigger.log_status_notification)
        assert asked.status == TriggerMessageStatus.accepted
        await triggered(notification("LogStatusNotification", "Uploading"))

        uploaded = fresh(waiter)
        charger.options.transfer_s = 30.0
        second = await csms.commands.get_log("SIM-LOG2", Log.diagnostics_log, 2, location)
        assert second.status == LogStatus.accepted_canceled
        await uploaded(notification("LogStatusNotification", "Uploaded"))
    assert await notes(csms, "SIM-LOG2", "LogStatusNotification") == [
        ("Uploading", 1), ("Uploading", 1), ("Uploading", 2), ("Uploaded", 2)
    ]
    assert assert_frames_valid(waiter, "SIM-LOG2") == 3 * 2 + 4 * 2


# -- SignedUpdateFirmware ----------------------------------------------------------------------------


def _firmware(location: str, **extra: str) -> dict[str, str]:
    return {
        "location": location,
        "retrieveDateTime": iso(utcnow()),
        "signingCertificate": MANUFACTURER_ROOT,
        "signature": "c2lnbmF0dXJlIG9mIHRoZSBpbWFnZQ==",
        **extra,
    }


async def test_signed_update_firmware_installs_and_reboots(csms: CentralSystem, waiter: EventWaiter) -> None:
    async with running(base_url(csms), "SIM-SF") as charger:
        booted = fresh(waiter)
        result = await csms.commands.signed_update_firmware(
            "SIM-SF", 7, _firmware("https://firmware.invalid/images/sim-3.1.0.bin"), retries=1, retry_interval=5
        )
        assert result.status == UpdateFirmwareStatus.accepted
        boot = await booted(lambda e: isinstance(e, evs.ChargerBooted) and e.charger_id == "SIM-SF")
        assert boot.firmware_version == "3.1.0"
        await charger.wait_ready(10)
    assert await notes(csms, "SIM-SF", "SignedFirmwareStatusNotification") == [
        ("Downloading", 7), ("Downloaded", 7), ("SignatureVerified", 7), ("Installing", 7), ("Installed", 7)
    ]
    assert await notes(csms, "SIM-SF", "FirmwareStatusNotification") == []  # the signed kind only
    row = await csms.store.charger("SIM-SF")
    assert row is not None and (row["firmware_version"], row["firmware_status"]) == ("3.1.0", "Installed")
    assert assert_frames_valid(waiter, "SIM-SF") == 2 + 5 * 2


async def test_signed_update_firmware_scheduled_replaced_and_refused(csms: CentralSystem, waiter: EventWaiter) -> None:
    async with running(base_url(csms), "SIM-SF2") as charger:
        # Retrieved in an hour: DownloadScheduled, which a trigger reports again, with its requestId.
        scheduled = fresh(waiter)
        later = _firmware("https://firmware.invalid/sim-4.0.0.bin", retrieveDateTime=iso(utcnow() + timedelta(hours=1)))
        assert (await csms.commands.signed_update_firmware("SIM-SF2", 8, later)).status == UpdateFirmwareStatus.accepted
        await scheduled(notification("SignedFirmwareStatusNotification", "DownloadScheduled"))
        triggered = fresh(waiter)
        asked = await csms.commands.extended_trigger_message("SIM-SF2", MessageTrigger.firmware_status_notification)
        assert asked.status == TriggerMessageStatus.accepted
        await triggered(notification("SignedFirmwareStatusNotification", "DownloadScheduled"))

        # A new update replaces it (AcceptedCanceled): downloaded now, verified, installed in an hour.
        install_scheduled = fresh(waiter)
        now = _firmware("https://firmware.invalid/sim-4.1.0.bin", installDateTime=iso(utcnow() + timedelta(hours=1)))
        assert (await csms.commands.signed_update_firmware("SIM-SF2", 9, now)).status == (
            UpdateFirmwareStatus.accepted_canceled
        )
        await install_scheduled(notification("SignedFirmwareStatusNotification", "InstallScheduled"))
        assert charger.firmware_version == "1.0.0"

        # A signing certificate that is not one: InvalidCertificate, and a security event.
        event = fresh(waiter)
        bad = _firmware("https://firmware.invalid/sim-5.0.0.bin", signingCertificate="not a certificate")
        assert (await csms.commands.signed_update_firmware("SIM-SF2", 10, bad)).status == (
            UpdateFirmwareStatus.invalid_certificate
        )
        await event(notification("SecurityEventNotification", "InvalidFirmwareSigningCertificate"))
    assert await notes(csms, "SIM-SF2", "SignedFirmwareStatusNotification") == [
        ("DownloadScheduled", 8), ("DownloadScheduled", 8),
        ("Downloading", 9), ("Downloaded", 9), ("SignatureVerified", 9), ("InstallScheduled", 9),
    ]
    assert assert_frames_valid(waiter, "SIM-SF2") == 4 * 2 + 7 * 2


# -- the console's forms -------------------------------------------------------------------------------


def test_pem_field_takes_one_line() -> None:
    field = Field("certificate", "Certificate", "pem", required=True)
    assert field.parse(CENTRAL_ROOT.replace("\n", "\\n")) == CENTRAL_ROOT
    assert field.parse(" ".join(CENTRAL_ROOT.splitlines())) == CENTRAL_ROOT
    assert field.parse("".join(CENTRAL_ROOT.splitlines()[1:-1])) == CENTRAL_ROOT
    assert field.parse((CENTRAL_ROOT + MANUFACTURER_ROOT).replace("\n", "\\n")) == CENTRAL_ROOT + MANUFACTURER_ROOT
    with pytest.raises(FieldError, match="without its END"):
        field.parse("-----BEGIN CERTIFICATE-----")  # what an Input keeps of a multi-line paste
    with pytest.raises(FieldError, match="PEM text"):
        field.parse("not a certificate")


async def test_console_forms_send_the_security_operations(csms: CentralSystem, waiter: EventWaiter) -> None:
    """Each new action's form, filled in as an operator would (a PEM on one line with \\n escapes),
    gets the charger's answer."""

    def form(key: str, raw: dict[str, str]) -> dict[str, Any]:
        spec = ACTIONS_BY_KEY[key]
        filled = {**spec.defaults({}), **raw}
        return {f.name: f.parse(filled.get(f.name, "")) for f in spec.fields}

    async def run(key: str, raw: dict[str, str]) -> Any:
        return await ACTIONS_BY_KEY[key].run(LocalSite(csms), "SIM-UI", form(key, raw))  # OCPP JSON answers

    one_line = CENTRAL_ROOT.replace("\n", "\\n")
    async with running(base_url(csms), "SIM-UI") as charger:
        ca = await csms.operator_ca()
        own = ca.sign_csr(charger.certificates.csr("SIM-UI", "ocpp-console"), "SIM-UI").chain_pem
        own = own[: own.index("-----END CERTIFICATE-----") + len("-----END CERTIFICATE-----")] + "\n"
        body_only = "".join(own.splitlines()[1:-1])
        assert (await run("install_certificate", {"certificate": one_line}))["status"] == CertificateStatus.accepted
        listed = await run("installed_certificates", {})
        assert listed["certificateHashData"] == [to_camel(CENTRAL_ROOT_IDS)]
        ids = CENTRAL_ROOT_IDS
        deleted = await run("delete_certificate", {
            "issuer_name_hash": ids["issuer_name_hash"], "issuer_key_hash": ids["issuer_key_hash"],
            "serial_number": ids["serial_number"],
        })
        assert deleted["status"] == DeleteCertificateStatus.accepted
        assert (await run("certificate_signed", {"certificate_chain": body_only}))["status"] == CertificateSignedStatus.accepted
        assert charger.certificates.charge_point_chain == own
        note = fresh(waiter)
        assert (await run("extended_trigger", {}))["status"] == TriggerMessageStatus.accepted
        await note(notification("LogStatusNotification", "Idle"))
        uploaded = fresh(waiter)
        log = await run("get_log", {"location": "ftp://logs.invalid/", "oldest": "2026-01-01T00:00"})
        assert log["status"] == LogStatus.accepted
        await uploaded(notification("LogStatusNotification", "Uploaded"))
        installed = fresh(waiter)
        firmware = await run("signed_update_firmware", {
            "location": "https://firmware.invalid/sim-6.0.0.bin", "signing_certificate": one_line, "signature": "c2ln",
        })
        assert firmware["status"] == UpdateFirmwareStatus.accepted
        await installed(notification("SignedFirmwareStatusNotification", "Installed"))
    assert assert_frames_valid(waiter, "SIM-UI") > 0


async def test_console_opens_every_security_form_and_installs_a_certificate(csms: CentralSystem, console: Console) -> None:
    keys = ("install_certificate", "installed_certificates", "delete_certificate", "certificate_signed",
            "extended_trigger", "get_log", "signed_update_firmware")
    async with running(base_url(csms), "SIM-CON") as charger:
        app = await console(csms)
        async with app.run_test(size=UI_SIZE) as pilot:
            for key in keys:  # every form opens with its defaults, and closes again
                app.start_action("SIM-CON", key, {})
                form = await ui_until(pilot, lambda: isinstance(app.screen, ActionForm) and app.screen)
                assert form.spec.key == key
                await pilot.press("escape")
                await ui_until(pilot, lambda: not isinstance(app.screen, ActionForm))

            app.start_action("SIM-CON", "install_certificate", {})
            form = await ui_until(pilot, lambda: isinstance(app.screen, ActionForm) and app.screen)
            form.query_one("#f-certificate", Input).value = CENTRAL_ROOT.replace("\n", "\\n")
            await pilot.press("enter")
            await ui_until(pilot, lambda: any(str(n.message) == "SIM-CON installed the CentralSystemRootCertificate."
                                             for n in app._notifications))
        assert charger.certificates.hash_data(CertificateUse.central_system_root_certificate) == [CENTRAL_ROOT_IDS]
