"""Load management's finer rules end to end, over real sockets with the simulator: priorities
(fleet before visitors, a tag's own over its charger's), a charger's provisioned maximum, headroom
a car does not use going to the others, and a charger that refuses charging profiles counted as
a fixed load at its maximum (an `ocpp` library ChargePoint that answers so)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from typing import Any

import pytest
from ocpp.routing import on
from ocpp.v16 import call, call_result
from ocpp.v16.enums import Action, ChargePointStatus, ChargingProfileStatus

from ocpp_console import provision
from ocpp_console.csms import CentralSystem
from ocpp_console.settings import Settings
from ocpp_console.sim import SimulatedCharger
from tests.clients import TS, TestCharger
from tests.conftest import charger as library_charger
from tests.conftest import running
from tests.test_api import api_for, get
from tests.test_load import CHARGER_W, PowerWatch, failsafe, offered, share_profile
from tests.test_sim import SPEED, base_url, big_ev, fast_options, until

MIN_W = 6 * 230 * 3  # the least a car takes: 6 A on three phases


@pytest.fixture
def settings(settings_factory: Callable[..., Settings]) -> Settings:
    return settings_factory(site_limit_kw=20, load_policy="priority", load_lease_seconds=10,
                            load_rotation_minutes=60, unknown_id_tags="accept", api_port=0)


@contextlib.asynccontextmanager
async def sims(csms: CentralSystem, *ids: str) -> AsyncIterator[list[SimulatedCharger]]:
    options = fast_options(max_current_a=32.0)
    chargers = [SimulatedCharger(cid, base_url(csms), speed=SPEED, seed=i, options=options) for i, cid in enumerate(ids)]
    async with running(chargers):
        await until(lambda: all(len(failsafe(c)) == 1 for c in chargers), 15, "every charger's failsafe")
        yield chargers


def near(watts: float, expected: float) -> bool:
    return abs(watts - expected) < 2


async def test_a_fleet_tag_is_filled_before_visitors(csms: CentralSystem) -> None:
    """Under load_policy "priority": the van's tag (5) is served first and gets all that is left
    after the visitors' minimums; a tag's own priority wins over its charger's (P1 has 9, but its
    visitor's tag says 0). With less room a visitor is paused, never the van."""
    await provision.add_charger(csms.store, "SIM-P1", priority=9)
    await provision.add_or_update_tag(csms.store, "VAN-1", priority=5, currency="EUR")
    await provision.add_or_update_tag(csms.store, "VISITOR-A", priority=0, currency="EUR")
    async with sims(csms, "SIM-P1", "SIM-P2", "SIM-P3") as (p1, p2, p3):
        p1.plug_in(1, "VISITOR-A", ev=big_ev(CHARGER_W))
        p2.plug_in(1, "VAN-1", ev=big_ev(CHARGER_W))
        p3.plug_in(1, "VISITOR-B", ev=big_ev(CHARGER_W))  # no priority of its own, nor its charger: 0
        await until(lambda: near(offered(p2), 20_000 - 2 * MIN_W) and near(offered(p1), MIN_W)
                    and near(offered(p3), MIN_W), 15, "the van filled, the visitors at their minimum")

        await csms.load.set_limit(10)  # room for two minimums: the van and one visitor
        await until(lambda: near(offered(p2), 10_000 - MIN_W) and sorted((offered(p1), offered(p3))) == [0, MIN_W],
                    15, "one visitor paused, the van charging")
        states = {s["id_tag"]: s["state"] for s in csms.load.snapshot()["sessions"]}
        assert states["VAN-1"] == "charging" and sorted((states["VISITOR-A"], states["VISITOR-B"])) == [
            "charging", "paused"]


async def test_a_charger_provisioned_at_11_kw_never_gets_more(csms: CentralSystem) -> None:
    """The limit (40 kW) would give each of two cars 20 kW: the charger provisioned at 11 kW gets
    11 (its failsafe too), the other one what it can take (the setting charger_max_kw, 22 kW)."""
    await csms.load.set_limit(40)
    await provision.add_charger(csms.store, "SIM-M1", max_kw=11)
    async with sims(csms, "SIM-M1", "SIM-M2") as (weak, strong):
        watch = PowerWatch([weak])
        watch.limit_w = 11_000.0
        try:
            # its failsafe too: a car plugged in before its share comes draws no more than 11 kW
            assert failsafe(weak) == [11_000] and failsafe(strong) == [20_000]
            weak.plug_in(1, "DRIVER-1", ev=big_ev(CHARGER_W))
            strong.plug_in(1, "DRIVER-2", ev=big_ev(CHARGER_W))
            await until(lambda: near(offered(weak), 11_000) and near(offered(strong), 22_000), 15, "11 and 22 kW")
            await until(lambda: watch.power_w() > 10_900, 10, "the weak charger drawing its maximum")
            assert share_profile(weak).periods[0].limit == 11_000
            strong.request_stop(1)  # the room it leaves is still not the weak charger's
            await until(lambda: strong.connectors[1].transaction is None, 10, "the strong one stopped")
            await csms.load.decide()
            assert near(offered(weak), 11_000)
            assert watch.peak_w <= 11_000 + 1, f"the 11 kW charger drew {watch.peak_w:.0f} W"
        finally:
            await watch.close()


async def test_headroom_a_car_does_not_use_goes_to_the_others(csms: CentralSystem) -> None:
    """A car that takes 3.7 kW of its 10 kW share for `under_draw_s` is capped at what it draws
    plus a margin (1 kW); the other two share the rest."""
    csms.load.under_draw_s = 0.5  # 30 s in service
    await csms.load.set_limit(30)
    async with sims(csms, "SIM-U1", "SIM-U2", "SIM-U3") as (small, big1, big2):
        small.plug_in(1, "SMALL-CAR", ev=big_ev(3_700))
        big1.plug_in(1, "BIG-CAR-1", ev=big_ev(CHARGER_W))
        big2.plug_in(1, "BIG-CAR-2", ev=big_ev(CHARGER_W))
        await until(lambda: all(share_profile(c) is not None for c in (small, big1, big2)), 15, "three shares")
        capped = 3_700 + 1_000
        await until(lambda: near(offered(small), capped) and near(offered(big1), (30_000 - capped) / 2)
                    and near(offered(big2), (30_000 - capped) / 2), 15, "the small car capped, its headroom shared")
        session = next(s for s in csms.load.snapshot()["sessions"] if s["id_tag"] == "SMALL-CAR")
        assert session["reason"] == "cap" and session["allocated_kw"] == 4.7


class RefusingCharger(TestCharger):
    """A charger without smart charging: every SetChargingProfile is answered NotSupported."""

    @on(Action.set_charging_profile)
    def _set_profile(self, **kw: Any) -> Any:
        self._got("SetChargingProfile", **kw)
        return call_result.SetChargingProfile(status=ChargingProfileStatus.not_supported)


async def test_a_charger_refusing_profiles_is_a_fixed_load(csms: CentralSystem) -> None:
    """It is counted at its maximum (provisioned here: 11 kW) whether it draws or not, the others
    share what is left of the limit, and the API lists it in fixed_chargers."""
    await csms.load.set_limit(40)
    await provision.add_charger(csms.store, "OLD-1", max_kw=11)
    async with library_charger(csms, "OLD-1", RefusingCharger) as old, sims(csms, "SIM-F1", "SIM-F2") as (f1, f2):
        await old.boot()
        await old.status(1, ChargePointStatus.available)
        await until(lambda: "OLD-1" in csms.load.snapshot()["fixed_chargers"], 10, "the refuser marked")
        f1.plug_in(1, "DRIVER-1", ev=big_ev(CHARGER_W))
        f2.plug_in(1, "DRIVER-2", ev=big_ev(CHARGER_W))
        await until(lambda: near(offered(f1), 20_000) and near(offered(f2), 20_000), 15, "20 kW each: no session there")

        started = await old.call(call.StartTransaction(connector_id=1, id_tag="OLD-DRIVER", meter_start=0, timestamp=TS))
        await old.status(1, ChargePointStatus.charging)
        await until(lambda: near(offered(f1), 14_500) and near(offered(f2), 14_500), 15, "(40 - 11) / 2 kW each")
        async with api_for(csms) as (_, http):
            status, load = await get(http, "/api/site/load")
        assert status == 200 and load["fixed_chargers"] == ["OLD-1"]
        fixed = next(s for s in load["sessions"] if s["charger_id"] == "OLD-1")
        assert (fixed["transaction_id"], fixed["state"], fixed["allocated_kw"]) == (started.transaction_id, "fixed", 11.0)
        assert "SetChargingProfile NotSupported" in fixed["reason"]
        assert load["allocated_kw"] == 40.0
        # it was asked once (its failsafe; it does not say its stack level and unit: 0, W), then left alone
        asked = [kw["cs_charging_profiles"] for a, kw in old.received if a == "SetChargingProfile"]
        assert len(asked) == 1 and asked[0]["stack_level"] == 0
        assert asked[0]["charging_schedule"]["charging_rate_unit"] == "W"


def test_the_site_limit_from_flag_environment_toml_or_amps(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """As the README's Load management says: kW by flag, environment or TOML; or amps per phase
    with the site's voltage and phases."""
    from ocpp_console.settings import load_settings

    config = tmp_path / "config.toml"
    config.write_text("site_limit_kw = 40\nload_policy = \"priority\"\n")
    assert load_settings(config).site_limit_w == 40_000 and load_settings(config).load_policy == "priority"
    monkeypatch.setenv("OCPP_CONSOLE_SITE_LIMIT_KW", "60")
    assert load_settings(config).site_limit_w == 60_000  # the environment over the file
    assert load_settings(config, site_limit_kw=80).site_limit_w == 80_000  # the flag over both
    monkeypatch.delenv("OCPP_CONSOLE_SITE_LIMIT_KW")
    config.write_text("site_limit_amps = 63\nsite_voltage = 230\nsite_phases = 3\n")
    assert load_settings(config).site_limit_w == 63 * 230 * 3
    config.write_text("site_limit_amps = 32\nsite_phases = 1\n")
    assert load_settings(config).site_limit_w == 32 * 230


class AmpsCharger(TestCharger):
    """A charger that takes limits in amps only, at most at stack level 3."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.config.update({"ChargeProfileMaxStackLevel": ("3", True),
                            "ChargingScheduleAllowedChargingRateUnit": ("Current", True),
                            "NumberOfConnectors": ("1", True)})


async def test_profiles_follow_the_chargers_stack_level_and_rate_unit(csms: CentralSystem) -> None:
    """GetConfiguration first; then its failsafe (TxDefaultProfile) and its share (TxProfile for
    the transaction) in A per phase, at its ChargeProfileMaxStackLevel."""
    async with library_charger(csms, "AMPS-1", AmpsCharger) as cp:
        await cp.boot()
        await cp.status(1, ChargePointStatus.available)

        def profiles() -> list[dict[str, Any]]:
            return [kw["cs_charging_profiles"] for action, kw in cp.received if action == "SetChargingProfile"]

        await until(lambda: profiles(), 10, "its failsafe")
        assert [a for a, _ in cp.received][0] == "GetConfiguration"
        failsafe_profile = profiles()[0]
        assert failsafe_profile["charging_profile_purpose"] == "TxDefaultProfile"
        assert failsafe_profile["stack_level"] == 3
        schedule = failsafe_profile["charging_schedule"]
        assert schedule["charging_rate_unit"] == "A"
        assert schedule["charging_schedule_period"][0]["limit"] == Decimal("28.9")  # 20 kW / (230 V x 3), rounded down
        started = await cp.call(call.StartTransaction(connector_id=1, id_tag="DRIVER", meter_start=0, timestamp=TS))
        await cp.status(1, ChargePointStatus.charging)
        await until(lambda: any(p["charging_profile_purpose"] == "TxProfile" for p in profiles()), 10, "its share")
        share = next(p for p in profiles() if p["charging_profile_purpose"] == "TxProfile")
        assert share["transaction_id"] == started.transaction_id and share["stack_level"] == 3
        assert share["charging_schedule"]["charging_rate_unit"] == "A"
        assert share["charging_schedule"]["charging_schedule_period"][0]["limit"] == Decimal("28.9")  # 20 kW: its maximum is 22
