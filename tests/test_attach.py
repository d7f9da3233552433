"""`ocpp-console attach`: the console on a RemoteSite, over a real central system's real HTTP API
and event stream (ephemeral ports), with real chargers (tests/clients.py, the simulator)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest
from ocpp.v16 import call
from ocpp.v16.enums import ChargePointStatus

from ocpp_console.api import ApiServer
from ocpp_console.csms import CentralSystem
from ocpp_console.settings import Settings
from ocpp_console.sim import SimulatedCharger
from ocpp_console.site import SiteError
from ocpp_console.site.local import LocalSite
from ocpp_console.site.remote import RemoteSite
from ocpp_console.ui.app import ConsoleApp
from tests.clients import TS
from tests.conftest import charger
from tests.test_readme_actions import _fill
from tests.test_ui import SIZE, busy_charger, cells, until


@pytest.fixture
def settings(settings_factory: Callable[..., Settings]) -> Settings:
    return settings_factory(api_port=0, call_timeout=3.0)


def _row_text(app: ConsoleApp, charger_id: str) -> str:
    return " ".join(cells(app).get(charger_id, []))


async def test_attached_console_shows_a_charger_online_with_live_power(csms: CentralSystem, api: ApiServer) -> None:
    async with charger(csms, "CP-A") as cp:
        tx = await busy_charger(cp)  # 7.4 kW
        app = ConsoleApp(RemoteSite(api.url, api.token))
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("2")
            await until(pilot, lambda: "online" in _row_text(app, "CP-A") and "7.4" in _row_text(app, "CP-A"))
            assert app.sub_title == f"attached to {api.url}"
            assert app.site.owns_chargers is False
            # a new sample reaches the attached console through the event stream, within a second
            await cp.call(call.MeterValues(connector_id=1, transaction_id=tx, meter_value=[{"timestamp": TS,
                          "sampledValue": [{"value": "11000", "unit": "W", "measurand": "Power.Active.Import"}]}]))
            started = time.perf_counter()
            await until(pilot, lambda: "11.0" in _row_text(app, "CP-A"), 1.0)
            assert time.perf_counter() - started < 1.0
        assert "CP-A" in csms.sessions  # quitting an attached console leaves the charger connected


async def test_remote_start_from_the_attached_console(csms: CentralSystem, api: ApiServer) -> None:
    await csms.store.upsert_id_tag("DRIVER-1")
    sim = SimulatedCharger("SIM-AT", f"ws://127.0.0.1:{csms.port}", connectors=2, sessions="none", speed=600, seed=3)
    task = asyncio.create_task(sim.run())
    try:
        await sim.wait_ready(10)
        app = ConsoleApp(RemoteSite(api.url, api.token))
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("2")
            await until(pilot, lambda: "online" in _row_text(app, "SIM-AT"), 10)
            await pilot.press("s")
            from ocpp_console.ui.screens.modals import ActionForm

            form = await until(pilot, lambda: isinstance(app.screen, ActionForm) and app.screen)
            assert form.spec.key == "remote_start"
            await _fill(pilot, form, {"id_tag": "DRIVER-1", "connector_id": "2"}, frozenset())
            await pilot.press("ctrl+s")
            note = await until(pilot, lambda: next(
                (n for n in app._notifications if n.title == "Transaction started"), None), 15)
            running = await csms.store.transactions("SIM-AT", running=True)
            assert len(running) == 1 and running[0]["connector_id"] == 2 and running[0]["id_tag"] == "DRIVER-1"
            assert str(note.message).startswith(f"transaction {running[0]['id']} started on SIM-AT connector 2")
            # the attached console follows it too: the transaction is in its live model
            await until(pilot, lambda: running[0]["id"] in app.live.running, 5)
    finally:
        await sim.stop()
        await asyncio.wait_for(task, 15)


async def test_a_wrong_token_is_a_clear_message(csms: CentralSystem, api: ApiServer,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    app = ConsoleApp(RemoteSite(api.url, "not-the-token"))
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.return_code is not None)
    assert app.return_code == 1
    message = " ".join(capsys.readouterr().err.split())  # as the operator reads it, one line
    assert "Traceback" not in message
    assert "refused the token (401)" in message and api.url in message


async def test_nothing_listening_is_a_clear_message(unused_tcp_port: int, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://127.0.0.1:{unused_tcp_port}"
    app = ConsoleApp(RemoteSite(url, "t"))
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.return_code is not None)
    assert app.return_code == 1
    message = " ".join(capsys.readouterr().err.split())
    assert f"cannot reach {url}" in message and "Traceback" not in message


async def test_the_console_recovers_when_the_api_restarts(csms: CentralSystem, api: ApiServer) -> None:
    async with charger(csms, "CP-R") as cp:
        await cp.boot()
        await cp.status(1, ChargePointStatus.available)
        app = ConsoleApp(RemoteSite(api.url, api.token))
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("2")
            await until(pilot, lambda: "online" in _row_text(app, "CP-R") and "1:Avail" in _row_text(app, "CP-R"))
            port = api.port
            await api.stop()
            await until(pilot, lambda: app.sub_title.startswith("reconnecting"), 15)
            await pilot.press("1", "2")  # screens refreshing meanwhile keep what they show: no traceback
            csms.settings = csms.settings.model_copy(update={"api_port": port})
            again = ApiServer(csms)
            await again.start()
            try:
                await until(pilot, lambda: app.sub_title == f"attached to {api.url}", 10)
                await cp.status(1, ChargePointStatus.faulted)  # events flow again
                await until(pilot, lambda: "1:FAULT" in _row_text(app, "CP-R"), 5)
            finally:
                await app.site.stop()
                await again.stop()


@pytest.mark.parametrize("kind", ["local", "remote"])
async def test_site_reads_agree_over_both_sites(csms: CentralSystem, api: ApiServer, kind: str) -> None:
    """The rows the console reads are the same, in this process or over the API."""
    async with charger(csms, "CP-S") as cp:
        tx = await busy_charger(cp)
        await csms.store.upsert_id_tag("TAG-W")
        local = LocalSite(csms)
        site: Any = local if kind == "local" else RemoteSite(api.url, api.token)
        if kind == "remote":
            await site.start()
        try:
            assert await site.charger("CP-S") == {**await local.charger("CP-S"), **(
                {"connected": True} if kind == "remote" else {})}
            assert await site.transaction(tx) == await local.transaction(tx)
            assert await site.running() == await local.running()
            assert await site.transactions(running=True) == await local.transactions(running=True)
            documented = ("id_tag", "status", "expiry_date", "parent_id_tag", "note", "balance", "refused_status",
                          "refused_reason", "refused_action", "refused_charger", "refused_at")  # Site.id_tags

            def tags(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
                return [{k: row[k] for k in documented} for row in rows]

            assert tags(await site.id_tags()) == tags(await local.id_tags())
            assert await site.connectors("CP-S") == await local.connectors("CP-S")
            assert await site.meter_values_for(tx) == await local.meter_values_for(tx)
            assert await site.connected() == {"CP-S"}
            assert await site.charger("nope") is None and await site.transaction(999) is None
            assert await site.wallet_movement("TAG-W", 500, "topup", "test") == ("TAG-W", 500)
            # the load: its running session (load management off), the history (every point) and a limit refused alike
            load = await site.site_load()
            assert load == await local.site_load() and [s["transaction_id"] for s in load["sessions"]] == [tx]
            assert (await site.site_load(""))["history"] == (await local.site_load(""))["history"] == []
            for bad in (0, -1.0):
                with pytest.raises(SiteError, match=r"limit.*0\.1"):
                    await site.set_site_limit(bad)
        finally:
            if kind == "remote":
                await site.stop()


async def test_install_operator_ca_from_an_attached_console(csms: CentralSystem, api: ApiServer) -> None:
    """The operator CA lives with the service: an attached console asks the service to install it
    (POST /api/chargers/{id}/install-operator-ca), and the charger gets the site's CA."""
    from ocpp_console.csms import errors
    from tests.test_sim import base_url, running

    site = RemoteSite(api.url, api.token)
    await site.start()
    try:
        async with running(base_url(csms), "SIM-CA") as sim:
            assert await site.install_operator_ca("SIM-CA") == {"status": "Accepted"}
            ca = await csms.operator_ca()
            assert [c.pem for c in sim.certificates.installed] == [ca.certificate_pem]
        with pytest.raises(errors.UnknownCharger, match="NOPE is an unknown charger"):
            await site.install_operator_ca("NOPE")
    finally:
        await site.stop()


async def test_what_changed_while_the_stream_was_away_is_read_again(csms: CentralSystem, api: ApiServer) -> None:
    """Events lost in a gap the stream cannot replay (a new service): the console reads the whole
    site again, so a transaction stopped meanwhile is not left "running", nor a charger "online"."""
    async with charger(csms, "CP-GONE") as gone, charger(csms, "CP-TX") as cp:
        await gone.boot()
        tx = await busy_charger(cp)
        app = ConsoleApp(RemoteSite(api.url, api.token))
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("2")
            await until(pilot, lambda: "online" in _row_text(app, "CP-GONE") and tx in app.live.running)
            port = api.port
            await api.stop()
            await until(pilot, lambda: app.sub_title.startswith("reconnecting"), 15)
            # meanwhile: the transaction stops, one charger leaves
            await cp.call(call.StopTransaction(meter_stop=9000, timestamp=TS, transaction_id=tx, reason="Local"))
            await cp.status(1, ChargePointStatus.available)
            await gone._connection.close()
            await until(pilot, lambda: "CP-GONE" not in csms.sessions, 5)
            assert tx in app.live.running  # the console could not know yet
            csms.settings = csms.settings.model_copy(update={"api_port": port})
            again = ApiServer(csms)  # a new stream: it cannot replay what the old one published
            await again.start()
            try:
                await until(pilot, lambda: app.sub_title == f"attached to {api.url}", 10)
                await until(pilot, lambda: tx not in app.live.running, 5)
                await until(pilot, lambda: "online" not in _row_text(app, "CP-GONE") and "1:Avail" in _row_text(app, "CP-TX"))
                assert app.live.chargers["CP-TX"].connectors[1].transaction_id is None
                await pilot.press("3")
                await until(pilot, lambda: str(tx) not in cells(app))  # not among the running ones
                assert any("read again" in item.text for item in app.live.feed)
            finally:
                await app.site.stop()
                await again.stop()


async def test_the_in_process_console_and_an_attached_one_see_each_others_changes(
        csms: CentralSystem, api: ApiServer) -> None:
    """A top-up, a tag saved, a charger rejected or approved on one console shows on the other
    within a second, whichever is the in-process one."""
    await csms.store.upsert_id_tag("TAG-X")
    local, remote = ConsoleApp(LocalSite(csms)), ConsoleApp(RemoteSite(api.url, api.token))
    async with local.run_test(size=SIZE) as here, remote.run_test(size=SIZE) as there:
        for app, pilot in ((local, here), (remote, there)):
            await pilot.press("4")
            await until(pilot, lambda app=app: "TAG-X" in cells(app))
        for (app, pilot), (other, other_pilot), amount in (((local, here), (remote, there), 1250),
                                                              ((remote, there), (local, here), 250)):
            await app.site.wallet_movement("TAG-X", amount, "topup", "test")
            balance = (await csms.store.id_tag("TAG-X"))["balance"]
            started = time.perf_counter()
            await until(other_pilot, lambda other=other, b=balance: f"{b / 100:.2f}" in " ".join(cells(other)["TAG-X"]))
            assert time.perf_counter() - started < 1.0
        await remote.site.save_id_tag("TAG-X", "Blocked", None, None, "lost card")
        await until(here, lambda: "Blocked" in cells(local)["TAG-X"], 1.0)
        await local.site.save_id_tag("TAG-X", "Accepted", None, None, "found again")
        await until(there, lambda: "Accepted" in cells(remote)["TAG-X"], 1.0)
        async with charger(csms, "CP-P") as cp:
            await cp.boot()
            for app, pilot in ((local, here), (remote, there)):
                await pilot.press("2")
                await until(pilot, lambda app=app: "Accepted" in cells(app).get("CP-P", []))
            await remote.site.reject("CP-P")
            await until(here, lambda: "Rejected" in cells(local)["CP-P"], 1.0)
            await local.site.approve("CP-P")
            await until(there, lambda: "Accepted" in cells(remote)["CP-P"], 1.0)
