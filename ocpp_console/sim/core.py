"""What a simulated charger is and does: connectors, sessions, meters, profiles, reservations,
firmware and diagnostics. The link to the central system is ChargerLink's (link.py)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from ocpp.v16 import call
from ocpp.v16.enums import (
    Action,
    AuthorizationStatus,
    AvailabilityType,
    ChargePointErrorCode,
    ChargePointStatus,
    DiagnosticsStatus,
    FirmwareStatus,
    Location,
    Measurand,
    Reason,
    ReadingContext,
    ResetType,
    UnitOfMeasure,
    UploadLogStatus,
    ValueFormat,
)
from ocpp.v16.enums import ConfigurationKey as Key

from ocpp_console.sim.auth import LocalAuth, TagInfo
from ocpp_console.sim.clock import MIN_REAL_INTERVAL, seconds_until, timestamp, utc_now
from ocpp_console.sim.ev import EV, random_ev
from ocpp_console.sim.link import ChargerLink, log
from ocpp_console.sim.meter import Meter
from ocpp_console.sim.options import ChargerOptions, SessionMode
from ocpp_console.sim.outbox import NotConnected, Skip
from ocpp_console.sim.security import Certificates
from ocpp_console.sim.smart import ChargingProfiles, Electrical, Limits, TxContext
from ocpp_console.sim.state import Connector, Reservation, Session, TagPool, Transaction
from ocpp_console.sim.transfer import (
    Fetched,
    fetch_firmware,
    firmware_version_from,
    is_ftp,
    redact_url,
    upload_diagnostics,
)

# Reasons after which the charger goes down at once: no Finishing, no waiting for the driver.
_SHUTDOWN_REASONS = frozenset({Reason.soft_reset, Reason.hard_reset, Reason.reboot, Reason.power_loss})


class ChargerCore(ChargerLink):
    """What the charger is and does: connectors, sessions, meters, profiles, reservations."""

    def __init__(
        self,
        charger_id: str,
        url: str,
        *,
        connectors: int = 1,
        id_tags: Sequence[str] = (),
        sessions: SessionMode = "none",
        speed: float = 1.0,
        password: str | None = None,
        seed: int | str | None = None,
        options: ChargerOptions | None = None,
        tag_pool: TagPool | None = None,
    ) -> None:
        if connectors < 1:
            raise ValueError("a charger has at least one connector")
        if sessions not in ("auto", "none"):
            raise ValueError(f"sessions must be 'auto' or 'none', not {sessions!r}")
        super().__init__(
            charger_id, url, connectors=connectors, speed=speed, password=password, seed=seed, options=options
        )
        self.sessions_mode: SessionMode = sessions
        self.auth = LocalAuth()
        self.profiles = ChargingProfiles()
        self.electrical = Electrical(self.options.voltage, self.options.phases)
        self.charger = Connector(0)  # connector 0: the charger as a whole
        self.connectors: dict[int, Connector] = {
            i: Connector(
                i,
                meter=Meter(
                    energy_wh=float(self.rng.randrange(0, 400_000)),  # a used meter, not a new one
                    nominal_voltage=self.options.voltage,
                    phases=self.options.phases,
                ),
            )
            for i in range(1, connectors + 1)
        }
        self.firmware_status = FirmwareStatus.idle
        self.firmware_request_id: int | None = None  # set while the update is a SignedUpdateFirmware
        self.diagnostics_status = DiagnosticsStatus.idle
        self.log_status = UploadLogStatus.idle  # GetLog's upload, as LogStatusNotification reports it
        self.log_request_id: int | None = None
        self.certificates = Certificates()  # installed certificates survive reboots
        self.security_log: deque[str] = deque(maxlen=1000)  # what GetLog's SecurityLog uploads
        self.tags = tag_pool or TagPool(id_tags)
        self._updating = False  # new firmware waits for the connectors to be idle
        self._next_local_tx = 1
        self._firmware_task: asyncio.Task[None] | None = None
        self.firmware_image: Fetched | None = None  # the last image really fetched (fetch_firmware)
        self._log_task: asyncio.Task[None] | None = None

    def connector(self, connector_id: int) -> Connector:
        try:
            return self.connectors[connector_id]
        except KeyError:
            raise ValueError(f"{self.id} has no connector {connector_id}") from None

    def transactions(self) -> list[Transaction]:
        return [c.transaction for c in self.connectors.values() if c.transaction is not None]

    # -- the link's hooks ------------------------------------------------------------------

    def _start_work(self) -> None:
        if self.sessions_mode == "auto":
            for conn in self.connectors.values():
                self._spawn(self._auto_sessions(conn), f"auto-sessions-{conn.id}")

    async def _finish_sessions(self, reason: Reason) -> None:
        tasks = [c.session.task for c in self.connectors.values() if c.session and c.session.task]
        for conn in self.connectors.values():
            self.request_stop(conn.id, reason)
        if tasks:
            await asyncio.wait(tasks, timeout=self.options.drain_timeout_s)

    def _power_on(self) -> None:
        """After a reboot: cars are gone, the volatile state is reset, the rest persists."""
        super()._power_on()
        self.firmware_status = FirmwareStatus.idle
        self.firmware_request_id = None
        self.diagnostics_status = DiagnosticsStatus.idle
        self.log_status, self.log_request_id = UploadLogStatus.idle, None
        for conn in self.connectors.values():
            conn.meter.power_w = 0.0
            if conn.pending_availability is not None:
                conn.availability, conn.pending_availability = conn.pending_availability, None
            conn.status = self._idle_status(conn)  # reported by the status sync after booting
        self.charger.status = self._idle_status(self.charger)

    # -- connector status --------------------------------------------------------------------

    def _idle_status(self, conn: Connector) -> ChargePointStatus:
        if conn.fault is not None:
            return ChargePointStatus.faulted
        if conn.availability == AvailabilityType.inoperative:
            return ChargePointStatus.unavailable
        if conn.reservation is not None:
            return ChargePointStatus.reserved
        return ChargePointStatus.available

    def set_status(self, conn: Connector, status: ChargePointStatus) -> None:
        """Change a connector's status; the central system hears of every change."""
        error = conn.fault if status == ChargePointStatus.faulted and conn.fault else ChargePointErrorCode.no_error
        if conn.status == status and conn.error_code == error:
            return
        conn.status, conn.error_code = status, error
        log.info("%s: connector %d %s", self.id, conn.id, status)
        if self._ready.is_set():
            self._post_status(conn)

    def _post_status(self, conn: Connector) -> None:
        status, error, stamp = conn.status, conn.error_code, timestamp()
        self.post(
            action=Action.status_notification,
            build=lambda: call.StatusNotification(
                connector_id=conn.id, error_code=error, status=status, timestamp=stamp
            ),
        )

    def _sync_statuses(self) -> None:
        """After (re)connecting: tell the central system every connector's status."""
        for conn in (self.charger, *self.connectors.values()):
            self._post_status(conn)

    def set_fault(self, connector_id: int, error_code: ChargePointErrorCode | None) -> None:
        """Simulate a fault on a connector (None clears it)."""
        conn = self.charger if connector_id == 0 else self.connector(connector_id)
        conn.fault = error_code
        if error_code is not None:
            if conn.reservation is not None:
                self.drop_reservation(conn, notify=False)
            if conn.session is not None:
                self.request_stop(conn.id, Reason.other)  # no charging on a faulted connector
        if not conn.busy:
            self.set_status(conn, self._idle_status(conn))

    # -- sessions ------------------------------------------------------------------------------

    def can_start(self, conn: Connector) -> bool:
        return (
            conn.operative
            and self.charger.operative
            and not conn.busy
            and not (self._closing or self._rebooting or self._updating)
        )

    def plug_in(
        self, connector_id: int, id_tag: str, *, ev: EV | None = None, stay_s: float | None = None
    ) -> Session:
        """A driver plugs a car in and presents `id_tag`; the session runs in the background
        until `stay_s` simulated seconds have passed (None: until stopped)."""
        conn = self.connector(connector_id)
        if not self.can_start(conn):
            raise RuntimeError(f"{self.id} connector {connector_id} is busy or unavailable")
        return self._start_session(conn, id_tag, ev or random_ev(self.rng, self.options.max_power_w), stay_s, False)

    def request_stop(self, connector_id: int, reason: Reason = Reason.local) -> bool:
        """End the session on a connector (its transaction stops with `reason`)."""
        conn = self.connector(connector_id)
        session = conn.session
        if session is None:
            return False
        if not session.stop.done():
            session.stop.set_result(reason)
        session.unplug.set()
        return True

    def _start_session(
        self,
        conn: Connector,
        id_tag: str,
        ev: EV,
        stay_s: float | None,
        remote: bool,
        profile: dict[str, Any] | None = None,
        pooled: bool = False,
    ) -> Session:
        session = Session(id_tag, ev, stay_s, remote, pooled=pooled)
        conn.session = session  # taken at once: a second RemoteStart finds it busy
        session.task = self._spawn(self._session(conn, session, profile), f"session-{conn.id}")
        return session

    async def _auto_sessions(self, conn: Connector) -> None:
        """Drivers arrive at random, charge for a while and leave (--sessions auto)."""
        await self._accepted_once.wait()
        low, high = self.options.session_gap_s
        while True:
            await self.clock.sleep(self.rng.uniform(low, high))
            if not self.can_start(conn):
                continue
            tag = self.tags.acquire(self.rng)
            if tag is None:
                continue
            ev = random_ev(self.rng, self.options.max_power_w)
            stay = self.rng.uniform(*self.options.session_stay_s)
            session = self._start_session(conn, tag, ev, stay, remote=False, pooled=True)
            assert session.task is not None
            await asyncio.wait({session.task})  # (not `await task`: cancelling us must not cancel it)

    async def _session(self, conn: Connector, s: Session, profile: dict[str, Any] | None) -> None:
        tx: Transaction | None = None
        try:
            self.set_status(conn, ChargePointStatus.preparing)
            info = await self._authorize(conn, s.id_tag, s.remote)
            if info is None:
                self.summary.rejected += 1
                log.info("%s: id tag %s refused on connector %d", self.id, s.id_tag, conn.id)
                return
            if s.stop.done():
                return
            tx = self._begin_transaction(conn, s.id_tag)
            if profile is not None:
                self.install_profile(conn.id, profile)
            if self._ready.is_set():
                # Online, a charger waits for the transactionId before reporting Charging.
                settled = asyncio.ensure_future(tx.settled.wait())
                await asyncio.wait({settled, s.stop}, timeout=self.options.call_timeout,
                                   return_when=asyncio.FIRST_COMPLETED)
                settled.cancel()
            reason = await self._charge(conn, s, tx)
            self._end_transaction(conn, tx, reason)
            tx = None
            if reason in _SHUTDOWN_REASONS or reason == Reason.ev_disconnected or self._closing:
                return
            self.set_status(conn, ChargePointStatus.finishing)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(s.unplug.wait(), self.clock.to_real(self.options.unplug_s))
        except asyncio.CancelledError:
            if tx is not None:  # torn down mid-transaction: at least queue its end
                self._end_transaction(conn, tx, Reason.power_loss)
            raise
        finally:
            conn.session = None
            if s.pooled:
                self.tags.release(s.id_tag)
            if conn.pending_availability is not None:
                conn.availability, conn.pending_availability = conn.pending_availability, None
                if conn.availability == AvailabilityType.inoperative:
                    self.drop_reservation(conn, notify=False)
            self.set_status(conn, self._idle_status(conn))

    async def _authorize(self, conn: Connector, id_tag: str, remote: bool) -> TagInfo | None:
        """The tag's idTagInfo if it may charge on this connector, else None."""
        info = await self._tag_info(id_tag, remote)
        if info is None or not info.accepted:
            return None
        res = conn.reservation
        if res is not None and id_tag != res.id_tag:
            # Only the reserved tag, or one with the reservation's parent tag, may use it.
            if not (res.parent_id_tag and info.parent_id_tag == res.parent_id_tag):
                log.info("%s: connector %d is reserved for %s, not %s", self.id, conn.id, res.id_tag, id_tag)
                return None
        return info

    async def _tag_info(self, id_tag: str, remote: bool) -> TagInfo | None:
        if remote and not self.config.get_bool(Key.authorize_remote_tx_requests):
            return TagInfo(AuthorizationStatus.accepted)
        cache_on = self.config.get_bool(Key.authorization_cache_enabled)
        local = self.auth.lookup_list(id_tag) if self.config.get_bool(Key.local_auth_list_enabled) else None
        if local is None and cache_on:
            local = self.auth.lookup_cache(id_tag)
        if self._ready.is_set():
            if local is not None and local.accepted and self.config.get_bool(Key.local_pre_authorize):
                return local
            try:
                result = await self.post(call.Authorize(id_tag=id_tag))
            except NotConnected:
                pass  # lost the connection meanwhile: decide as offline
            except Exception as exc:
                log.info("%s: Authorize of %s failed (%s); deciding locally", self.id, id_tag, exc)
            else:
                info = TagInfo.from_payload(result.id_tag_info)
                if cache_on:
                    self.auth.remember(id_tag, info)
                return info
        if local is not None:
            return local if self.config.get_bool(Key.local_authorize_offline) else None
        if self.config.get_bool(Key.allow_offline_tx_for_unknown_id):
            return TagInfo(AuthorizationStatus.accepted)
        return None

    # -- transactions ----------------------------------------------------------------------

    def _begin_transaction(self, conn: Connector, id_tag: str) -> Transaction:
        reservation_id = None
        if conn.reservation is not None:
            reservation_id = conn.reservation.reservation_id
            self.drop_reservation(conn, notify=False)  # used up by this transaction
        now = utc_now()
        tx = Transaction(
            local_id=self._next_local_tx,
            connector_id=conn.id,
            id_tag=id_tag,
            meter_start=conn.meter.register_wh,
            started=now,
            timestamp=timestamp(now),
            reservation_id=reservation_id,
        )
        self._next_local_tx += 1
        conn.transaction = tx
        stop_data = self.config.get_list(Key.stop_txn_sampled_data)
        if stop_data:
            tx.data.append(self._meter_value(conn, ReadingContext.transaction_begin, stop_data))
        started = self.post(
            action=Action.start_transaction,
            build=lambda: call.StartTransaction(
                connector_id=conn.id,
                id_tag=id_tag,
                meter_start=tx.meter_start,
                timestamp=tx.timestamp,
                reservation_id=reservation_id,
            ),
            transactional=True,
            tx=tx,
            on_result=lambda result: self._transaction_started(conn, tx, result),
        )
        started.add_done_callback(lambda _: tx.settled.set())  # answered, or given up
        log.info("%s: transaction begins on connector %d for %s (meter %d Wh)", self.id, conn.id, id_tag, tx.meter_start)
        return tx

    def _transaction_started(self, conn: Connector, tx: Transaction, result: Any) -> None:
        # Queued MeterValues and StopTransaction read the id when sent: this reconciles them.
        tx.transaction_id = int(result.transaction_id)
        info = TagInfo.from_payload(result.id_tag_info)
        tx.auth_status = info.status
        if self.config.get_bool(Key.authorization_cache_enabled):
            self.auth.remember(tx.id_tag, info)
        log.info("%s: transaction %d on connector %d (%s)", self.id, tx.transaction_id, conn.id, info.status)
        if not info.accepted and conn.transaction is tx and self.config.get_bool(Key.stop_transaction_on_invalid_id):
            self.request_stop(conn.id, Reason.de_authorized)

    def _end_transaction(self, conn: Connector, tx: Transaction, reason: Reason) -> None:
        meter_stop = tx.meter_stop = conn.meter.register_wh
        tx.stop_reason = reason
        stamp = timestamp()
        stop_data = self.config.get_list(Key.stop_txn_sampled_data)
        if stop_data:
            tx.data.append(self._meter_value(conn, ReadingContext.transaction_end, stop_data))
        data = list(tx.data)
        id_tag = tx.id_tag if reason == Reason.local else None  # who stopped it, when it was the driver

        def build() -> call.StopTransaction:
            if tx.transaction_id is None:
                raise Skip("its StartTransaction never got a transactionId")
            return call.StopTransaction(
                meter_stop=meter_stop,
                timestamp=stamp,
                transaction_id=tx.transaction_id,
                reason=reason,
                id_tag=id_tag,
                transaction_data=data or None,
            )

        self.post(
            action=Action.stop_transaction,
            build=build,
            transactional=True,
            tx=tx,
            on_result=lambda _result: self._transaction_stopped(tx),
        )
        conn.transaction = None
        conn.meter.power_w = 0.0
        self.profiles.end_transaction(conn.id)
        log.info("%s: transaction on connector %d ends (%s, %d Wh)",
                 self.id, conn.id, reason, meter_stop - tx.meter_start)

    def _transaction_stopped(self, tx: Transaction) -> None:
        self.summary.sessions += 1
        self.summary.energy_wh += (tx.meter_stop if tx.meter_stop is not None else tx.meter_start) - tx.meter_start

    async def _charge(self, conn: Connector, s: Session, tx: Transaction) -> Reason:
        """Deliver energy until the session is stopped or the driver leaves; returns the reason."""
        last = time.monotonic()
        since_sample = elapsed = 0.0
        aligned_mark: int | None = None
        self._advance(conn, s.ev, tx, 0.0)  # energy flows (or not) from the start: status now
        while True:
            interval = self.config.get_int(Key.meter_value_sample_interval)
            tick = self.options.tick_s
            if interval > 0:
                tick = min(tick, max(MIN_REAL_INTERVAL, self.clock.to_real(interval)))
            await asyncio.wait({s.stop}, timeout=tick)
            now = time.monotonic()
            dt, last = self.clock.to_sim(now - last), now
            self._advance(conn, s.ev, tx, dt)
            if s.stop.done():
                return s.stop.result()
            elapsed += dt
            since_sample += dt
            if interval > 0 and since_sample >= interval:
                since_sample = since_sample - interval if since_sample < 2 * interval else 0.0
                self._sample(conn, s.ev, tx, ReadingContext.sample_periodic,
                             self.config.get_list(Key.meter_values_sampled_data),
                             self.config.get_list(Key.stop_txn_sampled_data))
            aligned = self.config.get_int(Key.clock_aligned_data_interval)
            if aligned > 0:
                mark = int(time.time() * self.clock.speed // aligned)
                if aligned_mark is not None and mark != aligned_mark:
                    self._sample(conn, s.ev, tx, ReadingContext.sample_clock,
                                 self.config.get_list(Key.meter_values_aligned_data),
                                 self.config.get_list(Key.stop_txn_aligned_data))
                aligned_mark = mark
            if s.stay_s is not None and elapsed >= s.stay_s:
                # The driver comes back: most stop with their card, some just unplug.
                if s.pooled and self.rng.random() < 0.3 and self.config.get_bool(Key.stop_transaction_on_ev_side_disconnect):
                    return Reason.ev_disconnected
                return Reason.local

    def limit_w(self, conn: Connector, tx: Transaction | None = None) -> float:
        """The power the connector may deliver now: hardware, charging profiles, the charger's
        maximum shared by the connectors in a transaction."""
        now = utc_now()
        limit = self.options.max_power_w
        tx_limit = self.profiles.transaction_limit_w(conn.id, now, tx.context if tx else None, self.electrical)
        if tx_limit is not None:
            limit = min(limit, tx_limit)
        charger_limit = self.profiles.charger_limit_w(now, self.electrical)
        if charger_limit is not None:
            sharing = max(1, sum(1 for c in self.connectors.values() if c.transaction is not None))
            limit = min(limit, charger_limit / sharing)
        return max(0.0, limit)

    def _advance(self, conn: Connector, ev: EV, tx: Transaction, seconds: float) -> None:
        limit = self.limit_w(conn, tx)
        conn.offered_w = limit
        demand = ev.demand_w()
        power = min(demand, limit)
        ev.absorb(conn.meter.advance(power, seconds), seconds)
        if power > 0:
            self.set_status(conn, ChargePointStatus.charging)
        elif demand <= 0:
            self.set_status(conn, ChargePointStatus.suspended_ev)  # the car is full (its target)
        else:
            self.set_status(conn, ChargePointStatus.suspended_evse)  # a profile allows nothing

    def _sample(
        self,
        conn: Connector,
        ev: EV | None,
        tx: Transaction,
        context: ReadingContext,
        measurands: list[str],
        stop_measurands: list[str],
    ) -> None:
        if measurands:
            value = self._meter_value(conn, context, measurands, ev)
            self.post(
                action=Action.meter_values,
                build=lambda: call.MeterValues(
                    connector_id=conn.id, meter_value=[value], transaction_id=tx.transaction_id
                ),
                transactional=True,
                tx=tx,
            )
        if stop_measurands:
            tx.data.append(self._meter_value(conn, context, stop_measurands, ev))

    def _meter_value(
        self, conn: Connector, context: ReadingContext, measurands: list[str], ev: EV | None = None
    ) -> dict[str, Any]:
        """One meterValue object (camelCase, as sent)."""
        voltage = self.options.voltage * (1.0 + self.rng.uniform(-0.01, 0.01))
        values: list[dict[str, Any]] = []

        def add(measurand: Measurand, value: str, unit: UnitOfMeasure | str | None,
                location: Location = Location.outlet) -> None:
            sampled = {
                "value": value,
                "context": context,
                "format": ValueFormat.raw,
                "measurand": measurand,
                "location": location,
            }
            if unit is not None:
                sampled["unit"] = unit
            values.append(sampled)

        for name in measurands:
            if name == Measurand.energy_active_import_register:
                add(Measurand.energy_active_import_register, str(conn.meter.register_wh), UnitOfMeasure.wh)
            elif name == Measurand.power_active_import:
                add(Measurand.power_active_import, f"{conn.meter.power_w:.1f}", UnitOfMeasure.w)
            elif name == Measurand.power_offered:
                add(Measurand.power_offered, f"{conn.offered_w:.1f}", UnitOfMeasure.w)
            elif name == Measurand.current_import:
                add(Measurand.current_import, f"{conn.meter.current_a(voltage):.2f}", UnitOfMeasure.a)
            elif name == Measurand.current_offered:
                add(Measurand.current_offered, f"{self.electrical.amps(conn.offered_w):.2f}", UnitOfMeasure.a)
            elif name == Measurand.voltage:
                add(Measurand.voltage, f"{voltage:.1f}", UnitOfMeasure.v)
            elif name == Measurand.frequency:
                add(Measurand.frequency, f"{50 + self.rng.uniform(-0.05, 0.05):.2f}", None)
            elif name == Measurand.temperature:
                # The 1.6 schema spells it Celcius; the charger has to send what the schema allows.
                add(Measurand.temperature, f"{25 + conn.meter.power_w / 1000:.1f}", "Celcius", Location.body)
            elif name == Measurand.soc and ev is not None:
                add(Measurand.soc, str(int(ev.soc)), UnitOfMeasure.percent, Location.ev)
        return {"timestamp": timestamp(), "sampledValue": values}

    def meter_values_now(self, conn: Connector, context: ReadingContext = ReadingContext.trigger) -> None:
        """Send the connector's present readings (TriggerMessage MeterValues)."""
        value = self._meter_value(
            conn, context, self.config.get_list(Key.meter_values_sampled_data), conn.session.ev if conn.session else None
        )
        tx_id = conn.transaction.transaction_id if conn.transaction else None
        self.post(call.MeterValues(connector_id=conn.id, meter_value=[value], transaction_id=tx_id))

    # -- charging profiles -----------------------------------------------------------------

    def profile_limits(self) -> Limits:
        units = tuple(u.strip() for u in self.config.get(Key.charging_schedule_allowed_charging_rate_unit).split(","))
        return Limits(
            connectors=len(self.connectors),
            max_stack_level=self.config.get_int(Key.charge_profile_max_stack_level),
            allowed_units=units,
            max_periods=self.config.get_int(Key.charging_schedule_max_periods),
            max_installed=self.config.get_int(Key.max_charging_profiles_installed),
        )

    def tx_context(self, connector_id: int) -> TxContext | None:
        conn = self.connectors.get(connector_id)
        return conn.transaction.context if conn is not None and conn.transaction is not None else None

    def install_profile(self, connector_id: int, profile: dict[str, Any]) -> Any:
        return self.profiles.install(connector_id, profile, self.profile_limits(), self.tx_context)

    # -- reservations ----------------------------------------------------------------------

    def reservation(self, reservation_id: int) -> Reservation | None:
        for conn in self.connectors.values():
            if conn.reservation is not None and conn.reservation.reservation_id == reservation_id:
                return conn.reservation
        return None

    def reserve(self, conn: Connector, reservation: Reservation) -> None:
        old = conn.reservation
        if old is not None and old.expiry_task is not None:
            old.expiry_task.cancel()
        conn.reservation = reservation
        reservation.expiry_task = self._spawn(self._expire(conn, reservation), f"reservation-{reservation.reservation_id}")
        self.set_status(conn, ChargePointStatus.reserved)

    def drop_reservation(self, conn: Connector, notify: bool = True) -> None:
        res = conn.reservation
        if res is None:
            return
        conn.reservation = None
        if res.expiry_task is not None and res.expiry_task is not asyncio.current_task():
            res.expiry_task.cancel()
        if notify and not conn.busy:
            self.set_status(conn, self._idle_status(conn))

    async def _expire(self, conn: Connector, reservation: Reservation) -> None:
        await asyncio.sleep(seconds_until(reservation.expiry))
        if conn.reservation is reservation:
            log.info("%s: reservation %d expired", self.id, reservation.reservation_id)
            self.drop_reservation(conn)

    # -- firmware, diagnostics, reset ------------------------------------------------------------

    def _firmware(self, status: FirmwareStatus) -> None:
        self.firmware_status = status
        log.info("%s: firmware %s", self.id, status)
        if self.firmware_request_id is None:
            self.post(call.FirmwareStatusNotification(status=status))
        else:
            # A SignedUpdateFirmware is reported with the signed notification and its requestId
            # (whose statuses, e.g. SignatureVerified, the plain one does not have).
            self.post(call.SignedFirmwareStatusNotification(status=status, request_id=self.firmware_request_id))

    def _diagnostics(self, status: DiagnosticsStatus) -> None:
        self.diagnostics_status = status
        log.info("%s: diagnostics %s", self.id, status)
        self.post(call.DiagnosticsStatusNotification(status=status))

    def start_firmware_update(
        self,
        location: str,
        retrieve_date: datetime | None,
        retries: int | None,
        retry_interval: int | None,
        request_id: int | None = None,
        install_date: datetime | None = None,
    ) -> bool:
        """UpdateFirmware, or SignedUpdateFirmware with its `request_id`; True when it replaced
        an update under way."""
        replaced = self._firmware_task is not None and not self._firmware_task.done()
        if replaced:
            self._firmware_task.cancel()  # type: ignore[union-attr]  # a new update replaces one under way
        self.firmware_request_id = request_id
        self._firmware_task = self._spawn(
            self._update_firmware(location, retrieve_date, retries, retry_interval, install_date), "firmware"
        )
        return replaced

    async def _update_firmware(
        self,
        location: str,
        retrieve: datetime | None,
        retries: int | None,
        retry_interval: int | None,
        install_at: datetime | None = None,
    ) -> None:
        signed = self.firmware_request_id is not None
        if signed and seconds_until(retrieve) > 0:
            self._firmware(FirmwareStatus.download_scheduled)  # only the signed notification has it
        await asyncio.sleep(seconds_until(retrieve))
        attempts = 1 + max(0, retries or 0)
        for attempt in range(1, attempts + 1):
            self._firmware(FirmwareStatus.downloading)
            try:
                if self.options.fetch_firmware:
                    image = await fetch_firmware(location)
                    self.firmware_image = image
                    log.info("%s: firmware image of %d bytes (SHA-256 %s) fetched from %s",
                             self.id, image.size, image.sha256, redact_url(location))
                else:
                    await self.clock.sleep(self.options.transfer_s)
                break
            except Exception as exc:
                self._error(f"firmware download from {redact_url(location)}", exc)
                self._firmware(FirmwareStatus.download_failed)
                if attempt == attempts:
                    return
                await asyncio.sleep(retry_interval or 30)
        self._firmware(FirmwareStatus.downloaded)
        if signed:
            # Nothing is really checked: the simulator has neither the image nor a crypto library.
            self._firmware(FirmwareStatus.signature_verified)
        if install_at is not None and seconds_until(install_at) > 0:
            self._firmware(FirmwareStatus.install_scheduled)
            await asyncio.sleep(seconds_until(install_at))
        # Installed only once no car is charging: no new sessions until then.
        self._updating = True
        try:
            while any(c.busy for c in self.connectors.values()):
                await asyncio.sleep(0.25)
            self._firmware(FirmwareStatus.installing)
            await self.clock.sleep(self.options.transfer_s / 2)
            self.firmware_version = firmware_version_from(location, self.firmware_version)
            self.summary.firmware_version = self.firmware_version
            self._firmware(FirmwareStatus.installed)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.outbox.wait_empty(), self.options.drain_timeout_s)
        finally:
            self._updating = False
        log.info("%s: rebooting into firmware %s", self.id, self.firmware_version)
        self.request_reboot()

    def start_diagnostics(self, location: str, file_name: str, retries: int | None, retry_interval: int | None) -> None:
        self._spawn(self._upload(location, file_name, retries, retry_interval), "diagnostics")

    def diagnostics_text(self) -> str:
        lines = [
            f"ocpp-console simulated charger {self.id}",
            f"time {timestamp()}",
            f"firmware {self.firmware_version}",
            f"registration {self.registration}",
        ]
        lines += [f"connector {c.id}: {c.status} {c.availability} meter {c.meter.register_wh} Wh"
                  for c in self.connectors.values()]
        known, _ = self.config.report()
        lines += [f"config {k['key']}={k['value']}" for k in known]
        return "\n".join(lines) + "\n"

    async def _upload(self, location: str, file_name: str, retries: int | None, retry_interval: int | None) -> None:
        try:
            uploaded = await self._upload_file(
                "diagnostics", location, file_name, self.diagnostics_text, retries, retry_interval,
                lambda: self._diagnostics(DiagnosticsStatus.uploading),
            )
            self._diagnostics(DiagnosticsStatus.uploaded if uploaded else DiagnosticsStatus.upload_failed)
        finally:
            self.diagnostics_status = DiagnosticsStatus.idle  # what a later TriggerMessage reports

    async def _upload_file(
        self,
        what: str,
        location: str,
        file_name: str,
        body: Callable[[], str],
        retries: int | None,
        retry_interval: int | None,
        starting: Callable[[], None],
    ) -> bool:
        """Upload a file (really, with upload_diagnostics, else simulated), retrying as asked;
        `starting` reports each attempt. True once uploaded, False when every attempt failed."""
        attempts = 1 + max(0, retries or 0)
        for attempt in range(1, attempts + 1):
            starting()
            try:
                if self.options.upload_diagnostics:
                    status = await upload_diagnostics(location, file_name, body().encode())
                    log.info("%s: %s %s uploaded (%s %s)", self.id, what, file_name,
                             "FTP" if is_ftp(location) else "HTTP", status)
                else:
                    await self.clock.sleep(self.options.transfer_s)
            except Exception as exc:
                self._error(f"{what} upload to {redact_url(location)}", exc)
                if attempt == attempts:
                    return False
                await asyncio.sleep(retry_interval or 30)
            else:
                return True
        return False

    # -- the security extension's log upload (GetLog) ---------------------------------------------

    def note_security_event(self, text: str) -> None:
        """A line for the security log (what GetLog's SecurityLog uploads)."""
        self.security_log.append(f"{timestamp()} {text}")

    def security_event(self, kind: str, tech_info: str | None = None) -> None:
        """A critical security event (the whitepaper's list): logged, and told to the central system."""
        self.note_security_event(f"{kind}: {tech_info}" if tech_info else kind)
        self.post(call.SecurityEventNotification(
            type=kind[:50], timestamp=timestamp(), tech_info=tech_info[:255] if tech_info else None
        ))

    def security_log_text(self) -> str:
        lines = [f"ocpp-console simulated charger {self.id} security log", f"time {timestamp()}", *self.security_log]
        return "\n".join(lines) + "\n"

    def _log_upload(self, status: UploadLogStatus, request_id: int | None) -> None:
        self.log_status, self.log_request_id = status, request_id
        log.info("%s: log upload %s (request %s)", self.id, status, request_id)
        self.post(call.LogStatusNotification(status=status, request_id=request_id))

    def start_log_upload(
        self,
        security: bool,
        request_id: int,
        location: str,
        file_name: str,
        retries: int | None,
        retry_interval: int | None,
    ) -> bool:
        """GetLog: upload the security log (else the diagnostics log); True when it replaced an
        upload under way (the answer is then AcceptedCanceled)."""
        replaced = self._log_task is not None and not self._log_task.done()
        if replaced:
            self._log_task.cancel()  # type: ignore[union-attr]
        body = self.security_log_text if security else self.diagnostics_text
        self._log_task = self._spawn(
            self._upload_log(request_id, location, file_name, body, retries, retry_interval), "log-upload"
        )
        return replaced

    async def _upload_log(
        self,
        request_id: int,
        location: str,
        file_name: str,
        body: Callable[[], str],
        retries: int | None,
        retry_interval: int | None,
    ) -> None:
        try:
            uploaded = await self._upload_file(
                "log", location, file_name, body, retries, retry_interval,
                lambda: self._log_upload(UploadLogStatus.uploading, request_id),
            )
            self._log_upload(UploadLogStatus.uploaded if uploaded else UploadLogStatus.upload_failure, request_id)
        finally:
            if self._log_task is asyncio.current_task():  # (not when a newer GetLog replaced this one)
                # What a later ExtendedTriggerMessage reports: nothing under way.
                self.log_status, self.log_request_id = UploadLogStatus.idle, None

    async def reset(self, kind: ResetType) -> None:
        """Stop every transaction (reason SoftReset/HardReset), then reboot and boot again."""
        reason = Reason.soft_reset if kind == ResetType.soft else Reason.hard_reset
        await self._idle.wait()  # the Reset answer goes out before the connection does
        self._rebooting = True
        await self._finish_sessions(reason)
        if kind == ResetType.soft:
            # A soft reset lets the StopTransactions go out first; a hard one just goes down
            # (they are kept and sent after the reboot).
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.outbox.wait_empty(), self.options.drain_timeout_s)
        log.info("%s: %s reset", self.id, kind)
        self.request_reboot()
