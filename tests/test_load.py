"""Site load management end to end, over real sockets with the simulator (whose chargers obey
charging profiles): six chargers at 22 kW under a 40 kW site limit never draw more than the limit
for longer than a change takes, a car that finishes frees its share, a limit lowered at run time
takes effect, a paused session resumes in its turn, and every charger holds its failsafe."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from ocpp_console.csms import CentralSystem
from ocpp_console.csms.load import FAILSAFE_PROFILE_ID, SHARE_PROFILE_ID
from ocpp_console.settings import Settings
from ocpp_console.sim import SimulatedCharger
from tests.conftest import running
from tests.test_api import api_for, get
from tests.test_cli import free_port
from tests.test_service import Served
from tests.test_sim import SPEED, base_url, big_ev, fast_options, until

LIMIT_W = 40_000.0
CHARGER_W = 22_080.0  # 32 A x 230 V x 3
IDS = [f"SIM-L{i}" for i in range(1, 7)]


@pytest.fixture
def settings(settings_factory: Callable[..., Settings]) -> Settings:
    return settings_factory(site_limit_kw=40, load_lease_seconds=10, load_rotation_minutes=0.1,
                            unknown_id_tags="accept", api_port=0)


class PowerWatch:
    """The site's real power, summed over the simulated chargers' meters at every tick: how long
    it was ever over the limit in one go."""

    def __init__(self, chargers: list[SimulatedCharger]) -> None:
        self.chargers = chargers
        self.limit_w = LIMIT_W
        self.longest_over = 0.0
        self.peak_w = 0.0
        self._over_since: float | None = None
        self._task = asyncio.create_task(self._watch())

    def power_w(self) -> float:
        return sum(c.meter.power_w for cp in self.chargers for c in cp.connectors.values() if c.id > 0)

    async def _watch(self) -> None:
        while True:
            now, power = time.monotonic(), self.power_w()
            self.peak_w = max(self.peak_w, power)
            if power > self.limit_w + 1:
                self._over_since = self._over_since or now
                self.longest_over = max(self.longest_over, now - self._over_since)
            else:
                self._over_since = None
            await asyncio.sleep(0.02)

    async def close(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


@contextlib.asynccontextmanager
async def site(csms: CentralSystem) -> AsyncIterator[list[SimulatedCharger]]:
    options = fast_options(max_current_a=32.0)
    chargers = [SimulatedCharger(cid, base_url(csms), speed=SPEED, seed=i, options=options) for i, cid in enumerate(IDS)]
    async with running(chargers):
        yield chargers


def offered(charger: SimulatedCharger) -> float:
    return charger.connectors[1].offered_w


def failsafe(charger: SimulatedCharger) -> list[float]:
    return [p.periods[0].limit for p in charger.profiles.installed if p.id == FAILSAFE_PROFILE_ID + 1]


def share_profile(charger: SimulatedCharger) -> Any:
    return next((p for p in charger.profiles.installed if p.id == SHARE_PROFILE_ID + 1), None)


async def test_six_chargers_share_a_40_kw_site(csms: CentralSystem) -> None:
    load = csms.load
    async with site(csms) as chargers:
        await until(lambda: all(len(failsafe(c)) == 1 for c in chargers), 15, "every charger's failsafe")
        assert all(failsafe(c) == [6_600] for c in chargers)  # a sixth of the limit each (in steps of 100 W)
        watch = PowerWatch(chargers)
        try:
            for charger in chargers:
                charger.plug_in(1, f"DRIVER-{charger.id}", ev=big_ev(CHARGER_W))
            # every car charges, at an equal share of 40 kW, by a TxProfile for its transaction
            def shared() -> bool:
                return all(share_profile(c) is not None and abs(offered(c) - LIMIT_W / 6) < 2 for c in chargers)

            await until(shared, 15, "equal shares")
            await until(lambda: watch.power_w() > LIMIT_W - 100, 10, "the site drawing its limit")
            assert all(share_profile(c).transaction_id == c.connectors[1].transaction.transaction_id for c in chargers)
            snapshot = load.snapshot()
            assert snapshot["limit_kw"] == 40 and len(snapshot["sessions"]) == 6
            assert {s["state"] for s in snapshot["sessions"]} == {"charging"}

            # a car that finishes frees its share for the others
            chargers[0].request_stop(1)
            await until(lambda: all(abs(offered(c) - LIMIT_W / 5) < 2 for c in chargers[1:]), 15, "shares of five")
            # the failsafes: a running connector falls to a sixth when its lease ends; the idle one gets
            # what the others leave (nothing), so a car plugged in while nobody decides adds nothing
            await until(lambda: failsafe(chargers[0]) == [0], 5, "no failsafe room on the idle connector")
            assert all(failsafe(c) == [6_600] for c in chargers[1:])

            # a limit lowered at run time: 20 kW leave room for four minimums (4 x 4.14 kW); one waits
            watch.limit_w = 20_000.0
            await load.set_limit(20)
            await until(lambda: sorted(round(offered(c)) for c in chargers[1:]) == [0, 5000, 5000, 5000, 5000], 15,
                        "four sessions at 5 kW, one paused")
            paused = next(c for c in chargers[1:] if offered(c) == 0)
            assert paused.connectors[1].status == "SuspendedEVSE"
            assert next(s for s in load.snapshot()["sessions"] if s["charger_id"] == paused.id)["state"] == "paused"
            # its turn comes (rotation every 6 s here): it charges again, another one waits
            await until(lambda: offered(paused) > 0, 20, "the paused session's turn")
            await until(lambda: sorted(round(offered(c)) for c in chargers[1:]) == [0, 5000, 5000, 5000, 5000], 10)
            assert watch.longest_over < 1.0, f"over the limit for {watch.longest_over:.2f} s in one go"
            assert watch.peak_w <= LIMIT_W + 1  # never above the first limit, not even for a moment
        finally:
            await watch.close()


async def test_the_site_stays_under_its_limit_when_the_central_system_dies(tmp_path: Path) -> None:
    """`serve` is killed (SIGKILL) mid-session: each charger keeps its share until its lease ends,
    then falls back to its failsafe default; a car plugged in meanwhile gets what was left (here
    nothing). The site never draws more than its limit."""
    port = free_port()
    served = Served(tmp_path, "--site-limit-kw", "40", "--load-lease-seconds", "10", "--unknown-chargers", "accept",
                    "--unknown-id-tags", "accept", port=port)
    try:
        await asyncio.to_thread(served.wait_for, r"site limit 40\.0 kW")
        options = fast_options(max_current_a=32.0, call_timeout=2.0)
        chargers = [SimulatedCharger(cid, f"ws://127.0.0.1:{port}", speed=SPEED, seed=i, options=options)
                    for i, cid in enumerate(IDS)]
        async with running(chargers):
            watch = PowerWatch(chargers)
            try:
                await until(lambda: all(failsafe(c) == [6_600] for c in chargers), 20, "every charger's failsafe")
                for charger in chargers[1:]:
                    charger.plug_in(1, f"DRIVER-{charger.id}", ev=big_ev(CHARGER_W))
                await until(lambda: all(abs(offered(c) - 8_000) < 2 for c in chargers[1:]), 20, "shares of five")
                await until(lambda: failsafe(chargers[0]) == [0] and all(failsafe(c) == [6_600] for c in chargers[1:]), 10)

                served.proc.kill()  # no goodbye: the chargers are on their own
                assert await asyncio.to_thread(served.proc.wait, 10) == -9
                chargers[0].plug_in(1, "LATE-DRIVER", ev=big_ev(CHARGER_W))
                # within the lease (10 s) every running charger falls back to its failsafe
                await until(lambda: all(abs(offered(c) - 6_600) < 2 for c in chargers[1:]), 15, "failsafe shares")
                assert offered(chargers[0]) == 0
                assert watch.power_w() <= 5 * 6_600 + 1
                assert watch.peak_w <= LIMIT_W + 1, f"the site drew {watch.peak_w:.0f} W"
            finally:
                await watch.close()
                for c in chargers:
                    c.options.drain_timeout_s = 0.5  # stopped by running() as the block ends
    finally:
        served.stop()


async def test_the_load_and_the_limit_over_the_api(csms: CentralSystem) -> None:
    async with site(csms) as chargers, api_for(csms) as (api, http):
        await until(lambda: all(len(failsafe(c)) == 1 for c in chargers), 15, "every charger's failsafe")
        for charger in chargers[:2]:
            charger.plug_in(1, f"DRIVER-{charger.id}", ev=big_ev(CHARGER_W))
        await until(lambda: all(share_profile(c) is not None for c in chargers[:2]), 15, "two shares")
        status, load = await get(http, "/api/site/load")
        assert status == 200 and load["limit_kw"] == 40 and load["policy"] == "equal"
        assert sorted((s["charger_id"], s["state"], s["allocated_kw"]) for s in load["sessions"]) == [
            ("SIM-L1", "charging", 20.0), ("SIM-L2", "charging", 20.0)]

        async with http.put("/api/site/limit", json={"limit_kw": 10}) as response:
            assert response.status == 200
            answer = await response.json()
        assert answer["limit_kw"] == 10 and [s["allocated_kw"] for s in answer["sessions"]] == [5.0, 5.0]
        await until(lambda: all(abs(offered(c) - 5_000) < 2 for c in chargers[:2]), 10, "5 kW each")

        for bad in ({"limit_kw": -3}, {"limit_kw": "lots"}, {}, {"limit_kw": 10, "extra": 1}):
            async with http.put("/api/site/limit", json=bad) as response:
                assert response.status == 400, bad
                assert "limit_kw" in (await response.json())["message"] or "extra" in (await response.json())["message"]

        async with http.put("/api/site/limit", json={"limit_kw": None}) as response:
            assert response.status == 200 and (await response.json())["limit_kw"] is None
        # off: our shares and failsafes leave the chargers, the cars take what they can
        await until(lambda: not any(p.id in (FAILSAFE_PROFILE_ID + 1, SHARE_PROFILE_ID + 1)
                                    for c in chargers for p in c.profiles.installed), 10, "profiles cleared")
        await until(lambda: all(offered(c) > 20_000 for c in chargers[:2]), 10, "full power")


async def test_a_limit_changed_by_the_operator_is_decided_once(csms: CentralSystem) -> None:
    """change_limit decides at once and answers with that decision; the decision loop is not
    woken to make the same one again (with 500 sessions, a second round of commands)."""
    from ocpp_console.csms.load import DEBOUNCE_S

    decisions: list[Any] = []
    csms.events.subscribe(lambda event: decisions.append(event) if type(event).__name__ == "LoadDecided" else None)
    snapshot = await csms.load.change_limit(30)
    assert snapshot["limit_kw"] == 30 and len(decisions) == 1
    # nothing to wait for but the absence of a second decision: five times the loop's debounce
    await asyncio.sleep(5 * DEBOUNCE_S)
    assert len(decisions) == 1
    await csms.load.set_limit(20)  # the loop's own path still decides, once
    await until(lambda: len(decisions) == 2, 5, "the loop's decision")
