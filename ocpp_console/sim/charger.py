"""The simulated charger's answers to every central-system-initiated OCPP 1.6 call.

Handlers decide and change state synchronously, then return the answer; whatever the charger
says as a consequence (StatusNotification, the triggered message, firmware progress, a new
session's StartTransaction) is queued or done in a task, and goes out only after the answer.
"""

from __future__ import annotations

import re
import ssl
from typing import Any

from ocpp.routing import on
from ocpp.v16 import call, call_result
from ocpp.v16.enums import (
    Action,
    AvailabilityStatus,
    AvailabilityType,
    CancelReservationStatus,
    CertificateSignedStatus,
    ChargePointStatus,
    ChargingProfilePurposeType,
    ChargingProfileStatus,
    ChargingRateUnitType,
    ClearCacheStatus,
    ClearChargingProfileStatus,
    ConfigurationStatus,
    DataTransferStatus,
    GenericStatus,
    GetCompositeScheduleStatus,
    GetInstalledCertificateStatus,
    Log,
    LogStatus,
    MessageTrigger,
    Reason,
    RemoteStartStopStatus,
    ReservationStatus,
    ResetStatus,
    ResetType,
    TriggerMessageStatus,
    UnlockStatus,
    UpdateFirmwareStatus,
)
from ocpp.v16.enums import ConfigurationKey as Key

from ocpp_console.sim.clock import parse_time, utc_now
from ocpp_console.sim.core import ChargerCore
from ocpp_console.sim.ev import random_ev
from ocpp_console.sim.link import log
from ocpp_console.sim.security import CertificateError, pem_certificates
from ocpp_console.sim.state import Connector, Reservation

# DataTransfer: the vendor id this simulator answers to, and its message ids.
VENDOR_ID = "ocpp-console-sim"
ECHO_MESSAGE = "echo"


def _file_name(kind: str, charger_id: str) -> str:
    """An upload's file name: `<kind>-<charger id>-<UTC time>.log`, safe in a URL and within the
    255 characters GetLog's answer allows."""
    safe_id = re.sub(r"[^A-Za-z0-9._-]", "_", charger_id)[:100]
    return f"{kind}-{safe_id}-{utc_now():%Y%m%dT%H%M%SZ}.log"


class SimulatedCharger(ChargerCore):
    """An OCPP 1.6J charger with 1..N connectors, built on the ocpp library's ChargePoint.

    `await charger.run()` connects to `url`/<id> and works until `await charger.stop()`;
    `charger.plug_in(connector, id_tag)` starts a session as a driver would.
    """

    _certificate_requested = False  # --request-certificate asks once per run

    # -- helpers -----------------------------------------------------------------------------

    def _startable_for(self, conn: Connector, id_tag: str) -> bool:
        if not self.can_start(conn) or conn.status == ChargePointStatus.faulted:
            return False
        return conn.reservation is None or conn.reservation.id_tag == id_tag

    # -- remote control --------------------------------------------------------------------------

    @on(Action.remote_start_transaction)
    def on_remote_start_transaction(
        self, id_tag: str, connector_id: int | None = None, charging_profile: dict[str, Any] | None = None, **_: Any
    ) -> call_result.RemoteStartTransaction:
        rejected = call_result.RemoteStartTransaction(status=RemoteStartStopStatus.rejected)
        if charging_profile is not None and (
            charging_profile.get("charging_profile_purpose") != ChargingProfilePurposeType.tx_profile
        ):
            return rejected  # only a TxProfile may come with a remote start
        if connector_id is not None:
            conn = self.connectors.get(connector_id)
            if conn is None or not self._startable_for(conn, id_tag):
                return rejected
        else:
            # The connector reserved for this tag if any, else the first free one.
            free = [c for c in self.connectors.values() if self._startable_for(c, id_tag)]
            free.sort(key=lambda c: c.reservation is None)
            if not free:
                return rejected
            conn = free[0]
        stay = self.rng.uniform(*self.options.session_stay_s) if self.sessions_mode == "auto" else None
        self._start_session(conn, id_tag, random_ev(self.rng, self.options.max_power_w), stay, True, charging_profile)
        return call_result.RemoteStartTransaction(status=RemoteStartStopStatus.accepted)

    @on(Action.remote_stop_transaction)
    def on_remote_stop_transaction(self, transaction_id: int, **_: Any) -> call_result.RemoteStopTransaction:
        for conn in self.connectors.values():
            tx = conn.transaction
            if tx is not None and tx.transaction_id == transaction_id:
                self.request_stop(conn.id, Reason.remote)
                return call_result.RemoteStopTransaction(status=RemoteStartStopStatus.accepted)
        return call_result.RemoteStopTransaction(status=RemoteStartStopStatus.rejected)

    @on(Action.unlock_connector)
    def on_unlock_connector(self, connector_id: int, **_: Any) -> call_result.UnlockConnector:
        conn = self.connectors.get(connector_id)
        if conn is None:
            return call_result.UnlockConnector(status=UnlockStatus.not_supported)
        if conn.session is not None:
            # Unlocking ends the transaction; the driver takes the cable.
            self.request_stop(conn.id, Reason.unlock_command)
        return call_result.UnlockConnector(status=UnlockStatus.unlocked)

    @on(Action.reset)
    def on_reset(self, type: str, **_: Any) -> call_result.Reset:
        self.spawn(self.reset(ResetType(type)), "reset")
        return call_result.Reset(status=ResetStatus.accepted)

    @on(Action.change_availability)
    def on_change_availability(self, connector_id: int, type: str, **_: Any) -> call_result.ChangeAvailability:
        wanted = AvailabilityType(type)
        if connector_id == 0:
            targets = list(self.connectors.values())
        elif connector_id in self.connectors:
            targets = [self.connectors[connector_id]]
        else:
            return call_result.ChangeAvailability(status=AvailabilityStatus.rejected)
        scheduled = False
        for conn in targets:
            if conn.busy:
                # Not while a car is charging: it changes when the transaction ends.
                conn.pending_availability = None if conn.availability == wanted else wanted
                scheduled = scheduled or conn.pending_availability is not None
                continue
            conn.availability, conn.pending_availability = wanted, None
            if wanted == AvailabilityType.inoperative:
                self.drop_reservation(conn, notify=False)
            self.set_status(conn, self._idle_status(conn))
        if connector_id == 0:
            self.charger.availability = wanted
            self.set_status(self.charger, self._idle_status(self.charger))
        status = AvailabilityStatus.scheduled if scheduled else AvailabilityStatus.accepted
        return call_result.ChangeAvailability(status=status)

    # -- configuration -------------------------------------------------------------------------

    @on(Action.change_configuration)
    def on_change_configuration(self, key: str, value: str, **_: Any) -> call_result.ChangeConfiguration:
        status = self.config.change(key, value)
        if status == ConfigurationStatus.accepted:
            if key == Key.heartbeat_interval:
                self._heartbeat_changed.set()
            if key == Key.authorization_key:
                log.info("%s: new AuthorizationKey (used from the next connection)", self.id)
            else:
                log.info("%s: %s set to %s", self.id, key, value)
        return call_result.ChangeConfiguration(status=status)

    @on(Action.get_configuration)
    def on_get_configuration(self, key: list[str] | None = None, **_: Any) -> call_result.GetConfiguration:
        known, unknown = self.config.report(key)
        return call_result.GetConfiguration(configuration_key=known, unknown_key=unknown or None)

    # -- triggers ---------------------------------------------------------------------------------

    @on(Action.trigger_message)
    def on_trigger_message(
        self, requested_message: str, connector_id: int | None = None, **_: Any
    ) -> call_result.TriggerMessage:
        return call_result.TriggerMessage(status=self._trigger(requested_message, connector_id))

    @on(Action.extended_trigger_message)
    def on_extended_trigger_message(
        self, requested_message: str, connector_id: int | None = None, **_: Any
    ) -> call_result.ExtendedTriggerMessage:
        # The same messages as TriggerMessage (its schema keeps DiagnosticsStatusNotification out),
        # and LogStatusNotification.
        return call_result.ExtendedTriggerMessage(status=self._trigger(requested_message, connector_id))

    def _trigger(self, requested_message: str, connector_id: int | None) -> TriggerMessageStatus:
        """Queue the requested message (it goes out after the answer) and say whether it will."""
        if connector_id is not None and connector_id != 0 and connector_id not in self.connectors:
            return TriggerMessageStatus.rejected
        try:
            message = MessageTrigger(requested_message)
        except ValueError:
            return TriggerMessageStatus.not_implemented
        if message == MessageTrigger.boot_notification:
            self.spawn(self._triggered_boot(), "triggered-boot")
        elif message == MessageTrigger.heartbeat:
            self.post(call.Heartbeat())
        elif message == MessageTrigger.status_notification:
            if connector_id is None:
                self._sync_statuses()
            else:
                self._post_status(self.charger if connector_id == 0 else self.connectors[connector_id])
        elif message == MessageTrigger.meter_values:
            targets = list(self.connectors.values()) if not connector_id else [self.connectors[connector_id]]
            for conn in targets:
                self.meter_values_now(conn)
        elif message == MessageTrigger.diagnostics_status_notification:
            self._diagnostics(self.diagnostics_status)
        elif message == MessageTrigger.firmware_status_notification:
            self._firmware(self.firmware_status)  # the signed notification during a signed update
        elif message == MessageTrigger.log_status_notification:
            self._log_upload(self.log_status, self.log_request_id)
        elif message == MessageTrigger.sign_charge_point_certificate:
            self.request_certificate()
        else:
            return TriggerMessageStatus.not_implemented
        return TriggerMessageStatus.accepted

    @on(Action.clear_cache)
    def on_clear_cache(self, **_: Any) -> call_result.ClearCache:
        self.auth.clear_cache()
        return call_result.ClearCache(status=ClearCacheStatus.accepted)

    # -- firmware and diagnostics ----------------------------------------------------------------

    @on(Action.update_firmware)
    def on_update_firmware(
        self, location: str, retrieve_date: str, retries: int | None = None, retry_interval: int | None = None, **_: Any
    ) -> call_result.UpdateFirmware:
        self.start_firmware_update(location, parse_time(retrieve_date), retries, retry_interval)
        return call_result.UpdateFirmware()

    @on(Action.get_diagnostics)
    def on_get_diagnostics(
        self, location: str, retries: int | None = None, retry_interval: int | None = None, **_: Any
    ) -> call_result.GetDiagnostics:
        file_name = _file_name("diagnostics", self.id)
        self.start_diagnostics(location, file_name, retries, retry_interval)
        return call_result.GetDiagnostics(file_name=file_name)

    @on(Action.data_transfer)
    def on_data_transfer(
        self, vendor_id: str, message_id: str | None = None, data: str | None = None, **_: Any
    ) -> call_result.DataTransfer:
        if vendor_id != VENDOR_ID:
            return call_result.DataTransfer(status=DataTransferStatus.unknown_vendor_id)
        if message_id != ECHO_MESSAGE:
            return call_result.DataTransfer(status=DataTransferStatus.unknown_message_id)
        return call_result.DataTransfer(status=DataTransferStatus.accepted, data=data)

    # -- reservations ----------------------------------------------------------------------------

    @on(Action.reserve_now)
    def on_reserve_now(
        self,
        connector_id: int,
        expiry_date: str,
        id_tag: str,
        reservation_id: int,
        parent_id_tag: str | None = None,
        **_: Any,
    ) -> call_result.ReserveNow:
        def answer(status: ReservationStatus) -> call_result.ReserveNow:
            return call_result.ReserveNow(status=status)

        if connector_id == 0 and not self.config.get_bool(Key.reserve_connector_zero_supported):
            return answer(ReservationStatus.rejected)
        conn = self.connectors.get(connector_id)
        expiry = parse_time(expiry_date)
        if conn is None or expiry is None or expiry <= utc_now():
            return answer(ReservationStatus.rejected)
        existing = self.reservation(reservation_id)
        if conn.fault is not None:
            return answer(ReservationStatus.faulted)
        if not conn.operative or not self.charger.operative:
            return answer(ReservationStatus.unavailable)
        replacing = existing is not None and existing.connector_id == connector_id
        if conn.busy or (conn.reservation is not None and not replacing):
            return answer(ReservationStatus.occupied)
        if existing is not None and not replacing:
            # The same reservation id moves to another connector: the old one is freed.
            self.drop_reservation(self.connectors[existing.connector_id])
        self.reserve(conn, Reservation(reservation_id, connector_id, id_tag, parent_id_tag, expiry))
        log.info("%s: connector %d reserved for %s until %s (reservation %d)",
                 self.id, connector_id, id_tag, expiry_date, reservation_id)
        return answer(ReservationStatus.accepted)

    @on(Action.cancel_reservation)
    def on_cancel_reservation(self, reservation_id: int, **_: Any) -> call_result.CancelReservation:
        res = self.reservation(reservation_id)
        if res is None:
            return call_result.CancelReservation(status=CancelReservationStatus.rejected)
        self.drop_reservation(self.connectors[res.connector_id])
        return call_result.CancelReservation(status=CancelReservationStatus.accepted)

    # -- local authorization list ----------------------------------------------------------------

    @on(Action.send_local_list)
    def on_send_local_list(
        self, list_version: int, update_type: str, local_authorization_list: list[dict[str, Any]] | None = None, **_: Any
    ) -> call_result.SendLocalList:
        status = self.auth.update(
            enabled=self.config.get_bool(Key.local_auth_list_enabled),
            version=list_version,
            update_type=update_type,
            entries=local_authorization_list or [],
            max_send=self.config.get_int(Key.send_local_list_max_length),
            max_length=self.config.get_int(Key.local_auth_list_max_length),
        )
        return call_result.SendLocalList(status=status)

    @on(Action.get_local_list_version)
    def on_get_local_list_version(self, **_: Any) -> call_result.GetLocalListVersion:
        version = self.auth.list_version(self.config.get_bool(Key.local_auth_list_enabled))
        return call_result.GetLocalListVersion(list_version=version)

    # -- smart charging ---------------------------------------------------------------------------

    @on(Action.set_charging_profile)
    def on_set_charging_profile(
        self, connector_id: int, cs_charging_profiles: dict[str, Any], **_: Any
    ) -> call_result.SetChargingProfile:
        status = self.install_profile(connector_id, cs_charging_profiles)
        if status == ChargingProfileStatus.accepted:
            log.info("%s: charging profile %s installed on connector %d",
                     self.id, cs_charging_profiles.get("charging_profile_id"), connector_id)
        return call_result.SetChargingProfile(status=status)

    @on(Action.clear_charging_profile)
    def on_clear_charging_profile(
        self,
        id: int | None = None,
        connector_id: int | None = None,
        charging_profile_purpose: str | None = None,
        stack_level: int | None = None,
        **_: Any,
    ) -> call_result.ClearChargingProfile:
        cleared = self.profiles.clear(id, connector_id, charging_profile_purpose, stack_level)
        status = ClearChargingProfileStatus.accepted if cleared else ClearChargingProfileStatus.unknown
        return call_result.ClearChargingProfile(status=status)

    @on(Action.get_composite_schedule)
    def on_get_composite_schedule(
        self, connector_id: int, duration: int, charging_rate_unit: str | None = None, **_: Any
    ) -> call_result.GetCompositeSchedule:
        if connector_id != 0 and connector_id not in self.connectors:
            return call_result.GetCompositeSchedule(status=GetCompositeScheduleStatus.rejected)
        unit = ChargingRateUnitType(charging_rate_unit) if charging_rate_unit else None
        hardware = self.options.max_power_w * (len(self.connectors) if connector_id == 0 else 1)
        schedule = self.profiles.composite(
            connector_id, duration, unit, self.tx_context(connector_id), self.electrical, hardware
        )
        return call_result.GetCompositeSchedule(
            status=GetCompositeScheduleStatus.accepted,
            connector_id=connector_id,
            schedule_start=schedule["start_schedule"],
            charging_schedule=schedule,
        )

    # -- the security extension (OCPP 1.6 security whitepaper) -------------------------------------

    @on(Action.install_certificate)
    def on_install_certificate(
        self, certificate_type: str, certificate: str, **_: Any
    ) -> call_result.InstallCertificate:
        status = self.certificates.install(certificate_type, certificate)
        self.note_security_event(f"InstallCertificate {certificate_type}: {status}")
        return call_result.InstallCertificate(status=status)

    @on(Action.get_installed_certificate_ids)
    def on_get_installed_certificate_ids(
        self, certificate_type: str, **_: Any
    ) -> call_result.GetInstalledCertificateIds:
        found = self.certificates.hash_data(certificate_type)
        if not found:  # (the schema wants at least one item when the list is there)
            return call_result.GetInstalledCertificateIds(status=GetInstalledCertificateStatus.not_found)
        return call_result.GetInstalledCertificateIds(
            status=GetInstalledCertificateStatus.accepted, certificate_hash_data=found
        )

    @on(Action.delete_certificate)
    def on_delete_certificate(self, certificate_hash_data: dict[str, str], **_: Any) -> call_result.DeleteCertificate:
        status = self.certificates.delete(certificate_hash_data)
        self.note_security_event(f"DeleteCertificate serial {certificate_hash_data.get('serial_number')}: {status}")
        return call_result.DeleteCertificate(status=status)

    @on(Action.certificate_signed)
    def on_certificate_signed(self, certificate_chain: str, **_: Any) -> call_result.CertificateSigned:
        refused = self.certificates.signed(certificate_chain)
        if refused is not None:
            log.warning("%s: CertificateSigned rejected: %s", self.id, refused)
            self.security_event("InvalidChargePointCertificate", refused)
            return call_result.CertificateSigned(status=CertificateSignedStatus.rejected)
        self.note_security_event("CertificateSigned: Accepted")
        log.info("%s: new client certificate installed", self.id)
        if self.url.startswith("wss:") and self.options.reconnect_on_certificate:
            self.spawn(self._reconnect_with_certificate(), "reconnect-with-certificate")
        return call_result.CertificateSigned(status=CertificateSignedStatus.accepted)

    # -- the charger's own certificate (security profile 3) ---------------------------------------

    def request_certificate(self) -> None:
        """SignCertificate with a CSR for a new key: CN = the charger id, O = CpoName."""
        organisation = self.config.get(Key.cpo_name) or self.options.organisation
        csr = self.certificates.csr(self.id, organisation)
        self._certificate_requested = True
        self.note_security_event("SignCertificate sent")

        def answered(result: Any) -> None:
            if result.status != GenericStatus.accepted:
                log.warning("%s: the central system answered %s to SignCertificate", self.id, result.status)
                self.note_security_event(f"SignCertificate: {result.status}")

        self.post(call.SignCertificate(csr=csr), on_result=answered)

    async def _reconnect_with_certificate(self) -> None:
        """The certificate counts from the next connection: make that one now (after the answer)."""
        await self._idle.wait()
        log.info("%s: reconnecting with its new client certificate", self.id)
        if self.connected and self._connection is not None:
            await self._connection.close(code=1000, reason="reconnecting with a new certificate")

    def _tls_context(self) -> ssl.SSLContext:
        return self.certificates.tls_context(self.options.server_ca)

    def _sync_statuses(self) -> None:
        super()._sync_statuses()
        # --request-certificate: once per run, while the charger has no certificate of its own.
        if self.options.request_certificate and self.certificates.charge_point_chain is None \
                and not self._certificate_requested:
            self.request_certificate()

    @on(Action.get_log)
    def on_get_log(
        self,
        log: dict[str, Any],
        log_type: str,
        request_id: int,
        retries: int | None = None,
        retry_interval: int | None = None,
        **_: Any,
    ) -> call_result.GetLog:
        file_name = _file_name(log_type, self.id)
        replaced = self.start_log_upload(
            log_type == Log.security_log, request_id, log["remote_location"], file_name, retries, retry_interval
        )
        status = LogStatus.accepted_canceled if replaced else LogStatus.accepted
        return call_result.GetLog(status=status, filename=file_name)

    @on(Action.signed_update_firmware)
    def on_signed_update_firmware(
        self,
        request_id: int,
        firmware: dict[str, Any],
        retries: int | None = None,
        retry_interval: int | None = None,
        **_: Any,
    ) -> call_result.SignedUpdateFirmware:
        try:
            pem_certificates(firmware["signing_certificate"])
        except CertificateError as exc:
            self.security_event("InvalidFirmwareSigningCertificate", f"SignedUpdateFirmware {request_id}: {exc}")
            return call_result.SignedUpdateFirmware(status=UpdateFirmwareStatus.invalid_certificate)
        replaced = self.start_firmware_update(
            firmware["location"],
            parse_time(firmware["retrieve_date_time"]),
            retries,
            retry_interval,
            request_id=request_id,
            install_date=parse_time(firmware.get("install_date_time")),
        )
        self.note_security_event(f"SignedUpdateFirmware {request_id} from {firmware['location']}")
        status = UpdateFirmwareStatus.accepted_canceled if replaced else UpdateFirmwareStatus.accepted
        return call_result.SignedUpdateFirmware(status=status)
