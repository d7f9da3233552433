"""The README's promise for remote actions, kept: on a charger, `o` opens every remote action;
each is a short form, typed into with keys, confirmed where it would disturb a car, sent to the
charger, and its answer comes back as a sentence.

One site for the module (the real central system, a simulated charger over a real socket); each
case opens the console, picks its action from the list with the keys, fills the form, and checks
what the charger did (the simulator's state, or the stored CALL and its answer) and the
notification's sentence. A case restores what it changed, so the next one finds the charger as it
was.
"""

from __future__ import annotations

import asyncio
import fnmatch
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from textual import events
from textual.keys import _character_to_key
from textual.widgets import Button, Input, OptionList, Select, TabbedContent

from ocpp_console.csms import CentralSystem
from ocpp_console.csms import events as ev
from ocpp_console.settings import load_settings
from ocpp_console.sim import SimulatedCharger
from ocpp_console.timeutil import iso, utcnow
from ocpp_console.ui.actions import ACTIONS
from ocpp_console.ui.app import ConsoleApp
from ocpp_console.ui.screens.charger_detail import ChargerDetailScreen
from ocpp_console.ui.screens.modals import ActionForm, ActionPicker, ConfirmScreen
from tests.conftest import SITE_MODES, EventWaiter, consoles, eventually
from tests.test_ui import SIZE, cells, until


CP = "SIM-RA"
README = Path(__file__).resolve().parent.parent / "README.md"


@dataclass
class Site:
    csms: CentralSystem
    sim: SimulatedCharger
    waiter: EventWaiter
    mark: int = 0  # events seen before the case's action

    async def started(self, connector: int, tag: str = "DRIVER-1") -> int:
        """A transaction on `connector`, started the way the console would."""
        seen = len(self.waiter.events)
        await self.csms.commands.remote_start_transaction(CP, tag, connector)
        event = await self.waiter.wait_for(
            lambda e: isinstance(e, ev.TransactionStarted) and e.connector_id == connector
            and any(e is later for later in self.waiter.events[seen:])
        )
        assert isinstance(event, ev.TransactionStarted)
        return event.transaction_id

    async def stopped(self, transaction_id: int) -> dict[str, Any]:
        return await eventually(lambda: self._stopped(transaction_id))

    async def _stopped(self, transaction_id: int) -> dict[str, Any] | None:
        row = await self.csms.store.transaction(transaction_id)
        return dict(row) if row is not None and row["stopped_at"] else None

    async def idle(self) -> None:
        """Every connector free again (a stopped session's car leaves, the status comes back)."""
        for tx in [tx for tx in await self.csms.store.transactions(CP, running=True)]:
            await self.csms.commands.remote_stop_transaction(CP, tx["id"])
            await self.stopped(tx["id"])
        await eventually(lambda: all(c.session is None for c in self.sim.connectors.values()))

    async def answer_of(self, action: str, after: int) -> dict[str, Any]:
        """The stored command `action` sent after command row `after`, with the charger's answer."""
        async def find() -> dict[str, Any] | None:
            rows = [r for r in await self.csms.store.commands(CP) if r["id"] > after and r["action"] == action]
            return dict(rows[-1]) if rows else None

        return await eventually(find)

    async def last_command_id(self) -> int:
        rows = await self.csms.store.commands(CP)
        return rows[-1]["id"] if rows else 0


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def site(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Site]:
    tmp = tmp_path_factory.mktemp("readme-actions")
    settings = load_settings(tmp / "no-config.toml", host="127.0.0.1", port=0, db=tmp / "site.sqlite",
                             unknown_chargers="accept", heartbeat_interval=60, call_timeout=5.0)
    system = CentralSystem(settings)
    await system.start()
    for tag in ("DRIVER-1", "DRIVER-2"):
        await system.store.upsert_id_tag(tag)
    waiter = EventWaiter(system)
    sim = SimulatedCharger(CP, f"ws://127.0.0.1:{system.port}", connectors=2, sessions="none", speed=600, seed=3)
    task = asyncio.create_task(sim.run())
    try:
        await sim.wait_ready(10)
        yield Site(system, sim, waiter)
    finally:
        await sim.stop()
        await asyncio.wait_for(task, 15)
        await system.stop()


@dataclass
class OpenConsole:
    app: ConsoleApp
    pilot: Any
    mode: str  # conftest.SITE_MODES


@pytest_asyncio.fixture(loop_scope="module", scope="module", params=SITE_MODES)
async def console(site: Site, request: pytest.FixtureRequest) -> AsyncIterator[OpenConsole]:
    """One console per mode for the module (as an operator keeps it open), in this process and
    attached over the API; each case starts on Chargers."""
    async with consoles(request.param) as make:
        app = await make(site.csms)
        async with app.run_test(size=SIZE) as pilot:
            yield OpenConsole(app, pilot, request.param)


async def _on_chargers(app: ConsoleApp, pilot: Any) -> None:
    """Back to the chargers list, nothing open, no notifications left from the case before."""
    while len(app.screen_stack) > 1:
        await pilot.press("escape")
    await pilot.press("2")
    app.clear_notifications()
    await until(pilot, lambda: CP in cells(app) and "online" in cells(app)[CP][2], 10)


# -- the cases ------------------------------------------------------------------------------

Effect = Callable[[Site, dict[str, Any], int], Awaitable[None]]  # (site, the form's values, commands before)


@dataclass(frozen=True)
class Case:
    key: str
    fill: dict[str, str]  # field -> what is typed (a choice: typed into its list)
    sentence: str  # the notification, with {field} from the form and * for what varies
    effect: Effect
    before: Callable[[Site], Awaitable[dict[str, str]]] | None = None  # set-up; returns more to fill
    confirm: str | None = None  # the confirmation's button, when one is asked
    confirm_title: str = ""  # what its title says (with {field} and *)
    from_detail: bool = False  # `o` on the detail screen instead of the charger's row
    paste: frozenset[str] = field(default_factory=frozenset)  # fields pasted, as an operator pastes a PEM
    severity: str = "information"  # "warning": the charger said no


async def _no_op_after_idle(site: Site) -> dict[str, str]:
    await site.idle()
    return {}


# Set-ups ---------------------------------------------------------------------------------------


async def _running_on_1(site: Site) -> dict[str, str]:
    await site.idle()
    return {"transaction_id": str(await site.started(1))}


async def _reserved(site: Site) -> dict[str, str]:
    result = await site.csms.commands.reserve_now(CP, 1, "DRIVER-2", iso(utcnow() + timedelta(minutes=30)))
    assert result.status == "Accepted"
    return {"reservation_id": str(result.reservation_id)}


async def _list_version_3(site: Site) -> dict[str, str]:
    entries = [{"idTag": "RFID-9", "idTagInfo": {"status": "Accepted"}}]  # (an empty list is no list: version 0)
    assert (await site.csms.commands.send_local_list(CP, 3, "Full", entries)).status == "Accepted"
    return {}


async def _profile_6(site: Site) -> dict[str, str]:
    profile = {"chargingProfileId": 6, "stackLevel": 2, "chargingProfilePurpose": "TxDefaultProfile",
               "chargingProfileKind": "Relative",
               "chargingSchedule": {"chargingRateUnit": "W", "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 5000}]}}
    assert (await site.csms.commands.set_charging_profile(CP, 2, profile)).status == "Accepted"
    return {}


async def _ca_base64(site: Site) -> str:
    """The operator CA's certificate as the base64 between its BEGIN and END lines (one line,
    as a paste into a one-line field keeps)."""
    pem = (await site.csms.operator_ca()).certificate_pem
    return "".join(line for line in pem.splitlines() if not line.startswith("-----"))


async def _ca_to_paste(site: Site) -> dict[str, str]:
    return {"certificate": await _ca_base64(site)}


async def _operator_ca_installed(site: Site) -> dict[str, str]:
    assert (await site.csms.commands.install_operator_ca(CP)).status == "Accepted"
    return {}


async def _manufacturer_ca_installed(site: Site) -> dict[str, str]:
    pem = (await site.csms.operator_ca()).certificate_pem
    assert (await site.csms.commands.install_certificate(CP, "ManufacturerRootCertificate", pem)).status == "Accepted"
    hashes = site.sim.certificates.hash_data("ManufacturerRootCertificate")[0]
    return {"issuer_name_hash": hashes["issuer_name_hash"], "issuer_key_hash": hashes["issuer_key_hash"],
            "serial_number": hashes["serial_number"]}


async def _chain_to_paste(site: Site) -> dict[str, str]:
    return {"certificate_chain": await _ca_base64(site)}


async def _image_file(site: Site) -> dict[str, str]:
    path = site.csms.settings.db.parent / "sim-2.3.0.bin"
    path.write_bytes(b"image" * 200)
    return {"path": str(path)}


async def _add_firmware_effect(site: Site, v: dict[str, Any], after: int) -> None:
    rows = await site.csms.store.firmware_images()
    assert [(r["name"], r["size"]) for r in rows] == [("sim-2.3.0.bin", 1000)]
    assert (site.csms.files.grants.firmware_dir / "sim-2.3.0.bin").read_bytes() == b"image" * 200


async def _signing_certificate(site: Site) -> dict[str, str]:
    return {"signing_certificate": await _ca_base64(site)}


# Effects ---------------------------------------------------------------------------------------


async def _answered(site: Site, action: str, after: int, status: str | None) -> dict[str, Any]:
    row = await site.answer_of(action, after)
    assert row["outcome"] == "ok", row
    response = json.loads(row["response"])
    if status is not None:
        assert response.get("status") == status, response
    return response


async def _remote_start_effect(site: Site, v: dict[str, Any], after: int) -> None:
    await eventually(lambda: site.sim.connectors[2].session is not None)
    running = await eventually(lambda: site.csms.store.transactions(CP, running=True))
    assert running[0]["connector_id"] == 2 and running[0]["id_tag"] == "DRIVER-1"


async def _remote_stop_effect(site: Site, v: dict[str, Any], after: int) -> None:
    row = await site.stopped(int(v["transaction_id"]))
    assert row["stop_reason"] == "Remote"


async def _reset_effect(site: Site, v: dict[str, Any], after: int) -> None:
    await _answered(site, "Reset", after, "Accepted")
    # the charger went away and booted again
    await _since_mark(site, lambda e: isinstance(e, ev.ChargerDisconnected) and e.charger_id == CP)
    await _since_mark(site, lambda e: isinstance(e, ev.ChargerBooted) and e.charger_id == CP)
    await site.sim.wait_ready(10)


async def _unlock_effect(site: Site, v: dict[str, Any], after: int) -> None:
    await _answered(site, "UnlockConnector", after, "Unlocked")
    tx = (await site.csms.store.transactions(CP))[0]
    row = await site.stopped(tx["id"])
    assert row["stop_reason"] == "UnlockCommand"


async def _availability_effect(site: Site, v: dict[str, Any], after: int) -> None:
    await eventually(lambda: site.sim.connectors[2].availability == "Inoperative")
    await eventually(lambda: _connector_status(site, 2, "Unavailable"))
    assert (await site.csms.commands.change_availability(CP, 2, "Operative")).status == "Accepted"
    await eventually(lambda: _connector_status(site, 2, "Available"))


async def _connector_status(site: Site, connector: int, status: str) -> bool:
    return any(r["connector_id"] == connector and r["status"] == status for r in await site.csms.store.connectors(CP))


async def _clear_cache_effect(site: Site, v: dict[str, Any], after: int) -> None:
    await _answered(site, "ClearCache", after, "Accepted")


def _since_mark(site: Site, predicate: Callable[[ev.Event], bool]) -> Awaitable[ev.Event]:
    """The first event after the case's action that matches."""
    mark, events = site.mark, site.waiter.events

    def position(event: ev.Event) -> int:
        return next(i for i in range(len(events) - 1, -1, -1) if events[i] is event)

    return site.waiter.wait_for(lambda e: predicate(e) and position(e) >= mark, 30)


async def _received(site: Site, action: str) -> None:
    await _since_mark(site, lambda e: isinstance(e, ev.MessageLogged) and e.direction == "in" and e.action == action)


async def _trigger_effect(site: Site, v: dict[str, Any], after: int) -> None:
    response = await _answered(site, "TriggerMessage", after, "Accepted")
    assert response
    await _received(site, "Heartbeat")


async def _get_config_effect(site: Site, v: dict[str, Any], after: int) -> None:
    response = await _answered(site, "GetConfiguration", after, None)
    assert response["unknownKey"] == ["NoSuchKey"]
    assert [k["key"] for k in response["configurationKey"]] == ["HeartbeatInterval"]


async def _change_config_effect(site: Site, v: dict[str, Any], after: int) -> None:
    await eventually(lambda: site.sim.config.get("MeterValueSampleInterval") == "20")
    rows = {r["key"]: r["value"] for r in await site.csms.store.configuration(CP)}
    assert rows["MeterValueSampleInterval"] == "20"


async def _firmware_effect(site: Site, v: dict[str, Any], after: int, version: str) -> None:
    """The charger downloads, installs, reboots with the new version (seen on its row)."""
    async def installed() -> bool:
        row = await site.csms.store.charger(CP)
        return row is not None and row["firmware_version"] == version and row["firmware_status"] == "Installed"

    await eventually(installed, 30)
    await site.sim.wait_ready(10)


async def _update_firmware_effect(site: Site, v: dict[str, Any], after: int) -> None:
    await _firmware_effect(site, v, after, "2.2.0")


async def _signed_firmware_effect(site: Site, v: dict[str, Any], after: int) -> None:
    await _answered(site, "SignedUpdateFirmware", after, "Accepted")
    await _firmware_effect(site, v, after, "3.0.0")


async def _diagnostics_effect(site: Site, v: dict[str, Any], after: int) -> None:
    response = await _answered(site, "GetDiagnostics", after, None)
    assert response["fileName"].startswith(f"diagnostics-{CP}-")

    async def done() -> bool:
        row = await site.csms.store.charger(CP)
        return row is not None and row["diagnostics_status"] in ("Uploaded", "UploadFailed")

    await eventually(done, 30)  # finished before the next case


async def _reserve_effect(site: Site, v: dict[str, Any], after: int) -> None:
    reservation = await eventually(lambda: site.sim.connectors[1].reservation)
    assert reservation.id_tag == "DRIVER-2"
    assert (await site.csms.commands.cancel_reservation(CP, reservation.reservation_id)).status == "Accepted"


async def _cancel_effect(site: Site, v: dict[str, Any], after: int) -> None:
    await eventually(lambda: site.sim.connectors[1].reservation is None)
    rows = {r["id"]: r["status"] for r in await site.csms.store.reservations(CP)}
    assert rows[int(v["reservation_id"])] == "Cancelled"


async def _local_list_effect(site: Site, v: dict[str, Any], after: int) -> None:
    assert site.sim.auth.list_version(True) == 7
    assert (await site.csms.store.charger(CP))["local_list_version"] == 7


async def _list_version_effect(site: Site, v: dict[str, Any], after: int) -> None:
    assert (await _answered(site, "GetLocalListVersion", after, None))["listVersion"] == 3


async def _set_profile_effect(site: Site, v: dict[str, Any], after: int) -> None:
    assert [(p.id, p.connector_id, p.stack_level) for p in site.sim.profiles.installed if p.id == 5] == [(5, 1, 1)]
    assert (await site.csms.commands.clear_charging_profile(CP, 5)).status == "Accepted"


async def _clear_profile_effect(site: Site, v: dict[str, Any], after: int) -> None:
    assert not [p for p in site.sim.profiles.installed if p.id == 6]
    await _answered(site, "ClearChargingProfile", after, "Accepted")


async def _composite_effect(site: Site, v: dict[str, Any], after: int) -> None:
    response = await _answered(site, "GetCompositeSchedule", after, "Accepted")
    assert response["connectorId"] == 1 and response["chargingSchedule"]["chargingRateUnit"] == "W"


async def _data_transfer_effect(site: Site, v: dict[str, Any], after: int) -> None:
    rows = await site.csms.store.data_transfers(CP)
    assert (rows[-1]["direction"], rows[-1]["vendor_id"], rows[-1]["status"]) == ("out", "ocpp-console-sim", "Accepted")


async def _install_certificate_effect(site: Site, v: dict[str, Any], after: int) -> None:
    assert site.sim.certificates.hash_data("ManufacturerRootCertificate")


async def _installed_effect(site: Site, v: dict[str, Any], after: int) -> None:
    response = await _answered(site, "GetInstalledCertificateIds", after, "Accepted")
    assert response["certificateHashData"]


async def _delete_effect(site: Site, v: dict[str, Any], after: int) -> None:
    serials = [h["serial_number"] for h in site.sim.certificates.hash_data("ManufacturerRootCertificate")]
    assert v["serial_number"] not in serials


async def _certificate_signed_effect(site: Site, v: dict[str, Any], after: int) -> None:
    # our CA's own certificate is no chain for the charger's key: it says so
    await _answered(site, "CertificateSigned", after, "Rejected")


async def _extended_trigger_effect(site: Site, v: dict[str, Any], after: int) -> None:
    await _answered(site, "ExtendedTriggerMessage", after, "Accepted")
    await _received(site, "StatusNotification")


async def _renew_effect(site: Site, v: dict[str, Any], after: int) -> None:
    await _since_mark(site, lambda e: isinstance(e, ev.CertificateInstalled) and e.charger_id == CP)
    row = await site.csms.store.charger(CP)
    assert row is not None and row["certificate_serial"] and site.sim.certificates.charge_point_chain


async def _operator_ca_effect(site: Site, v: dict[str, Any], after: int) -> None:
    pem = (await site.csms.operator_ca()).certificate_pem
    assert any(c.pem.strip() == pem.strip() for c in site.sim.certificates.installed
               if c.use == "CentralSystemRootCertificate")


async def _get_log_effect(site: Site, v: dict[str, Any], after: int) -> None:
    response = await _answered(site, "GetLog", after, "Accepted")
    assert response["filename"].startswith(f"DiagnosticsLog-{CP}-")
    await _since_mark(site, lambda e: isinstance(e, ev.NotificationReceived) and e.action == "LogStatusNotification"
                      and e.status in ("Uploaded", "UploadFailure"))


CASES = [
    Case("remote_start", {"id_tag": "DRIVER-1", "connector_id": "2"},
         f"{CP} accepted Remote Start for DRIVER-1 on connector 2; waiting for its transaction to start.",
         _remote_start_effect, before=_no_op_after_idle),
    Case("remote_stop", {}, f"{CP} is stopping transaction {{transaction_id}}.", _remote_stop_effect,
         before=_running_on_1, confirm="Stop transaction",
         confirm_title=f"Stop transaction {{transaction_id}} on {CP} connector 1 (DRIVER-1, * kWh so far)?"),
    Case("reset", {"type": "Hard"}, f"{CP} accepted a Hard reset: it reboots now.", _reset_effect),
    Case("unlock", {"connector_id": "1"}, f"Connector 1 of {CP} is unlocked.", _unlock_effect,
         before=_running_on_1, confirm="Unlock connector", confirm_title=f"Unlock connector 1 of {CP}?"),
    Case("availability", {"connector_id": "2", "type": "Inoperative"}, f"Connector 2 of {CP} is now Inoperative.",
         _availability_effect),
    Case("clear_cache", {}, f"{CP} emptied its authorization cache.", _clear_cache_effect),
    Case("trigger", {"requested_message": "Heartbeat"}, f"{CP} will send a Heartbeat now.", _trigger_effect),
    Case("get_config", {"keys": "HeartbeatInterval,NoSuchKey"},
         f"{CP} reported 1 configuration key; it does not know NoSuchKey. They are in the Configuration tab of its "
         "detail screen.", _get_config_effect, from_detail=True),
    Case("change_config", {"key": "MeterValueSampleInterval", "value": "20"},
         f"{CP} set MeterValueSampleInterval to 20.", _change_config_effect, from_detail=True),
    Case("update_firmware", {"location": "https://fw.example/sim-2.2.0.bin"},
         f"Firmware update requested from {CP}: it fetches https://fw.example/sim-2.2.0.bin from *. Its progress "
         "shows under Firmware update on the charger's detail screen.", _update_firmware_effect),
    Case("add_firmware", {}, "sim-2.3.0.bin is in the firmware library (1000 bytes, SHA-256 *...): choose it in "
         "Update Firmware.", _add_firmware_effect, before=_image_file),
    Case("get_diagnostics", {"location": "ftp://diag.example/up/"},
         f"{CP} uploads its diagnostics as diagnostics-{CP}-*.log to ftp://diag.example/up/. Its progress shows "
         "under Diagnostics on the charger's detail screen.", _diagnostics_effect),
    Case("reserve", {"connector_id": "1", "id_tag": "DRIVER-2"},
         f"Connector 1 of {CP} is reserved for DRIVER-2 until * (reservation *).", _reserve_effect),
    Case("cancel_reservation", {}, f"Reservation {{reservation_id}} on {CP} is cancelled.", _cancel_effect,
         before=_reserved),
    Case("send_local_list", {"list_version": "7", "update_type": "Full", "entries": "RFID-1, RFID-2=Blocked"},
         f"{CP} holds local list version 7 now (Full, 2 entries).", _local_list_effect),
    Case("get_local_list_version", {}, f"{CP} holds local list version 3.", _list_version_effect,
         before=_list_version_3),
    Case("set_profile", {"connector_id": "1", "purpose": "TxDefaultProfile", "profile_id": "5", "stack_level": "1",
                         "limit": "3680", "unit": "W"},
         f"{CP} limits connector 1 to 3680 W (TxDefaultProfile 5, stack level 1).", _set_profile_effect),
    Case("clear_profile", {"id": "6"}, f"{CP} cleared the charging profiles matching profile 6.",
         _clear_profile_effect, before=_profile_6),
    Case("composite_schedule", {"connector_id": "1", "duration": "600", "unit": "W"},
         f"Over the next 600 s {CP} allows connector 1: * W from 0 s*.", _composite_effect),
    Case("data_transfer", {"vendor_id": "ocpp-console-sim", "message_id": "echo", "data": "ping"},
         f"{CP} took the data transfer to ocpp-console-sim and answered 'ping'.", _data_transfer_effect),
    Case("install_certificate", {"certificate_type": "ManufacturerRootCertificate"},
         f"{CP} installed the ManufacturerRootCertificate.", _install_certificate_effect,
         before=_ca_to_paste, paste=frozenset({"certificate"})),
    Case("installed_certificates", {},
         f"{CP} holds * CentralSystemRootCertificate* (serial *; their hashes are in the message log).",
         _installed_effect, before=_operator_ca_installed),
    Case("delete_certificate", {"hash_algorithm": "SHA256"}, f"{CP} deleted certificate {{serial_number}}.",
         _delete_effect, before=_manufacturer_ca_installed, confirm="Delete certificate",
         confirm_title=f"Delete certificate {{serial_number}} from {CP}?",
         paste=frozenset({"issuer_name_hash", "issuer_key_hash"})),
    Case("certificate_signed", {}, f"{CP} refused the certificate (Rejected).", _certificate_signed_effect,
         before=_chain_to_paste, paste=frozenset({"certificate_chain"}), severity="warning"),
    Case("extended_trigger", {"requested_message": "StatusNotification", "connector_id": "1"},
         f"{CP} will send a StatusNotification for connector 1 now.", _extended_trigger_effect),
    Case("renew_certificate", {},
         f"{CP} will send a certificate signing request; the operator CA signs it, and the new certificate shows on "
         "its detail screen once the charger has taken it.", _renew_effect, from_detail=True),
    Case("install_operator_ca", {}, f"The operator CA is installed on {CP} as its central system root certificate.",
         _operator_ca_effect),
    Case("get_log", {"log_type": "DiagnosticsLog", "location": "ftp://logs.example/"},
         f"{CP} uploads its DiagnosticsLog as DiagnosticsLog-{CP}-*.log to ftp://logs.example/ (request *). Its "
         "progress shows in the overview's events.", _get_log_effect),
    Case("signed_update_firmware", {"location": "https://fw.example/signed-3.0.0.bin", "signature": "c2lnbmF0dXJl"},
         f"Signed firmware update requested from {CP}: it fetches https://fw.example/signed-3.0.0.bin from *. Its "
         "progress shows under Firmware update on the charger's detail screen.", _signed_firmware_effect,
         before=_signing_certificate, paste=frozenset({"signing_certificate"})),
]


# README names -> the actions behind them: the README's list and the console's stay one.
README_ACTIONS = {
    "Remote Start/Stop": ("remote_start", "remote_stop"), "Reset": ("reset",), "Unlock": ("unlock",),
    "Change Availability": ("availability",), "Clear Cache": ("clear_cache",), "Trigger Message": ("trigger",),
    "Get/Change Configuration": ("get_config", "change_config"), "Update Firmware": ("update_firmware",),
    "Add Firmware Image": ("add_firmware",),
    "Get Diagnostics": ("get_diagnostics",), "Reserve Now / Cancel": ("reserve", "cancel_reservation"),
    "Send Local List / Get Version": ("send_local_list", "get_local_list_version"),
    "Set/Clear Charging Profile": ("set_profile", "clear_profile"), "Get Composite Schedule": ("composite_schedule",),
    "Data Transfer": ("data_transfer",),
    "security extension's operations": ("install_certificate", "installed_certificates", "delete_certificate",
                                        "certificate_signed", "extended_trigger", "get_log", "signed_update_firmware"),
    "Renew Certificate": ("renew_certificate",), "Install Our CA": ("install_operator_ca",),
}


def test_every_readme_action_and_every_console_action_has_a_case() -> None:
    console = README.read_text(encoding="utf-8").split("## The console", 1)[1].split("\n## ", 1)[0]
    console = " ".join(console.split())  # as read, whatever the line breaks
    for name in README_ACTIONS:
        assert name in console, name
    named = {key for keys in README_ACTIONS.values() for key in keys}
    assert named == {a.key for a in ACTIONS} == {c.key for c in CASES}


# -- driving the console ------------------------------------------------------------------------


async def _keys(pilot: Any, keys: Sequence[str]) -> None:
    """Key presses as the terminal driver sends them (what Pilot.press does), without waiting for
    the app to go idle after each: a form is typed into in one go, like a fast typist. Callers wait
    for the outcome (the field's value, the highlighted line)."""
    app = pilot.app
    for key in keys:
        char = key if len(key) == 1 else None
        event = events.Key(_character_to_key(key) if char and not key.isalnum() else key, char)
        event.set_sender(app)
        app._driver.send_message(event)
    await pilot.pause()


async def _type(pilot: Any, widget: Input, text: str, paste: bool) -> None:
    widget.focus()
    await pilot.press("end", "ctrl+u")  # what the form offered goes
    if paste:
        widget.post_message(events.Paste(text))
    else:
        await _keys(pilot, list(text))
    await until(pilot, lambda: widget.value == text)


async def _choose(pilot: Any, widget: Select[str], choice: str) -> None:
    widget.focus()
    await pilot.press("enter")  # the list opens
    await _keys(pilot, list(choice))  # typed: the list jumps to it
    await pilot.press("enter")
    await until(pilot, lambda: widget.value == choice)


async def _fill(pilot: Any, form: ActionForm, values: dict[str, str], paste: frozenset[str]) -> None:
    for name, text in values.items():
        widget = form.query_one(f"#f-{name}")
        if isinstance(widget, Select):
            await _choose(pilot, widget, text)
        else:
            assert isinstance(widget, Input)
            await _type(pilot, widget, text, name in paste)


def _matches(text: str, pattern: str) -> bool:
    """`*` stands for what varies; everything else is literal."""
    return fnmatch.fnmatchcase(text, pattern.replace("[", "[[]").replace("?", "[?]"))


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize("case", CASES, ids=[c.key for c in CASES])
async def test_remote_action_from_the_console(site: Site, console: OpenConsole, case: Case) -> None:
    fill = dict(case.fill)
    if case.before is not None:
        fill.update(await case.before(site))
    after = await site.last_command_id()
    site.mark = len(site.waiter.events)
    app, pilot = console.app, console.pilot
    await _on_chargers(app, pilot)
    if case.from_detail:
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, ChargerDetailScreen))
    await pilot.press("o")
    picker = await until(pilot, lambda: isinstance(app.screen, ActionPicker) and app.screen)
    options = picker.query_one(OptionList)
    index = [a.key for a in ACTIONS].index(case.key)
    await _keys(pilot, ["down"] * (index - (options.highlighted or 0)))
    await until(pilot, lambda: options.highlighted == index)
    await pilot.press("enter")
    form = await until(pilot, lambda: isinstance(app.screen, ActionForm) and app.screen)
    assert form.spec.key == case.key
    spec = form.spec
    await _fill(pilot, form, {k: v for k, v in fill.items() if form.query(f"#f-{k}")}, case.paste)
    # the button says what it does, and the form's values are what was typed
    assert str(form.query_one("#send", Button).label) == spec.button_label != "Send"
    values = form.values()
    await pilot.press("ctrl+s")
    if case.confirm is not None:
        ask = await until(pilot, lambda: isinstance(app.screen, ConfirmScreen) and app.screen)
        assert str(ask.query_one("#yes", Button).label) == case.confirm
        assert _matches(ask.title_text, case.confirm_title.format(**fill)), ask.title_text
        await pilot.press("y")
    expected = case.sentence.format(**fill)
    note = await until(pilot, lambda: next((n for n in app._notifications if n.title == spec.title), None), 15)
    assert _matches(str(note.message), expected), f"{note.message!r} is not {expected!r}"
    assert note.severity == case.severity
    await case.effect(site, values, after)
    if case.key == "get_config":  # the keys are in the detail screen's Configuration tab, not in a toast
        assert app.screen.query_one("#detail-tabs", TabbedContent).active == "tab-config"
        await until(pilot, lambda: cells(app, "#config").get("HeartbeatInterval"))
        assert cells(app, "#config")["NoSuchKey"][1] == "unknown key"
    if case.key == "remote_start":  # ... followed to its end
        started = await until(pilot, lambda: next(
            (n for n in app._notifications if n.title == "Transaction started"), None), 15)
        tx = (await site.csms.store.transactions(CP, running=True))[0]["id"]
        assert str(started.message) == f"transaction {tx} started on {CP} connector 2 (Remote Start for DRIVER-1)"
    await site.idle()
