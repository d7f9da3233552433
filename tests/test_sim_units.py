"""The simulator's parts on their own: car, meter, configuration, local list, profiles, queue."""

from __future__ import annotations

import asyncio
import random
from datetime import datetime, timedelta, timezone

import pytest
from ocpp.v16.enums import (
    Action,
    ChargingProfileStatus,
    ChargingRateUnitType,
    ConfigurationStatus,
    UpdateStatus,
)

from ocpp_console.sim import EV, Configuration, LocalAuth, Meter, TagPool, charger_url, random_ev
from ocpp_console.sim.clock import SimClock, parse_time
from ocpp_console.sim.outbox import NotConnected, Outbox, Outgoing
from ocpp_console.sim.smart import ChargingProfiles, Electrical, Limits, TxContext
from ocpp_console.sim.transfer import bump_version, firmware_version_from, upload_url

T0 = datetime(2026, 11, 25, 8, 0, tzinfo=timezone.utc)
LIMITS = Limits(connectors=2, max_stack_level=10, allowed_units=("Current", "Power"), max_periods=24, max_installed=20)
GRID = Electrical(230.0, 3)


# -- car and meter --------------------------------------------------------------------------


def test_ev_ramps_up_tapers_and_stops_at_its_target() -> None:
    ev = EV(capacity_wh=10_000.0, soc=50.0, target_soc=90.0, max_power_w=10_000.0, ramp_s=100.0, taper_soc=80.0)
    assert ev.demand_w() == pytest.approx(1_000.0)  # 10 % at the start of the ramp
    ev.absorb(100.0, 50.0)
    assert ev.demand_w() == pytest.approx(5_000.0)  # half-way up the ramp
    assert ev.soc == pytest.approx(51.0)  # 100 Wh of 10 kWh is 1 %
    ev.charging_s = 1_000.0
    assert ev.demand_w() == pytest.approx(10_000.0)
    ev.soc = 85.0
    assert ev.demand_w() == pytest.approx(7_500.0)  # (100 - 85) / (100 - 80)
    ev.soc = 90.0
    assert ev.full and ev.demand_w() == 0.0
    ev.absorb(-5.0, 10.0)
    assert ev.soc == 90.0


def test_random_ev_respects_the_connector_and_is_seedable() -> None:
    cars = [random_ev(random.Random(7), 7_400.0) for _ in range(2)]
    assert cars[0] == cars[1]
    assert all(10.0 <= c.soc <= 60.0 and c.max_power_w <= 7_400.0 and c.soc < c.target_soc for c in cars)


def test_meter_register_only_grows_in_whole_wh() -> None:
    meter = Meter(energy_wh=1000.9, nominal_voltage=230.0, phases=3)
    assert meter.register_wh == 1000
    added = meter.advance(6_900.0, 3600.0)
    assert added == pytest.approx(6_900.0) and meter.register_wh == 7_900
    assert meter.current_a() == pytest.approx(10.0)
    before = meter.register_wh
    meter.advance(-500.0, 60.0)  # a meter never runs backwards
    assert meter.register_wh == before and meter.power_w == 0.0


def test_sim_clock_scales_waits() -> None:
    clock = SimClock(60.0)
    assert clock.to_real(60.0) == 1.0 and clock.to_sim(2.0) == 120.0
    with pytest.raises(ValueError):
        SimClock(0)
    assert parse_time("2026-11-25T08:00:00Z") == T0
    assert parse_time("2026-11-25T09:00:00+01:00") == T0
    assert parse_time("2026-11-25T08:00:00") == T0  # no zone: UTC, as OCPP means
    assert parse_time("yesterday") is None


# -- configuration ----------------------------------------------------------------------------


def test_configuration_keys_flags_and_validation() -> None:
    config = Configuration(2, {"MeterValueSampleInterval": "10"})
    known, unknown = config.report()
    keys = {k["key"]: k for k in known}
    assert keys["NumberOfConnectors"] == {"key": "NumberOfConnectors", "readonly": True, "value": "2"}
    assert keys["MeterValueSampleInterval"]["value"] == "10"
    assert "AuthorizationKey" not in keys and unknown == []
    assert config.report(["AuthorizationKey", "Nope"]) == ([], ["Nope"])

    assert config.change("NumberOfConnectors", "4") == ConfigurationStatus.rejected
    assert config.change("Nope", "1") == ConfigurationStatus.not_supported
    assert config.change("HeartbeatInterval", "-5") == ConfigurationStatus.rejected
    assert config.change("HeartbeatInterval", " 30") == ConfigurationStatus.accepted
    assert config.get_int("HeartbeatInterval") == 30
    assert config.change("LocalAuthorizeOffline", "yes") == ConfigurationStatus.rejected
    assert config.change("LocalAuthorizeOffline", "FALSE") == ConfigurationStatus.accepted
    assert config.get_bool("LocalAuthorizeOffline") is False
    assert config.change("MeterValuesSampledData", "Energy.Active.Import.Register, SoC") == ConfigurationStatus.accepted
    assert config.get_list("MeterValuesSampledData") == ["Energy.Active.Import.Register", "SoC"]
    assert config.change("MeterValuesSampledData", "RPM") == ConfigurationStatus.rejected  # not measured here
    eleven = ",".join(["Voltage"] * 11)
    assert config.change("MeterValuesSampledData", eleven) == ConfigurationStatus.rejected  # over MaxLength 10
    assert config.change("AuthorizationKey", "x" * 15) == ConfigurationStatus.rejected
    assert config.change("AuthorizationKey", "a" * 40) == ConfigurationStatus.accepted
    with pytest.raises(KeyError):
        Configuration(1, {"NoSuchKey": "1"})


# -- local authorization ------------------------------------------------------------------------


def test_local_list_updates() -> None:
    auth = LocalAuth()
    update = auth.update
    assert auth.list_version(True) == 0 and auth.list_version(False) == -1
    entries = [{"id_tag": "A", "id_tag_info": {"status": "Accepted"}}, {"id_tag": "B", "id_tag_info": {"status": "Blocked"}}]
    assert update(True, 5, "Full", entries, 50, 100) == UpdateStatus.accepted
    assert auth.list_version(True) == 5 and auth.lookup_list("A").accepted and not auth.lookup_list("B").accepted
    assert update(True, 5, "Differential", [], 50, 100) == UpdateStatus.version_mismatch
    assert update(True, 4, "Differential", [], 50, 100) == UpdateStatus.version_mismatch
    assert update(True, 6, "Differential", [{"id_tag": "A"}, {"id_tag": "C", "id_tag_info": {"status": "Accepted"}}], 50, 100) == (
        UpdateStatus.accepted
    )
    assert sorted(auth.local_list) == ["B", "C"]
    assert update(True, 7, "Full", [{"id_tag": "D"}], 50, 100) == UpdateStatus.failed  # full entries need idTagInfo
    assert update(True, 7, "Full", entries, 1, 100) == UpdateStatus.failed  # over SendLocalListMaxLength
    assert update(True, 7, "Full", entries, 50, 1) == UpdateStatus.failed  # over LocalAuthListMaxLength
    assert update(False, 7, "Full", entries, 50, 100) == UpdateStatus.not_supported
    assert auth.version == 6 and sorted(auth.local_list) == ["B", "C"]  # failures change nothing
    assert update(True, 8, "Full", [], 50, 100) == UpdateStatus.accepted
    assert auth.list_version(True) == 0  # empty list


def test_expired_entries_are_not_accepted() -> None:
    auth = LocalAuth()
    past = (datetime.now(timezone.utc) - timedelta(days=1)).isoformat()
    auth.update(True, 1, "Full", [{"id_tag": "OLD", "id_tag_info": {"status": "Accepted", "expiry_date": past}}], 50, 100)
    assert auth.lookup_list("OLD").status == "Expired"


# -- charging profiles --------------------------------------------------------------------------


def _profile(pid: int, purpose: str, periods: list[tuple[int, float]], *, stack: int = 0, unit: str = "W",
             kind: str = "Absolute", start: datetime | None = T0, **extra: object) -> dict[str, object]:
    schedule: dict[str, object] = {
        "charging_rate_unit": unit,
        "charging_schedule_period": [{"start_period": s, "limit": limit} for s, limit in periods],
    }
    if start is not None:
        schedule["start_schedule"] = start.isoformat()
    if "duration" in extra:
        schedule["duration"] = extra.pop("duration")
    return {"charging_profile_id": pid, "stack_level": stack, "charging_profile_purpose": purpose,
            "charging_profile_kind": kind, "charging_schedule": schedule, **extra}


def _no_tx(_connector: int) -> TxContext | None:
    return None


def test_profile_stack_levels_and_purposes() -> None:
    profiles = ChargingProfiles()
    tx = TxContext(T0, 42)
    install = profiles.install
    assert install(0, _profile(1, "TxDefaultProfile", [(0, 7000)]), LIMITS, _no_tx) == ChargingProfileStatus.accepted
    assert install(0, _profile(2, "TxDefaultProfile", [(0, 4000)], stack=2, duration=600), LIMITS, _no_tx) == (
        ChargingProfileStatus.accepted
    )
    at = T0 + timedelta(seconds=60)
    assert profiles.transaction_limit_w(1, at, None, GRID) == 4000  # the higher stack level
    assert profiles.transaction_limit_w(1, T0 + timedelta(seconds=601), None, GRID) == 7000  # after its duration
    # A TxProfile needs the transaction and beats the defaults; 10 A x 230 V x 3 phases.
    assert install(1, _profile(3, "TxProfile", [(0, 10)], unit="A"), LIMITS, _no_tx) == ChargingProfileStatus.rejected
    assert install(1, _profile(3, "TxProfile", [(0, 10)], unit="A", transaction_id=7), LIMITS, lambda c: tx) == (
        ChargingProfileStatus.rejected  # another transaction's
    )
    assert install(1, _profile(3, "TxProfile", [(0, 10)], unit="A"), LIMITS, lambda c: tx) == ChargingProfileStatus.accepted
    assert profiles.transaction_limit_w(1, at, tx, GRID) == pytest.approx(6900.0)
    assert profiles.transaction_limit_w(2, at, None, GRID) == 4000  # not on the other connector
    profiles.end_transaction(1)
    assert profiles.transaction_limit_w(1, at, None, GRID) == 4000
    # Same purpose and stack level on the same connector: replaced.
    assert install(0, _profile(9, "TxDefaultProfile", [(0, 3000)], stack=2), LIMITS, _no_tx) == ChargingProfileStatus.accepted
    assert sorted(p.id for p in profiles.installed) == [1, 9]


def test_profile_validation() -> None:
    profiles = ChargingProfiles()
    rejected = ChargingProfileStatus.rejected
    assert profiles.install(1, _profile(1, "ChargePointMaxProfile", [(0, 1)]), LIMITS, _no_tx) == rejected
    assert profiles.install(3, _profile(1, "TxDefaultProfile", [(0, 1)]), LIMITS, _no_tx) == rejected  # no connector 3
    assert profiles.install(0, _profile(1, "TxDefaultProfile", [(0, 1)], stack=11), LIMITS, _no_tx) == rejected
    many = [(i * 60, 1000) for i in range(25)]
    assert profiles.install(0, _profile(1, "TxDefaultProfile", many), LIMITS, _no_tx) == rejected
    amps_only = Limits(2, 10, ("Current",), 24, 20)
    assert profiles.install(0, _profile(1, "TxDefaultProfile", [(0, 1)]), amps_only, _no_tx) == rejected
    assert profiles.install(0, _profile(1, "TxDefaultProfile", [(0, 1)], kind="Recurring"), LIMITS, _no_tx) == rejected
    assert profiles.install(0, {"charging_profile_id": 1}, LIMITS, _no_tx) == rejected
    small = Limits(2, 10, ("Power",), 24, 1)
    assert profiles.install(0, _profile(1, "TxDefaultProfile", [(0, 1)]), small, _no_tx) == ChargingProfileStatus.accepted
    assert profiles.install(0, _profile(2, "TxDefaultProfile", [(0, 1)], stack=1), small, _no_tx) == rejected
    assert profiles.installed[0].id == 1


def test_recurring_and_validity_window() -> None:
    profiles = ChargingProfiles()
    night = _profile(1, "ChargePointMaxProfile", [(0, 2000), (6 * 3600, 11000)], kind="Recurring",
                     recurrency_kind="Daily", start=T0.replace(hour=0),
                     valid_to=(T0 + timedelta(days=3)).isoformat())
    assert profiles.install(0, night, LIMITS, _no_tx) == ChargingProfileStatus.accepted
    assert profiles.charger_limit_w(T0.replace(hour=3) + timedelta(days=1), GRID) == 2000
    assert profiles.charger_limit_w(T0.replace(hour=9) + timedelta(days=1), GRID) == 11000
    assert profiles.charger_limit_w(T0.replace(hour=3) + timedelta(days=4), GRID) is None  # past validTo


def test_composite_schedule() -> None:
    profiles = ChargingProfiles()
    profiles.install(0, _profile(1, "TxDefaultProfile", [(0, 2000), (1800, 4000)], stack=1, duration=3600), LIMITS, _no_tx)
    profiles.install(0, _profile(2, "TxDefaultProfile", [(0, 5000)]), LIMITS, _no_tx)
    profiles.install(0, _profile(3, "ChargePointMaxProfile", [(0, 11000), (5400, 4500)]), LIMITS, _no_tx)
    schedule = profiles.composite(1, 7200, None, None, GRID, 11040.0, start=T0)
    assert schedule["charging_rate_unit"] == ChargingRateUnitType.watts and schedule["duration"] == 7200
    assert schedule["charging_schedule_period"] == [
        {"start_period": 0, "limit": 2000.0},
        {"start_period": 1800, "limit": 4000.0},
        {"start_period": 3600, "limit": 5000.0},
        {"start_period": 5400, "limit": 4500.0},
    ]
    amps = profiles.composite(1, 1200, ChargingRateUnitType.amps, None, GRID, 11040.0, start=T0)
    assert amps["charging_schedule_period"] == [{"start_period": 0, "limit": 2.9}]  # 2000 / 690
    whole = profiles.composite(0, 7200, None, None, GRID, 22080.0, start=T0)
    assert whole["charging_schedule_period"] == [{"start_period": 0, "limit": 11000.0}, {"start_period": 5400, "limit": 4500.0}]
    assert profiles.clear(connector_id=0, purpose="TxDefaultProfile") and [p.id for p in profiles.installed] == [3]
    assert not profiles.clear(profile_id=99)
    assert profiles.clear(profile_id=3) and profiles.installed == []
    free = profiles.composite(2, 60, None, None, GRID, 11040.0, start=T0)
    assert free["charging_schedule_period"] == [{"start_period": 0, "limit": 11040.0}]


# -- firmware names, urls, tags ------------------------------------------------------------------


def test_firmware_version_from_the_file_name() -> None:
    assert firmware_version_from("https://fw.example/images/sim-2.0.0.bin", "1.0.0") == "2.0.0"
    assert firmware_version_from("ftp://fw.example/fw_v3.1.tar.gz", "1.0.0") == "3.1"
    assert firmware_version_from("http://fw.example/firmware.bin", "1.4.9") == "1.4.10"
    assert firmware_version_from("http://fw.example/latest", "v2.7-rc1") == "v2.7-rc2"
    assert bump_version("abc") == "abc.1" and bump_version("") == "1"
    assert upload_url("ftp://h/dir/", "d.log") == "ftp://h/dir/d.log"
    assert upload_url("http://h/upload", "d.log") == "http://h/upload"


def test_charger_url_and_tag_pool() -> None:
    assert charger_url("ws://h:9000/", "CP 1/a") == "ws://h:9000/CP%201%2Fa"
    assert charger_url("ws://h:9000/ocpp", "CP-1") == "ws://h:9000/ocpp/CP-1"
    pool = TagPool(["A", "B", "A"])
    rng = random.Random(1)
    got = {pool.acquire(rng), pool.acquire(rng)}
    assert got == {"A", "B"} and pool.acquire(rng) is None
    pool.release("A")
    assert pool.acquire(rng) == "A"


# -- the outgoing queue ---------------------------------------------------------------------------


async def test_outbox_keeps_transaction_messages_and_trims_meter_values() -> None:
    box = Outbox(max_meter_values=2)
    loop = asyncio.get_running_loop()
    status = Outgoing(Action.status_notification, lambda: None, future=loop.create_future())
    start = Outgoing(Action.start_transaction, lambda: None, transactional=True)
    meters = [Outgoing(Action.meter_values, lambda: i, transactional=True) for i in range(3)]
    for item in (status, start, *meters):
        box.put(item)
    assert [i.action for i in box] == ["StatusNotification", "StartTransaction", "MeterValues", "MeterValues"]
    assert meters[0] not in list(box)  # the oldest meter value went, never the start
    assert box.drop_untransactional() == 1
    with pytest.raises(NotConnected):
        await status.future  # type: ignore[misc]
    assert box.head() is start and len(box.transactional()) == 3
    waiter = asyncio.ensure_future(box.wait_empty())
    for item in list(box):
        assert not waiter.done()
        box.pop(item)
    await asyncio.wait_for(waiter, 1)
