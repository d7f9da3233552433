"""What a charger sends us, answered: one handler per action (`@on`), mixed into ChargerSession.

The session reads and checks each frame (csms/session.py); the handler stores what the call
says, publishes its event once it is committed, and returns the answer.
"""

from __future__ import annotations

import asyncio
import logging
from functools import partial
from typing import TYPE_CHECKING, Any

import orjson
from ocpp.routing import on
from ocpp.v16 import call_result, datatypes
from ocpp.v16.enums import (
    Action,
    AuthorizationStatus,
    CertificateSignedStatus,
    DataTransferStatus,
    GenericStatus,
    Reason,
    RegistrationStatus,
)

from ocpp_console.csms import billing, transactions
from ocpp_console.csms import events as ev
from ocpp_console.csms.ca import CAError, CSRRejected, Signed
from ocpp_console.csms.errors import CommandError
from ocpp_console.csms.metering import normalise
from ocpp_console.store.models import IdTagInfo
from ocpp_console.timeutil import iso, now_iso, parse_charger_time

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from ocpp_console.csms import protocol
    from ocpp_console.csms.server import CentralSystem
    from ocpp_console.settings import Settings
    from ocpp_console.store import Store

log = logging.getLogger("ocpp_console.session")


def _closed_by(flags: tuple[str, ...]) -> str | None:
    return next((f for f in flags if f in transactions.CLOSED_BY), None)


def _id_tag_info(info: IdTagInfo) -> datatypes.IdTagInfo:
    return datatypes.IdTagInfo(status=info.status, expiry_date=info.expiry_date, parent_id_tag=info.parent_id_tag)


class ChargerCalls:
    """The charger-initiated actions of OCPP 1.6 and its security extension."""

    if TYPE_CHECKING:  # provided by ChargerSession
        id: str
        csms: CentralSystem
        registration: str | None
        _current: protocol.Message | None
        _after_answer: dict[str, Callable[[], Awaitable[None]]]

        @property
        def store(self) -> Store: ...
        @property
        def settings(self) -> Settings: ...
        @property
        def _current_payload(self) -> dict[str, Any]: ...

    # -- charger-initiated messages ---------------------------------------------------------

    @on(Action.boot_notification)
    async def on_boot_notification(self, charge_point_vendor: str, charge_point_model: str, **kw: Any) -> Any:
        info = {
            "vendor": charge_point_vendor,
            "model": charge_point_model,
            "charge_point_serial": kw.get("charge_point_serial_number"),
            "charge_box_serial": kw.get("charge_box_serial_number"),
            "firmware_version": kw.get("firmware_version"),
            "iccid": kw.get("iccid"),
            "imsi": kw.get("imsi"),
            "meter_type": kw.get("meter_type"),
            "meter_serial": kw.get("meter_serial_number"),
        }
        result = await self.store.boot(self.id, info, self.settings.unknown_chargers)
        self.registration = result.registration
        accepted = result.registration == RegistrationStatus.accepted
        interval = self.settings.heartbeat_interval if accepted else self.settings.boot_retry_interval
        log.info("%s: booted (%s %s, firmware %s): %s", self.id, charge_point_vendor, charge_point_model,
                 info["firmware_version"], result.registration)
        self.csms.events.publish(
            ev.ChargerBooted(self.id, result.registration, charge_point_vendor, charge_point_model, info["firmware_version"])
        )
        return call_result.BootNotification(
            current_time=now_iso(), interval=interval, status=RegistrationStatus(result.registration)
        )

    @on(Action.heartbeat)
    async def on_heartbeat(self, **_: Any) -> Any:
        return call_result.Heartbeat(current_time=now_iso())

    @on(Action.status_notification)
    async def on_status_notification(
        self, connector_id: int, error_code: str, status: str, timestamp: str | None = None, **kw: Any
    ) -> Any:
        ts = parse_charger_time(timestamp).value if timestamp else None
        cancelled = await self.store.status(
            self.id, connector_id, status, error_code, kw.get("info"), kw.get("vendor_id"),
            kw.get("vendor_error_code"), ts,
        )
        if cancelled:
            log.info("%s: reservations %s cancelled: connector %d is %s", self.id, cancelled, connector_id, status)
        self.csms.events.publish(ev.StatusChanged(self.id, connector_id, status, error_code, kw.get("info")))
        return call_result.StatusNotification()

    def _min_balance(self) -> int | None:
        """The wallet minimum in minor units, or None when wallets are not checked."""
        if not self.settings.wallet:
            return None
        return billing.to_minor(self.settings.min_balance, self.settings.currency)

    @on(Action.authorize)
    async def on_authorize(self, id_tag: str, **_: Any) -> Any:
        info = await self.store.authorize(id_tag, self.settings.unknown_id_tags, self._min_balance(), self.id)
        if info.status != AuthorizationStatus.accepted:
            self._refused(ev.IdTagRefused(self.id, id_tag, info.status, Action.authorize.value, info.reason))
        return call_result.Authorize(id_tag_info=_id_tag_info(info))

    def _refused(self, event: ev.IdTagRefused) -> None:
        log.info("%s: %s", self.id, event.sentence())
        self.csms.events.publish(event)

    @on(Action.start_transaction)
    async def on_start_transaction(
        self, connector_id: int, id_tag: str, meter_start: int, timestamp: str, reservation_id: int | None = None, **_: Any
    ) -> Any:
        ts = parse_charger_time(timestamp)
        flags = [f"timestamp_{ts.problem}"] if ts.problem else []
        if connector_id <= 0:
            flags.append("invalid_connector")
        tariff = billing.tariff_for(self.settings, self.id, tariffs=self.csms.tariffs)
        result = await self.store.start_transaction(
            self.id, connector_id, id_tag, meter_start, ts.value, timestamp, reservation_id,
            self.settings.unknown_id_tags, flags,
            tariff=tariff.to_json(), currency=tariff.currency, min_balance=self._min_balance(),
            settle=transactions.settle_for(self.csms, self.id),
        )
        for closed in result.closed:
            log.warning("%s: transaction %d on connector %d had no StopTransaction; superseded by transaction %d",
                        self.id, closed.transaction_id, connector_id, result.transaction_id)
            transactions.publish_closed(self.csms, closed)
        if result.duplicate:
            log.info("%s: repeated StartTransaction answered with transaction %d", self.id, result.transaction_id)
        else:
            info = result.id_tag_info
            self.csms.events.publish(ev.TransactionStarted(self.id, result.transaction_id, connector_id, id_tag, info.status,
                                                           meter_start))
            if info.status != AuthorizationStatus.accepted:
                self._refused(ev.IdTagRefused(self.id, id_tag, info.status, Action.start_transaction.value, info.reason,
                                              result.transaction_id, connector_id))
        return call_result.StartTransaction(
            transaction_id=result.transaction_id, id_tag_info=_id_tag_info(result.id_tag_info)
        )

    @on(Action.stop_transaction)
    async def on_stop_transaction(
        self, meter_stop: int, timestamp: str, transaction_id: int, reason: str | None = None,
        id_tag: str | None = None, **_: Any,
    ) -> Any:
        ts = parse_charger_time(timestamp)
        samples, problems = normalise(self._current_payload.get("transactionData") or ())
        flags = set(problems)
        if ts.problem:
            flags.add(f"stop_timestamp_{ts.problem}")
        if self._current is not None and self._current.out_of_range:
            transaction_id, meter_stop = await self._stop_in_range(transaction_id, meter_stop, flags)
        result = await self.store.stop_transaction(
            self.id, transaction_id, meter_stop, ts.value, reason or Reason.local.value, id_tag,
            self.settings.unknown_id_tags, samples,
            orjson.dumps(self._current_payload).decode(), sorted(flags),
            settle=transactions.settle_for(self.csms, self.id),
        )
        if result.outcome == "unknown":
            log.warning("%s: StopTransaction for unknown transaction %d recorded and flagged", self.id, transaction_id)
        if result.outcome == "late":
            log.warning("%s: late StopTransaction for transaction %d, which we had closed: settled again (%+d minor units)",
                        self.id, transaction_id, result.cost_delta or 0)
            self.csms.events.publish(ev.TransactionSettledAgain(
                self.id, transaction_id, _closed_by(result.flags), result.energy_delta_wh, result.cost_delta,
                result.currency,
            ))
        elif result.outcome != "repeated":
            self.csms.events.publish(
                ev.TransactionStopped(self.id, transaction_id, result.connector_id, result.energy_wh,
                                      reason or Reason.local.value, result.outcome == "stopped",
                                      result.cost_total, result.currency)
            )
        info = _id_tag_info(result.id_tag_info) if result.id_tag_info else None
        return call_result.StopTransaction(id_tag_info=info)

    async def _stop_in_range(self, transaction_id: int, meter_stop: int, flags: set[str]) -> tuple[int, int]:
        """What to record of a stop whose transactionId or meterStop is beyond 32 bits (zeroed
        before validation): no transaction of ours has such an id, so it is kept as an unknown
        stop (id 0, the charger's payload as sent); a meter register that big is no reading, so
        the transaction ends at its start register (no energy billed). Both flagged."""
        assert self._current is not None and self._current.out_of_range  # a handler runs for a call
        out_of_range = self._current.out_of_range
        if "transactionId" in out_of_range:
            flags.add("transaction_id_out_of_range")
            transaction_id = 0
        if "meterStop" in out_of_range:
            flags.add("meter_stop_out_of_range")
            row = await self.store.transaction(transaction_id) if transaction_id else None
            meter_stop = row["meter_start"] if row is not None and row["charger_id"] == self.id else 0
        log.warning("%s: StopTransaction with %s beyond 32 bits recorded as transaction %d, meterStop %d (%s)",
                    self.id, " and ".join(out_of_range), transaction_id, meter_stop, ", ".join(sorted(flags)))
        return transaction_id, meter_stop

    @on(Action.meter_values)
    async def on_meter_values(self, connector_id: int, transaction_id: int | None = None, **_: Any) -> Any:
        samples, _problems = normalise(self._current_payload["meterValue"])
        tx = transaction_id or None  # transactionId 0 means "no transaction"
        batch = await self.store.meter_values(self.id, connector_id, tx, samples)
        if batch.unknown_transaction:
            log.warning("%s: meter values for unknown transaction %s kept and flagged", self.id, tx)
        self.csms.events.publish(ev.MeterSample(self.id, connector_id, tx, batch.latest))
        return call_result.MeterValues()

    @on(Action.data_transfer)
    async def on_data_transfer(self, vendor_id: str, message_id: str | None = None, data: str | None = None, **_: Any) -> Any:
        handler = self.csms.data_transfer_handlers.get(vendor_id)
        status, response_data = DataTransferStatus.unknown_vendor_id, None
        if handler is not None:
            status, response_data = await handler(self.id, message_id, data)
        await self.store.data_transfer(self.id, "in", vendor_id, message_id, data, status, response_data)
        return call_result.DataTransfer(status=status, data=response_data)

    async def _notification(self, action: str, status: str | None) -> None:
        await self.store.notification(self.id, action, status, self._current_payload)
        self.csms.events.publish(ev.NotificationReceived(self.id, action, status))

    @on(Action.diagnostics_status_notification)
    async def on_diagnostics_status(self, status: str, **_: Any) -> Any:
        await self._notification(Action.diagnostics_status_notification, status)
        return call_result.DiagnosticsStatusNotification()

    @on(Action.firmware_status_notification)
    async def on_firmware_status(self, status: str, **_: Any) -> Any:
        await self._notification(Action.firmware_status_notification, status)
        return call_result.FirmwareStatusNotification()

    @on(Action.security_event_notification)
    async def on_security_event(self, type: str, **_: Any) -> Any:
        await self._notification(Action.security_event_notification, type)
        return call_result.SecurityEventNotification()

    @on(Action.signed_firmware_status_notification)
    async def on_signed_firmware_status(self, status: str, **_: Any) -> Any:
        await self._notification(Action.signed_firmware_status_notification, status)
        return call_result.SignedFirmwareStatusNotification()

    @on(Action.log_status_notification)
    async def on_log_status(self, status: str, **_: Any) -> Any:
        await self._notification(Action.log_status_notification, status)
        return call_result.LogStatusNotification()

    @on(Action.sign_certificate)
    async def on_sign_certificate(self, csr: str, **_: Any) -> Any:
        """The operator CA signs a good CSR; the chain goes out with CertificateSigned once this
        answer (Accepted) has been sent. A CSR we do not sign is answered Rejected, with the
        reason logged and kept with the notification."""
        try:
            ca = await self.csms.operator_ca()
            signed = await asyncio.to_thread(ca.sign_csr, csr, self.id)
        except (CSRRejected, CAError) as exc:
            reason = exc.reason if isinstance(exc, CSRRejected) else f"the operator CA is not available: {exc}"
            log.warning("%s: SignCertificate rejected: %s", self.id, reason)
            await self.store.notification(
                self.id, Action.sign_certificate, GenericStatus.rejected.value, {**self._current_payload, "reason": reason}
            )
            self.csms.events.publish(ev.NotificationReceived(self.id, Action.sign_certificate, GenericStatus.rejected.value))
            self.csms.events.publish(ev.CertificateRequestRefused(self.id, f"request rejected: {reason}"))
            return call_result.SignCertificate(status=GenericStatus.rejected)
        log.info("%s: SignCertificate accepted; certificate %s signed, valid until %s",
                 self.id, signed.serial_hex, iso(signed.not_after))
        await self._notification(Action.sign_certificate, GenericStatus.accepted.value)
        assert self._current is not None  # a handler runs for a call
        self._after_answer[self._current.unique_id] = partial(self._deliver_certificate, signed)
        return call_result.SignCertificate(status=GenericStatus.accepted)

    async def _deliver_certificate(self, signed: Signed) -> None:
        """CertificateSigned through the operator command path (so it is in the command log);
        the certificate is stored when the charger accepts it."""
        try:
            result = await self.csms.commands.certificate_signed(self.id, signed.chain_pem)
        except CommandError as exc:
            reason = f"the signed certificate {signed.serial_hex} could not be delivered: {exc}"
        else:
            if result.status == CertificateSignedStatus.accepted:
                return
            reason = f"the charger answered {result.status} to the signed certificate {signed.serial_hex}"
        log.warning("%s: %s", self.id, reason)
        self.csms.events.publish(ev.CertificateRequestRefused(self.id, reason))
