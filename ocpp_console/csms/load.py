"""Site load management: the running sessions share the grid connection (`site_limit_kw`), never
over it, decided by the central system continuously and sent as OCPP 1.6 smart charging.

- Each running session gets its share (csms/allocation.py) as a TxProfile for its transaction, at
  the charger's highest stack level (ChargeProfileMaxStackLevel), in the unit it accepts
  (ChargingScheduleAllowedChargingRateUnit: W where it can, else A per phase).
- A share is a lease: its schedule lasts `load_lease_seconds` and is renewed at half of that. If
  the central system stops or the link drops, the charger falls back to its TxDefaultProfile: the
  failsafe, sent to every charger on connection, the limit divided by the number of connectors of
  the site, so that the site stays under its limit whatever happens here.
- On a change the reductions are sent first, and the increases only once they are answered, so
  the site is never over the limit in between.
- A charger that refuses profiles (Rejected, NotSupported, a CALLERROR) is counted as a fixed load
  at its maximum, and shown so.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from ocpp.v16.enums import (
    ChargingProfileKindType,
    ChargingProfilePurposeType,
    ChargingProfileStatus,
    ChargingRateUnitType,
    ConfigurationKey,
)

from ocpp_console.csms import events as ev
from ocpp_console.csms.allocation import MIN_AMPS, Allocation, Demand, allocate
from ocpp_console.csms.errors import CallErrorReceived, CommandError, InvalidAnswer
from ocpp_console.csms.load_model import (
    STEP_W,
    ChargerLoad,
    LoadPoint,
    Plan,
    SessionLoad,
    check_limit,
    floor_step,
    iso_or_none,
    kw_text,
    kw_value,
    session_state,
)
from ocpp_console.timeutil import iso, utcnow

if TYPE_CHECKING:
    from ocpp_console.csms.server import CentralSystem

log = logging.getLogger("ocpp_console.load")

SHARE_PROFILE_ID = 7_000  # + connector id: one TxProfile per connector, replaced by each share
FAILSAFE_PROFILE_ID = 6_000  # + connector id: its TxDefaultProfile, the failsafe
CLOCK_MARGIN_S = 60  # a share starts this much before now: a charger whose clock is behind applies it at once
DEBOUNCE_S = 0.2  # changes within this are decided together
UNDER_DRAW = 0.8  # a car drawing less than this part of its share for UNDER_DRAW_S ...
UNDER_DRAW_S = 30.0  # (LoadManager.under_draw_s: tests shorten it)
CAP_MARGIN_W = 1_000.0  # ... is capped at what it draws plus this; the rest goes to the others
HISTORY = 3_600  # points of the site's power kept for the chart
REFUSED = (ChargingProfileStatus.rejected, ChargingProfileStatus.not_supported)


@dataclass
class LoadManager:
    csms: CentralSystem
    limit_w: float | None = None
    sessions: dict[int, SessionLoad] = field(default_factory=dict)
    chargers: dict[str, ChargerLoad] = field(default_factory=dict)
    allocation: Allocation | None = None
    history: deque[LoadPoint] = field(default_factory=lambda: deque(maxlen=HISTORY))
    clock: Any = time.time  # wall clock of turns (tests may replace it)
    under_draw_s: float = UNDER_DRAW_S  # how long a car draws well below its share before it is capped

    def __post_init__(self) -> None:
        self.limit_w = self.csms.settings.site_limit_w
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._unsubscribe: Any = None
        self._side_tasks: set[asyncio.Task[Any]] = set()
        self.safe_w: float | None = None  # the failsafe of a running connector, as last decided
        self.decisions = 0  # how many times the shares were decided (tests and benchmarks wait on it)
        self.decided = asyncio.Condition()
        self._deciding = asyncio.Lock()  # one decision at a time (the loop's, the API's after a new limit)

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def min_w(self) -> float:
        """The least a car takes while charging (6 A on each phase)."""
        return MIN_AMPS * self.csms.settings.site_voltage * self.csms.settings.site_phases

    @property
    def enabled(self) -> bool:
        return self.limit_w is not None

    async def start(self) -> None:
        self._unsubscribe = self.csms.events.subscribe(self._on_event, (
            ev.TransactionStarted, ev.TransactionStopped, ev.MeterSample, ev.ChargerBooted, ev.ChargerConnected,
            ev.StatusChanged,
        ))
        for row in await self.csms.store.transactions(running=True, limit=100_000):
            self._add_session(row["id"], row["charger_id"], row["connector_id"], row["id_tag"])
        self._task = asyncio.create_task(self._run(), name="load-manager")
        if self.enabled:
            log.info("site limit %.1f kW shared by the running sessions (%s policy)", self.limit_w / 1000,
                     self.csms.settings.load_policy)

    async def stop(self) -> None:
        if callable(self._unsubscribe):
            self._unsubscribe()
        tasks = [t for t in (self._task, *self._side_tasks) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._task = None

    async def set_limit(self, limit_kw: float | None, *, wake: bool = True) -> None:
        """The operator's new limit (None: off), in force from the next decision (at once; with
        wake=False, from the caller's own)."""
        before = self.limit_w
        self.limit_w = None if limit_kw is None else float(limit_kw) * 1000
        log.info("site limit %s (was %s)", kw_text(self.limit_w), kw_text(before))
        if self.limit_w is None:
            for charger_id in list(self.csms.sessions):
                charger = self.chargers.get(charger_id) or ChargerLoad()
                running = {s.connector_id for s in self.sessions.values() if s.charger_id == charger_id}
                ids = [FAILSAFE_PROFILE_ID + c for c in sorted(charger.defaults)]
                self._spawn(self._release(charger_id, ids + [SHARE_PROFILE_ID + c for c in sorted(running)]))
                charger.defaults.clear()
            for session in self.sessions.values():
                session.sent_w = None
            self.allocation = None
            self._publish(None)  # decide() says nothing while off: the consoles learn it here
        if wake:
            self.wake()

    async def change_limit(self, limit_kw: float | None) -> dict[str, Any]:
        """The operator's new limit (the API, the console), checked, decided at once: the snapshot
        with the shares for it (already sent). ValueError saying why a limit is refused."""
        await self.set_limit(check_limit(limit_kw), wake=False)  # decided here, not again by the loop
        await self.decide()
        return self.snapshot()

    async def _release(self, charger_id: str, profile_ids: list[int]) -> None:
        """No limit any more: our shares and failsafes leave the charger (its own profiles stay)."""
        for profile_id in profile_ids:
            try:
                await self.csms.commands.clear_charging_profile(charger_id, id=profile_id)
            except CommandError:
                return

    def wake(self) -> None:
        self._wake.set()

    # -- events ----------------------------------------------------------------------------

    def _on_event(self, event: ev.Event) -> None:
        if isinstance(event, ev.TransactionStarted):
            self._add_session(event.transaction_id, event.charger_id, event.connector_id, event.id_tag)
            self.wake()
        elif isinstance(event, ev.TransactionStopped):
            if self.sessions.pop(event.transaction_id, None) is not None:
                self.wake()
        elif isinstance(event, ev.MeterSample) and event.transaction_id in self.sessions:
            self._measured(self.sessions[event.transaction_id], event.values)
        elif isinstance(event, (ev.ChargerBooted, ev.ChargerConnected)):
            charger = self.chargers.setdefault(event.charger_id, ChargerLoad())
            charger.defaults.clear()  # a rebooted charger may have lost its profiles
            charger.asked = charger.known = False  # and may have new firmware: ask again
            for session in self.sessions.values():
                if session.charger_id == event.charger_id:
                    session.sent_w = None  # its share is sent again
            self.wake()
        elif isinstance(event, ev.StatusChanged):
            self.wake()

    def _add_session(self, transaction_id: int, charger_id: str, connector_id: int, id_tag: str) -> None:
        self.sessions[transaction_id] = SessionLoad(transaction_id, charger_id, connector_id, id_tag)
        self.chargers.setdefault(charger_id, ChargerLoad())

    def _measured(self, session: SessionLoad, values: dict[str, float]) -> None:
        power = values.get("Power.Active.Import")
        if power is None:
            return
        session.measured_w = power
        now = self.clock()
        share = session.sent_w
        if share and power < share * UNDER_DRAW:
            if session.under_since is None:
                session.under_since = now
            elif now - session.under_since >= self.under_draw_s and session.cap_w is None:
                session.cap_w = power + CAP_MARGIN_W  # its headroom goes to the others
                self.wake()
        else:
            session.under_since = None
            if session.cap_w is not None and power >= session.cap_w - CAP_MARGIN_W / 2:
                session.cap_w = None  # it wants more again
                self.wake()

    # -- deciding --------------------------------------------------------------------------

    async def _run(self) -> None:
        lease = self.csms.settings.load_lease_seconds
        while True:
            try:
                # asyncio.timeout, not wait_for: on Python 3.11 wait_for drops a cancellation that
                # comes as the event is set (a charger connecting while we stop), and stop() hung.
                async with asyncio.timeout(min(lease / 4, 30.0)):
                    await self._wake.wait()
            except TimeoutError:
                pass
            self._wake.clear()
            await asyncio.sleep(DEBOUNCE_S)
            try:
                await self.decide()
            except asyncio.CancelledError:
                raise
            except Exception:  # a busy database or a charger's odd answer is no reason to stop sharing
                log.exception("deciding the site's load shares failed")

    async def decide(self) -> Allocation | None:
        """Decide every share and each connector's failsafe; send what changed, the reductions
        first and the increases once those are answered. One at a time: two at once would send
        the same failsafes twice."""
        async with self._deciding:
            return await self._decide()

    async def _decide(self) -> Allocation | None:
        if not self.enabled:
            self.allocation = None
            return None
        assert self.limit_w is not None
        settings = self.csms.settings
        connected = set(self.csms.sessions)
        self._learn_chargers(connected)
        rows, tag_priorities = await self._read_inputs()
        controlled = {cid for cid in connected if self.chargers[cid].known and self.chargers[cid].refused is None}
        now = self.clock()
        demands = [self._demand(s, rows.get(s.charger_id), s.charger_id in connected, tag_priorities.get(s.id_tag))
                   for s in self.sessions.values()]
        allocation = allocate(demands, self.limit_w, policy=settings.load_policy, now=now,
                              rotation_s=settings.load_rotation_minutes * 60)
        self.allocation = allocation
        self._turns(allocation, now)
        plans = self._share_plans(allocation, controlled) + self._failsafe_plans(allocation, controlled)
        lower: list[Plan] = []
        higher: list[Plan] = []
        for plan in plans:
            (lower if plan.current is None or plan.watts < plan.current else higher).append(plan)
        await self._send_all(lower)  # the site only goes down here ...
        await self._send_all(higher)  # ... and up once the chargers have taken the reductions
        if higher:
            self.wake()  # a connector whose share is now in force gets its failsafe raised next time
        self._record(allocation)
        self._publish(allocation)
        async with self.decided:
            self.decisions += 1
            self.decided.notify_all()
        return allocation

    async def _read_inputs(self) -> tuple[dict[str, dict[str, Any]], dict[str, int]]:
        """One query per decision, whatever the number of sessions: each charger's maximum and
        priority (and its connectors, learnt on the way), and the tags' own priorities."""
        rows: dict[str, dict[str, Any]] = {}
        tag_priorities: dict[str, int] = {}
        for charger in self.chargers.values():
            charger.connectors = set()
        for row in await self.csms.store.load_inputs():
            if row["kind"] == "charger":
                rows[row["key"]] = row
                if row["key"] in self.chargers:
                    self.chargers[row["key"]].max_w = row["max_power_w"]
            elif row["kind"] == "connector":
                if row["key"] in self.chargers:
                    self.chargers[row["key"]].connectors.add(row["number"])
            else:
                tag_priorities[row["key"]] = int(row["priority"])
        return rows, tag_priorities

    def _share_plans(self, allocation: Allocation, controlled: set[str]) -> list[Plan]:
        renew_after = self.csms.settings.load_lease_seconds / 2
        plans = []
        for key, share in allocation.shares.items():
            session = self.sessions.get(key)
            if session is None or session.sending or session.charger_id not in controlled:
                continue
            due = session.sent_w is None or time.monotonic() - session.sent_at >= renew_after
            if not due and abs((session.sent_w or 0) - share.watts) < STEP_W:
                continue
            plans.append(Plan(session.charger_id, session.connector_id, share.watts, self._in_force(session), session))
        return plans

    def _in_force(self, session: SessionLoad) -> float | None:
        """The limit the connector applies now: its share while the lease runs, else its failsafe
        (None: unknown, maybe none at all)."""
        lease = self.csms.settings.load_lease_seconds
        if session.sent_w is not None and time.monotonic() - session.sent_at < lease:
            return session.sent_w
        return self.chargers[session.charger_id].defaults.get(session.connector_id)

    def safe_share_w(self, allocation: Allocation, controlled: set[str]) -> float:
        """What every controlled connector may draw with nobody deciding: what fixed loads leave of
        the limit, divided by the connectors we control."""
        assert self.limit_w is not None
        fixed = sum(share.watts for share in allocation.shares.values() if share.reason == "fixed load")
        connectors = sum(len(self.chargers[cid].connectors) for cid in controlled)
        return floor_step(max(self.limit_w - fixed, 0.0) / max(connectors, 1))

    def _failsafe_plans(self, allocation: Allocation, controlled: set[str]) -> list[Plan]:
        """Each connector's TxDefaultProfile: a running one's is the safe share (where it falls when
        its lease ends); an idle one's is also no more than the headroom left, shared by the idle
        connectors, so that a car plugged in while nobody decides never takes the site over."""
        assert self.limit_w is not None
        safe = self.safe_share_w(allocation, controlled)
        self.safe_w = safe
        busy = {(s.charger_id, s.connector_id): s for s in self.sessions.values()}
        idle = [(cid, c) for cid in sorted(controlled) for c in sorted(self.chargers[cid].connectors) if (cid, c) not in busy]
        headroom = max(self.limit_w - allocation.allocated_w, 0.0)
        idle_w = min(safe, floor_step(headroom / len(idle))) if idle else safe
        if idle_w < self.min_w:
            idle_w = 0.0  # less than a car takes is nothing
        plans = []
        for charger_id in sorted(controlled):
            charger = self.chargers[charger_id]
            for connector_id in sorted(charger.connectors):
                session = busy.get((charger_id, connector_id))
                if session is None:
                    wanted = idle_w
                elif session.sent_w is not None and not session.sending:
                    wanted = safe  # its share is in force: the failsafe only matters when the lease ends
                else:
                    continue  # its share is not in force yet: raising its failsafe would raise its limit
                if charger.max_w is not None:  # a weak charger or cable: its failsafe is no more either
                    wanted = min(wanted, floor_step(charger.max_w))
                held = charger.defaults.get(connector_id)
                if held is None or abs(held - wanted) >= STEP_W:
                    plans.append(Plan(charger_id, connector_id, wanted, held, None))
        return plans

    def _demand(self, session: SessionLoad, row: dict[str, Any] | None, connected: bool,
                tag_priority: int | None = None) -> Demand:
        """The session as the allocator sees it: its charger's provisioned maximum (else the setting
        charger_max_kw), and its id tag's priority, else its charger's (else 0)."""
        stored_max = (row or {}).get("max_power_w")
        max_w = float(stored_max if stored_max is not None else self.csms.settings.charger_max_kw * 1000)
        charger = self.chargers.get(session.charger_id) or ChargerLoad()
        priority = tag_priority if tag_priority is not None else int((row or {}).get("priority") or 0)
        if charger.refused is not None or (connected and not charger.known):
            return Demand(session.transaction_id, max_w, 0.0, fixed=True)  # not under our control (yet)
        if not connected:  # it keeps its lease, then falls to its failsafe: counted at the larger
            held = max(session.sent_w or 0.0, charger.defaults.get(session.connector_id, max_w))
            return Demand(session.transaction_id, min(held, max_w), 0.0, fixed=True)
        return Demand(session.transaction_id, max_w, self.min_w, cap_w=session.cap_w, priority=priority,
                      running_since=session.running_since, paused_since=session.paused_since)

    def _turns(self, allocation: Allocation, now: float) -> None:
        for key, share in allocation.shares.items():
            session = self.sessions.get(key)
            if session is None:
                continue
            if share.watts > 0 and session.running_since is None:
                session.running_since, session.paused_since = now, None
            elif share.watts == 0 and share.reason.startswith("paused") and session.paused_since is None:
                session.running_since, session.paused_since = None, now

    def _record(self, allocation: Allocation) -> None:
        self.history.append(LoadPoint(time.time(), self._measured_w(), allocation.allocated_w, self.limit_w))

    def _measured_w(self) -> float:
        return sum(s.measured_w or 0.0 for s in self.sessions.values())

    def _publish(self, allocation: Allocation | None) -> None:
        """A summary for the consoles (and the API's event stream): they read the snapshot on it."""
        shares = allocation.shares.values() if allocation is not None else ()
        self.csms.events.publish(ev.LoadDecided(
            "", kw_value(self.limit_w), round((allocation.allocated_w if allocation else 0.0) / 1000, 3),
            round(self._measured_w() / 1000, 3), len(self.sessions),
            sum(1 for share in shares if share.watts == 0 and share.reason.startswith("paused"))))

    # -- chargers: what they accept, and their failsafe ------------------------------------

    def _learn_chargers(self, connected: set[str]) -> None:
        for charger_id in connected:
            charger = self.chargers.setdefault(charger_id, ChargerLoad())
            if not charger.asked and charger.refused is None:
                charger.asked = True
                self._spawn(self._learn(charger_id, charger))

    async def _learn(self, charger_id: str, charger: ChargerLoad) -> None:
        try:
            await self._read_keys(charger_id, charger)
        finally:
            charger.known = True  # a charger that does not say keeps the defaults (W, level 0)
            self.wake()

    async def _read_keys(self, charger_id: str, charger: ChargerLoad) -> None:
        keys = [ConfigurationKey.charge_profile_max_stack_level, ConfigurationKey.charging_schedule_allowed_charging_rate_unit]
        try:
            result = await self.csms.commands.get_configuration(charger_id, [str(k) for k in keys])
        except CommandError:
            return
        values = {k["key"]: k.get("value") for k in result.configuration_key or []}
        try:
            charger.stack_level = int(values.get(str(keys[0])) or 0)
        except ValueError:
            pass
        units = str(values.get(str(keys[1])) or "Current,Power")
        charger.unit = ChargingRateUnitType.watts if "Power" in units else ChargingRateUnitType.amps

    # -- sending ---------------------------------------------------------------------------

    async def _send_all(self, plans: list[Plan]) -> None:
        if plans:
            await asyncio.gather(*(self._send(plan) for plan in plans))

    async def _send(self, plan: Plan) -> None:
        charger = self.chargers[plan.charger_id]
        session = plan.session
        if session is None:  # a connector's failsafe: until the next change, whatever happens here
            profile = self._profile(FAILSAFE_PROFILE_ID + plan.connector_id, ChargingProfilePurposeType.tx_default_profile,
                                    charger, plan.watts)
            if await self._set(plan.charger_id, charger, plan.connector_id, profile):
                charger.defaults[plan.connector_id] = plan.watts
            return
        lease = self.csms.settings.load_lease_seconds
        profile = self._profile(SHARE_PROFILE_ID + session.connector_id, ChargingProfilePurposeType.tx_profile,
                                charger, plan.watts, lease=lease, transaction_id=session.transaction_id)
        session.sending = True
        try:
            if await self._set(session.charger_id, charger, session.connector_id, profile):
                session.sent_w, session.sent_at = plan.watts, time.monotonic()
        finally:
            session.sending = False

    def _profile(self, profile_id: int, purpose: ChargingProfilePurposeType, charger: ChargerLoad, watts: float,
                 lease: int | None = None, transaction_id: int | None = None) -> dict[str, Any]:
        settings = self.csms.settings
        if charger.unit == ChargingRateUnitType.amps:  # per phase, rounded down: never above the share
            limit = int(watts / (settings.site_voltage * settings.site_phases) * 10) / 10
        else:
            limit = int(watts)
        schedule: dict[str, Any] = {
            "charging_rate_unit": charger.unit,
            "charging_schedule_period": [{"start_period": 0, "limit": limit}],
        }
        profile: dict[str, Any] = {
            "charging_profile_id": profile_id, "stack_level": charger.stack_level,
            "charging_profile_purpose": purpose, "charging_schedule": schedule,
        }
        if lease is None:
            profile["charging_profile_kind"] = ChargingProfileKindType.relative
        else:  # a lease: from a little before now (clocks differ) to its end
            profile["charging_profile_kind"] = ChargingProfileKindType.absolute
            schedule["start_schedule"] = iso(utcnow() - timedelta(seconds=CLOCK_MARGIN_S))
            schedule["duration"] = lease + CLOCK_MARGIN_S
        if transaction_id is not None:
            profile["transaction_id"] = transaction_id
        return profile

    async def _set(self, charger_id: str, charger: ChargerLoad, connector_id: int, profile: dict[str, Any]) -> bool:
        """SetChargingProfile; True when Accepted. A refusal makes the charger a fixed load."""
        try:
            result = await self.csms.commands.set_charging_profile(charger_id, connector_id, profile)
        except (CallErrorReceived, InvalidAnswer) as exc:
            self._refused(charger_id, charger, f"SetChargingProfile answered {exc}")
            return False
        except CommandError as exc:  # offline, timed out: tried again at the next decision
            log.info("%s: share not sent (%s)", charger_id, exc)
            return False
        if result.status in REFUSED:
            self._refused(charger_id, charger, f"SetChargingProfile {result.status}")
            return False
        return result.status == ChargingProfileStatus.accepted

    def _refused(self, charger_id: str, charger: ChargerLoad, reason: str) -> None:
        if charger.refused is None:
            log.warning("%s does not take charging profiles (%s): counted as a fixed load at its maximum",
                        charger_id, reason)
        charger.refused = reason
        self.wake()

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._side_tasks.add(task)
        task.add_done_callback(self._side_tasks.discard)

    # -- what the console and the API show -------------------------------------------------

    def snapshot(self, history_since: float | None = None) -> dict[str, Any]:
        """What the console and GET /api/site/load show; with `history_since` (epoch seconds), also
        the site's power and limit at each decision after it (`history`, oldest first: the chart)."""
        allocation = self.allocation
        shares = allocation.shares if allocation is not None else {}
        sessions = []
        for tx_id, session in sorted(self.sessions.items()):
            share = shares.get(tx_id)
            charger = self.chargers.get(session.charger_id) or ChargerLoad()
            sessions.append({
                "transaction_id": tx_id, "charger_id": session.charger_id, "connector_id": session.connector_id,
                "id_tag": session.id_tag,
                "allocated_kw": kw_value(share.watts if share else None),
                "sent_kw": kw_value(session.sent_w),
                "measured_kw": kw_value(session.measured_w),
                "state": session_state(share, charger),
                "reason": charger.refused or (share.reason if share else "not decided yet"),
                "next_turn_at": iso_or_none(share.next_turn_at if share else None),
            })
        return {
            "limit_kw": kw_value(self.limit_w),
            "measured_kw": round(sum(s.measured_w or 0.0 for s in self.sessions.values()) / 1000, 3),
            "allocated_kw": kw_value(allocation.allocated_w if allocation is not None else 0.0),
            "safe_kw": kw_value(self.safe_w) if self.enabled else None,
            "policy": self.csms.settings.load_policy,
            "sessions": sessions,
            "fixed_chargers": sorted(cid for cid, c in self.chargers.items() if c.refused),
            "min_kw": kw_value(self.min_w),
            "rotation_minutes": self.csms.settings.load_rotation_minutes,
            **({} if history_since is None else {"history": self.history_since(history_since)}),
        }

    def history_since(self, since: float) -> list[dict[str, Any]]:
        points = []
        for point in reversed(self.history):  # the newest are the ones asked for: stop at the first older
            if point.at <= since:
                break
            points.append({"at": iso_or_none(point.at), "measured_kw": kw_value(point.measured_w),
                           "allocated_kw": kw_value(point.allocated_w), "limit_kw": kw_value(point.limit_w)})
        points.reverse()
        return points
