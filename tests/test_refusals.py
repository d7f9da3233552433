"""Refusals and Remote Starts, headless: the events the central system publishes about them, and
the refusal it keeps on the tag. Real server, the ocpp library's ChargePoint over real sockets."""

from __future__ import annotations

from typing import Any

import pytest
from ocpp.routing import after, on
from ocpp.v16 import call, call_result
from ocpp.v16.enums import Action, ChargePointStatus, RemoteStartStopStatus
from textual.widgets import Input

from ocpp_console.csms import CentralSystem, ChargerOffline
from ocpp_console.csms import events as ev
from ocpp_console.ui.screens.modals import ActionForm
from tests.clients import TS, TestCharger
from tests.conftest import Console, EventWaiter, charger
from tests.test_ui import SIZE, cells, until
from tests.test_ui_sim import simulated


async def _ready(cp: TestCharger) -> None:
    await cp.boot()
    await cp.status(1, ChargePointStatus.available)
    await cp.status(2, ChargePointStatus.available)


async def test_authorize_refusals_are_published_with_their_reason_and_kept_on_the_tag(settings_factory: Any) -> None:
    async with CentralSystem(settings_factory(min_balance="5.00")) as system:
        waiter = EventWaiter(system)
        await system.store.upsert_id_tag("POOR")  # balance 0 < 5.00
        await system.store.upsert_id_tag("BANNED", "Blocked")
        await system.store.upsert_id_tag("OLD", "Accepted", "2020-01-01T00:00:00Z")
        async with charger(system, "CP-REF") as cp:
            await _ready(cp)
            answers = {tag: (await cp.call(call.Authorize(id_tag=tag))).id_tag_info["status"]
                       for tag in ("POOR", "BANNED", "OLD", "NOBODY")}
            assert answers == {"POOR": "Blocked", "BANNED": "Blocked", "OLD": "Expired", "NOBODY": "Invalid"}
            refusals = {}
            for tag in answers:
                event = await waiter.wait_for(lambda e, t=tag: isinstance(e, ev.IdTagRefused) and e.id_tag == t)
                assert isinstance(event, ev.IdTagRefused)
                refusals[tag] = event
        assert refusals["POOR"].sentence() == "id tag POOR refused (Blocked: wallet below minimum) at Authorize"
        assert refusals["BANNED"].sentence() == "id tag BANNED refused (Blocked) at Authorize"
        assert refusals["OLD"].reason == "its expiry date has passed"
        assert refusals["NOBODY"].reason == "unknown id tag"
        tags = {row["id_tag"]: row for row in await system.store.id_tags()}
        poor = tags["POOR"]
        assert (poor["refused_status"], poor["refused_reason"], poor["refused_action"], poor["refused_charger"]) == (
            "Blocked", "wallet below minimum", "Authorize", "CP-REF")
        assert poor["refused_at"]
        assert "NOBODY" not in tags  # an Authorize does not provision a tag


async def test_concurrent_tx_at_start_transaction_names_the_running_one(csms: CentralSystem, waiter: EventWaiter) -> None:
    await csms.store.upsert_id_tag("TWICE")
    async with charger(csms, "CP-CON") as cp:
        await _ready(cp)
        first = await cp.call(call.StartTransaction(connector_id=1, id_tag="TWICE", meter_start=0, timestamp=TS))
        await cp.status(1, ChargePointStatus.charging)
        second = await cp.call(call.StartTransaction(connector_id=2, id_tag="TWICE", meter_start=0, timestamp=TS))
        assert second.id_tag_info["status"] == "ConcurrentTx"
        event = await waiter.wait_for(lambda e: isinstance(e, ev.IdTagRefused))
    assert isinstance(event, ev.IdTagRefused)
    assert event.sentence() == (
        f"id tag TWICE refused (ConcurrentTx: transaction {first.transaction_id} running on CP-CON connector 1) "
        f"at StartTransaction (transaction {second.transaction_id}, connector 2)"
    )
    row = next(r for r in await csms.store.id_tags() if r["id_tag"] == "TWICE")
    assert (row["refused_status"], row["refused_action"]) == ("ConcurrentTx", "StartTransaction")


class StartsAtOnce(TestCharger):
    """Sends its StartTransaction right after accepting a Remote Start, as a charger with the
    cable already in does: it can be handled before the central system has taken the answer in."""

    @after(Action.remote_start_transaction)
    async def _start(self, id_tag: str, connector_id: int | None = None, **_: Any) -> None:
        await self.call(call.StartTransaction(connector_id=connector_id or 1, id_tag=id_tag, meter_start=100,
                                              timestamp=TS))


class AuthorizesFirst(TestCharger):
    """Authorizes a remote tag first (AuthorizeRemoteTxRequests) and starts nothing when refused."""

    @after(Action.remote_start_transaction)
    async def _authorize(self, id_tag: str, **_: Any) -> None:
        await self.call(call.Authorize(id_tag=id_tag))


async def test_an_accepted_remote_start_is_followed_to_its_transaction(csms: CentralSystem, waiter: EventWaiter) -> None:
    await csms.store.upsert_id_tag("DRIVER")
    async with charger(csms, "CP-RS", StartsAtOnce) as cp:
        await _ready(cp)
        result = await csms.commands.remote_start_transaction("CP-RS", "DRIVER", 2)
        assert result.status == "Accepted"
        followed = await waiter.wait_for(lambda e: isinstance(e, ev.RemoteStartFollowed))
        started = next(e for e in waiter.events if isinstance(e, ev.TransactionStarted))
    assert isinstance(followed, ev.RemoteStartFollowed)
    assert (followed.transaction_id, followed.connector_id, followed.id_tag) == (started.transaction_id, 2, "DRIVER")
    assert followed.sentence().startswith(f"transaction {started.transaction_id} started on CP-RS connector 2")
    assert csms.remote_starts.pending() == []


async def test_a_remote_start_without_a_transaction_says_so_with_the_last_refusal(settings_factory: Any) -> None:
    async with CentralSystem(settings_factory(min_balance="1.00")) as system:
        system.remote_starts.window = 0.5  # instead of a minute
        waiter = EventWaiter(system)
        await system.store.upsert_id_tag("BROKE")
        async with charger(system, "CP-NO", AuthorizesFirst) as cp:
            await _ready(cp)
            await system.commands.remote_start_transaction("CP-NO", "BROKE", 1)
            outcome = await waiter.wait_for(lambda e: isinstance(e, ev.RemoteStartUnanswered))
            # a StartTransaction long after the window is not taken for it
            await cp.call(call.StartTransaction(connector_id=1, id_tag="BROKE", meter_start=0, timestamp=TS))
            await waiter.wait_for(lambda e: isinstance(e, ev.TransactionStarted))
    assert isinstance(outcome, ev.RemoteStartUnanswered)
    assert outcome.sentence() == (
        "Remote Start for BROKE on CP-NO connector 1 was accepted, but no transaction started within 0.5 s; "
        "last refusal: Blocked: wallet below minimum at Authorize"
    )
    assert not any(isinstance(e, ev.RemoteStartFollowed) for e in waiter.events)


class Refuses(TestCharger):
    @on(Action.remote_start_transaction)
    def _remote_start(self, **kw: Any) -> Any:
        return call_result.RemoteStartTransaction(status=RemoteStartStopStatus.rejected)


async def test_a_rejected_or_failed_remote_start_is_not_followed(csms: CentralSystem) -> None:
    async with charger(csms, "CP-REJ", Refuses) as cp:
        await _ready(cp)
        result = await csms.commands.remote_start_transaction("CP-REJ", "ANY", 1)
        assert result.status == "Rejected"
        assert csms.remote_starts.pending() == []  # no timer: nothing is owed for a rejected one
    with pytest.raises(ChargerOffline):
        await csms.commands.remote_start_transaction("CP-REJ", "ANY", 1)
    assert csms.remote_starts.pending() == []


# -- in the console ---------------------------------------------------------------------------


async def test_console_shows_a_refused_remote_start_in_the_feed_on_the_tag_and_as_its_outcome(
    settings_factory: Any, console: Console,
) -> None:
    """A driver whose wallet is below the minimum: the operator's Remote Start is accepted by the
    simulated charger, which authorizes the tag first and is refused; the console says so."""
    async with CentralSystem(settings_factory(min_balance="1.00")) as system:
        system.remote_starts.window = 1.0  # instead of a minute
        await system.store.upsert_id_tag("POOR")
        app = await console(system)
        async with app.run_test(size=SIZE) as pilot, simulated(system, "SIM-RF") as sim:
            await sim.wait_ready(10)
            await pilot.press("2")
            await until(pilot, lambda: "SIM-RF" in cells(app) and "online" in cells(app)["SIM-RF"][2])
            await pilot.press("s")
            form = await until(pilot, lambda: isinstance(app.screen, ActionForm) and app.screen)
            assert form.query_one("#f-connector_id", Input).value == "1"  # an Available connector
            await pilot.press(*"POOR")
            await pilot.press("enter")
            outcome = await until(pilot, lambda: next(
                (n for n in app._notifications if n.title == "No transaction started"), None), 10)
            assert str(outcome.message) == (
                "Remote Start for POOR on SIM-RF connector 1 was accepted, but no transaction started within 1 s; "
                "last refusal: Blocked: wallet below minimum at Authorize"
            )
            assert any(str(n.message) == "SIM-RF accepted Remote Start for POOR on connector 1; waiting for its "
                       "transaction to start." for n in app._notifications)
            await pilot.press("1")
            feed = await until(pilot, lambda: [r for r in cells(app, "#feed").values() if r[1] == "SIM-RF"
                                               and "POOR" in r[2]] if app.screen.query("#feed") else None)
            texts = [r[2] for r in feed]
            assert "id tag POOR refused (Blocked: wallet below minimum) at Authorize" in texts
            assert any("accepted, but no transaction started" in t for t in texts)
            await pilot.press("4")
            row = await until(pilot, lambda: app.screen.query("#tags") and cells(app, "#tags").get("POOR"))
            assert row[1] == "Accepted · wallet below minimum"
            assert row[5].startswith("Blocked: wallet below minimum at Authorize on SIM-RF, ")
            # topped up, the marker goes (the last refusal stays: it happened)
            await system.store.wallet_movement("POOR", 500, "EUR", "topup", "cash")
            app.live.versions["tags"] += 1
            row = await until(pilot, lambda: cells(app, "#tags")["POOR"][1] == "Accepted" and cells(app, "#tags")["POOR"])
            assert row[5].startswith("Blocked: wallet below minimum")


async def test_console_says_which_transaction_a_remote_start_started(csms: CentralSystem, console: Console) -> None:
    await csms.store.upsert_id_tag("DRIVER")
    app = await console(csms)
    async with app.run_test(size=SIZE) as pilot, charger(csms, "CP-RSU", StartsAtOnce) as cp:
        await _ready(cp)
        await pilot.press("2")
        await until(pilot, lambda: "CP-RSU" in cells(app))
        await pilot.press("s")
        form = await until(pilot, lambda: isinstance(app.screen, ActionForm) and app.screen)
        await pilot.press(*"DRIVER")
        form.query_one("#f-connector_id", Input).focus()
        await pilot.press("end", "ctrl+u", "2", "enter")
        started = await until(pilot, lambda: next(
            (n for n in app._notifications if n.title == "Transaction started"), None), 10)
        tx = (await csms.store.transactions("CP-RSU", running=True))[0]["id"]
        assert str(started.message) == f"transaction {tx} started on CP-RSU connector 2 (Remote Start for DRIVER)"
        await pilot.press("1")
        await until(pilot, lambda: app.screen.query("#feed") and any(
            r[2] == str(started.message) for r in cells(app, "#feed").values()))
