"""Smart charging (OCPP 1.6 chapter 3.13): installed profiles, the limit in force, composite schedules.

Profiles run on the real clock (the central system's schedules are wall-clock schedules);
limits are kept in watts, a limit in amps becoming amps x voltage x phases.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from ocpp.v16.enums import (
    ChargingProfileKindType,
    ChargingProfilePurposeType,
    ChargingProfileStatus,
    ChargingRateUnitType,
    RecurrencyKind,
)

from ocpp_console.sim.clock import parse_time, timestamp, utc_now

Purpose = ChargingProfilePurposeType
RECURRENCE_S = {RecurrencyKind.daily: 86_400, RecurrencyKind.weekly: 7 * 86_400}
# ChargingScheduleAllowedChargingRateUnit names the units "Current" and "Power".
UNIT_NAMES = {ChargingRateUnitType.amps: "Current", ChargingRateUnitType.watts: "Power"}


@dataclass(frozen=True, slots=True)
class Electrical:
    """What turns amps into watts at this charger."""

    voltage: float = 230.0
    phases: int = 3

    def watts(self, amps: float, phases: int | None = None) -> float:
        return amps * self.voltage * (phases or self.phases)

    def amps(self, watts: float) -> float:
        return watts / (self.voltage * self.phases)


@dataclass(frozen=True, slots=True)
class TxContext:
    """The transaction running on a connector, as profiles need to know it."""

    started: datetime
    transaction_id: int | None  # None until the central system has answered StartTransaction


@dataclass(frozen=True, slots=True)
class Period:
    start: int  # seconds from the schedule's start
    limit: float  # in the profile's unit
    phases: int | None = None


@dataclass(slots=True)
class Profile:
    connector_id: int
    id: int
    stack_level: int
    purpose: ChargingProfilePurposeType
    kind: ChargingProfileKindType
    unit: ChargingRateUnitType
    periods: tuple[Period, ...]
    duration: int | None = None
    start_schedule: datetime | None = None
    recurrency: RecurrencyKind | None = None
    valid_from: datetime | None = None
    valid_to: datetime | None = None
    transaction_id: int | None = None
    installed_at: datetime = field(default_factory=utc_now)
    payload: dict[str, Any] = field(default_factory=dict)

    def _start(self, origin: datetime) -> datetime:
        if self.kind == ChargingProfileKindType.relative:
            return origin  # relative to the transaction's start (or to now without one)
        return self.start_schedule or self.installed_at

    def watts(self, period: Period, electrical: Electrical) -> float:
        if self.unit == ChargingRateUnitType.amps:
            return electrical.watts(period.limit, period.phases)
        return period.limit

    def limit_at(self, t: datetime, origin: datetime, electrical: Electrical) -> float | None:
        """This profile's limit in W at time t, or None when it does not apply then."""
        if self.valid_from is not None and t < self.valid_from:
            return None
        if self.valid_to is not None and t >= self.valid_to:
            return None
        elapsed = (t - self._start(origin)).total_seconds()
        if self.kind == ChargingProfileKindType.recurring and self.recurrency in RECURRENCE_S:
            elapsed %= RECURRENCE_S[self.recurrency]
        if elapsed < 0 or (self.duration is not None and elapsed >= self.duration):
            return None
        current = None
        for period in self.periods:
            if period.start <= elapsed:
                current = period
        return None if current is None else self.watts(current, electrical)

    def boundaries(self, begin: datetime, end: datetime, origin: datetime) -> set[datetime]:
        """Moments in (begin, end) at which this profile's limit may change."""
        points = {p for p in (self.valid_from, self.valid_to) if p is not None}
        start = self._start(origin)
        offsets = [p.start for p in self.periods] + ([self.duration] if self.duration is not None else [])
        if self.kind == ChargingProfileKindType.recurring and self.recurrency in RECURRENCE_S:
            length = RECURRENCE_S[self.recurrency]
            cycle = math.floor((begin - start).total_seconds() / length)
            cycle_start = start + timedelta(seconds=cycle * length)
            while cycle_start < end:
                points.update(cycle_start + timedelta(seconds=o) for o in offsets)
                cycle_start += timedelta(seconds=length)
        else:
            points.update(start + timedelta(seconds=o) for o in offsets)
        return {p for p in points if begin < p < end}


def _number(value: Any) -> float:
    return float(value)  # the ocpp library hands over limits as Decimal


def parse_profile(connector_id: int, data: Mapping[str, Any]) -> Profile:
    """csChargingProfiles as the ocpp library hands it over (snake_case); ValueError if malformed."""
    schedule = data["charging_schedule"]
    periods = tuple(
        sorted(
            (
                Period(int(p["start_period"]), _number(p["limit"]), p.get("number_phases"))
                for p in schedule["charging_schedule_period"]
            ),
            key=lambda p: p.start,
        )
    )
    kind = ChargingProfileKindType(data["charging_profile_kind"])
    recurrency = RecurrencyKind(data["recurrency_kind"]) if data.get("recurrency_kind") else None
    if kind == ChargingProfileKindType.recurring and recurrency is None:
        raise ValueError("a Recurring profile needs a recurrencyKind")
    return Profile(
        connector_id=connector_id,
        id=int(data["charging_profile_id"]),
        stack_level=int(data["stack_level"]),
        purpose=ChargingProfilePurposeType(data["charging_profile_purpose"]),
        kind=kind,
        unit=ChargingRateUnitType(schedule["charging_rate_unit"]),
        periods=periods,
        duration=int(schedule["duration"]) if schedule.get("duration") is not None else None,
        start_schedule=parse_time(schedule.get("start_schedule")),
        recurrency=recurrency,
        valid_from=parse_time(data.get("valid_from")),
        valid_to=parse_time(data.get("valid_to")),
        transaction_id=data.get("transaction_id"),
        payload=dict(data),
    )


@dataclass(frozen=True, slots=True)
class Limits:
    """Charger-wide constraints that SetChargingProfile checks (the read-only configuration keys)."""

    connectors: int
    max_stack_level: int
    allowed_units: tuple[str, ...]
    max_periods: int
    max_installed: int


class ChargingProfiles:
    def __init__(self) -> None:
        self.installed: list[Profile] = []

    def install(
        self, connector_id: int, data: Mapping[str, Any], limits: Limits, tx: Callable[[int], TxContext | None]
    ) -> ChargingProfileStatus:
        """SetChargingProfile: Accepted, or Rejected with nothing changed."""
        try:
            profile = parse_profile(connector_id, data)
        except (KeyError, TypeError, ValueError):
            return ChargingProfileStatus.rejected
        if not 0 <= connector_id <= limits.connectors:
            return ChargingProfileStatus.rejected
        if profile.stack_level > limits.max_stack_level or len(profile.periods) > limits.max_periods:
            return ChargingProfileStatus.rejected
        if UNIT_NAMES[profile.unit] not in limits.allowed_units:
            return ChargingProfileStatus.rejected
        if profile.purpose == Purpose.charge_point_max_profile and connector_id != 0:
            return ChargingProfileStatus.rejected
        if profile.purpose == Purpose.tx_profile:
            # A TxProfile belongs to the transaction running on that connector, so there must be one.
            running = tx(connector_id) if connector_id > 0 else None
            if running is None:
                return ChargingProfileStatus.rejected
            if profile.transaction_id is not None and running.transaction_id not in (None, profile.transaction_id):
                return ChargingProfileStatus.rejected
        kept = [
            p
            for p in self.installed
            if p.id != profile.id
            and not (p.connector_id == connector_id and p.purpose == profile.purpose and p.stack_level == profile.stack_level)
        ]
        if len(kept) + 1 > limits.max_installed:
            return ChargingProfileStatus.rejected
        self.installed = [*kept, profile]
        return ChargingProfileStatus.accepted

    def clear(
        self,
        profile_id: int | None = None,
        connector_id: int | None = None,
        purpose: str | None = None,
        stack_level: int | None = None,
    ) -> bool:
        """ClearChargingProfile: True (Accepted) when at least one profile went, else Unknown."""
        def matches(p: Profile) -> bool:
            if profile_id is not None:
                return p.id == profile_id  # an id names one profile; the other criteria don't apply
            return (
                (connector_id is None or p.connector_id == connector_id)
                and (purpose is None or p.purpose == purpose)
                and (stack_level is None or p.stack_level == stack_level)
            )

        before = len(self.installed)
        self.installed = [p for p in self.installed if not matches(p)]
        return len(self.installed) < before

    def end_transaction(self, connector_id: int) -> None:
        """A TxProfile lives only as long as its transaction."""
        self.installed = [
            p for p in self.installed if not (p.purpose == Purpose.tx_profile and p.connector_id == connector_id)
        ]

    # -- the limit in force -------------------------------------------------------------

    @staticmethod
    def _best(candidates: Iterable[Profile], t: datetime, origin: datetime, electrical: Electrical) -> float | None:
        # Highest stack level that applies at t wins; at equal levels a connector's own profile
        # beats one set for the whole charger (connector 0).
        ranked = sorted(candidates, key=lambda p: (p.stack_level, p.connector_id != 0), reverse=True)
        for profile in ranked:
            limit = profile.limit_at(t, origin, electrical)
            if limit is not None:
                return limit
        return None

    def transaction_limit_w(
        self, connector_id: int, t: datetime, tx: TxContext | None, electrical: Electrical, origin: datetime | None = None
    ) -> float | None:
        """TxProfile if one applies, else TxDefaultProfile; None when neither limits the connector."""
        start = tx.started if tx is not None else (origin or t)
        if tx is not None:
            tx_profiles = [
                p
                for p in self.installed
                if p.purpose == Purpose.tx_profile
                and p.connector_id == connector_id
                and (p.transaction_id is None or tx.transaction_id is None or p.transaction_id == tx.transaction_id)
            ]
            limit = self._best(tx_profiles, t, start, electrical)
            if limit is not None:
                return limit
        defaults = [
            p for p in self.installed if p.purpose == Purpose.tx_default_profile and p.connector_id in (0, connector_id)
        ]
        return self._best(defaults, t, start, electrical)

    def charger_limit_w(self, t: datetime, electrical: Electrical, origin: datetime | None = None) -> float | None:
        """ChargePointMaxProfile: a limit for the whole charger, shared by its connectors."""
        maxima = [p for p in self.installed if p.purpose == Purpose.charge_point_max_profile]
        return self._best(maxima, t, origin or t, electrical)

    # -- GetCompositeSchedule ----------------------------------------------------------

    def composite(
        self,
        connector_id: int,
        duration: int,
        unit: ChargingRateUnitType | None,
        tx: TxContext | None,
        electrical: Electrical,
        hardware_w: float,
        start: datetime | None = None,
    ) -> dict[str, Any]:
        """The schedule that will be in force for `duration` seconds from now (snake_case payload)."""
        begin = start or utc_now()
        end = begin + timedelta(seconds=duration)
        origin = tx.started if tx is not None else begin
        relevant = [
            p
            for p in self.installed
            if p.purpose == Purpose.charge_point_max_profile
            or (connector_id > 0 and p.connector_id in (0, connector_id))
        ]
        points = sorted({begin, *(b for p in relevant for b in p.boundaries(begin, end, origin))})

        def limit(t: datetime) -> float:
            values = [hardware_w, self.charger_limit_w(t, electrical, begin)]
            if connector_id > 0:
                values.append(self.transaction_limit_w(connector_id, t, tx, electrical, origin=begin))
            return min(v for v in values if v is not None)

        unit = unit or ChargingRateUnitType.watts
        periods: list[dict[str, Any]] = []
        for t in points:
            watts = limit(t)
            value = electrical.amps(watts) if unit == ChargingRateUnitType.amps else watts
            value = round(max(0.0, value), 1)  # the schema wants multiples of 0.1
            if periods and periods[-1]["limit"] == value:
                continue
            periods.append({"start_period": int(round((t - begin).total_seconds())), "limit": value})
        return {
            "duration": duration,
            "start_schedule": timestamp(begin),
            "charging_rate_unit": unit,
            "charging_schedule_period": periods,
        }
