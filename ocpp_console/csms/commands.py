"""Operator commands: one async method per central-system-initiated OCPP 1.6 operation.

Each returns the charger's answer (an `ocpp.v16.call_result` dataclass) or raises a
CommandError (offline, timeout, CALLERROR, invalid). Every command and its outcome is
stored, and what an accepted command changes (configuration, reservations, local list
version, charging profiles) is stored too.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ocpp.v16 import call
from ocpp.v16.enums import (
    AvailabilityType,
    CancelReservationStatus,
    CertificateSignedStatus,
    CertificateUse,
    ChargingProfilePurposeType,
    ChargingRateUnitType,
    ClearChargingProfileStatus,
    ConfigurationStatus,
    Log,
    MessageTrigger,
    RegistrationStatus,
    ResetType,
    TriggerMessageStatus,
    UpdateStatus,
    UpdateType,
)

from ocpp_console.csms import events as ev
from ocpp_console.csms.ca import CAError, certificate_summary
from ocpp_console.csms.errors import (
    ChargerOffline,
    CommandError,
    InvalidCommand,
    UnknownCharger,
    offline_message,
    unknown_message,
)
from ocpp_console.csms.protocol import as_payload, to_camel
from ocpp_console.csms.security import PasswordError, check_password, hash_password
from ocpp_console.secret_keys import is_secret_key, mask_keys, mask_payload, mask_value
from ocpp_console.timeutil import iso, now_iso, utcnow

if TYPE_CHECKING:
    from ocpp_console.csms.server import CentralSystem

log = logging.getLogger("ocpp_console.commands")


def is_security_profile_key(key: str) -> bool:
    """Configuration keys are CiStrings: securityprofile is the SecurityProfile."""
    return key.strip().lower() == "securityprofile"


def _time(value: datetime | str | None) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return iso(value)


class Commands:
    def __init__(self, csms: CentralSystem) -> None:
        self.csms = csms

    @property
    def store(self):  # noqa: ANN201 - the Store
        return self.csms.store

    async def send(self, charger_id: str, payload: Any) -> Any:
        """Send any 1.6 call (an `ocpp.v16.call` dataclass) and log the outcome."""
        action = type(payload).__name__
        created = now_iso()
        request = mask_payload(action, as_payload(payload))
        session = self.csms.sessions.get(charger_id)
        try:
            if session is None:
                if await self.store.charger(charger_id) is None:
                    raise UnknownCharger(unknown_message(charger_id))
                raise ChargerOffline(offline_message(charger_id))
            result = await session.send_command(payload)
        except CommandError as exc:
            if isinstance(exc, ChargerOffline):  # the same words as the API's answer and `call`'s line
                log.warning("%s not sent: %s", action, exc)
            else:
                log.warning("%s: %s %s: %s", charger_id, action, exc.outcome, exc)
            await self.store.record_command(charger_id, action, request, exc.outcome, None, str(exc), created)
            self.csms.events.publish(ev.CommandFinished(charger_id, action, exc.outcome, None, str(exc)))
            raise
        response = mask_payload(action, as_payload(result))
        await self.store.record_command(charger_id, action, request, "ok", response, None, created)
        self.csms.events.publish(ev.CommandFinished(charger_id, action, "ok", response, None))
        return result

    # -- registration -----------------------------------------------------------------

    async def approve(self, charger_id: str) -> None:
        """Accept a Pending charger; if it is connected, ask it to boot again now."""
        await self._register(charger_id, RegistrationStatus.accepted)
        if charger_id in self.csms.sessions:
            try:
                await self.trigger_message(charger_id, MessageTrigger.boot_notification)
            except CommandError:
                pass  # it will boot again after the retry interval anyway

    async def reject(self, charger_id: str) -> None:
        await self._register(charger_id, RegistrationStatus.rejected)

    async def _register(self, charger_id: str, registration: RegistrationStatus) -> None:
        if not await self.store.set_registration(charger_id, registration.value):
            raise InvalidCommand(f"unknown charger {charger_id}")
        session = self.csms.sessions.get(charger_id)
        if session is not None and registration != RegistrationStatus.accepted:
            session.registration = registration.value
        log.info("%s: registration set to %s by the operator", charger_id, registration.value)
        self.csms.events.publish(ev.RegistrationChanged(charger_id, registration.value))

    # -- the 1.6 operations -----------------------------------------------------------

    async def remote_start_transaction(
        self, charger_id: str, id_tag: str, connector_id: int | None = None, charging_profile: dict[str, Any] | None = None
    ) -> Any:
        """Accepted only means the charger will try: the follower publishes RemoteStartFollowed
        when its StartTransaction comes, or RemoteStartUnanswered when none does in time."""
        watch = self.csms.remote_starts.watch(charger_id, id_tag, connector_id)
        try:
            result = await self.send(
                charger_id,
                call.RemoteStartTransaction(id_tag=id_tag, connector_id=connector_id, charging_profile=charging_profile),
            )
        except BaseException:
            self.csms.remote_starts.drop(watch)
            raise
        self.csms.remote_starts.answered(watch, str(result.status))
        return result

    async def remote_stop_transaction(self, charger_id: str, transaction_id: int) -> Any:
        return await self.send(charger_id, call.RemoteStopTransaction(transaction_id=transaction_id))

    async def change_configuration(self, charger_id: str, key: str, value: str) -> Any:
        # CiString: `authorizationkey` changes the very same key, and the login with it
        if is_secret_key(key):
            try:
                check_password(value)
            except PasswordError as exc:
                raise InvalidCommand(f"AuthorizationKey: {exc}") from None
        profile = self._security_profile(value) if is_security_profile_key(key) else None
        result = await self.send(charger_id, call.ChangeConfiguration(key=key, value=value))
        if profile is not None:
            await self._security_profile_changed(charger_id, profile, result.status)
        if result.status in (ConfigurationStatus.accepted, ConfigurationStatus.reboot_required):
            await self.store.set_configuration_value(charger_id, key, mask_value(key, value))
            if is_secret_key(key):
                # Both keys are valid until the charger logs in with the new one (no lock-out if it
                # reconnects with the old one first); Rejected or NotSupported keep the old key only.
                await self.store.set_pending_password(charger_id, await asyncio.to_thread(hash_password, value))
        return result

    def _security_profile(self, value: str) -> int:
        """The profile a SecurityProfile change asks for, if this central system can let the
        charger in with it afterwards (else the change would lock the charger out)."""
        text = value.strip()
        if not (text.isdigit() and 0 <= int(text) <= 3):
            raise InvalidCommand(f"SecurityProfile {value!r}: 0, 1, 2 or 3")
        profile = int(text)
        if profile > self.csms.highest_profile:
            missing = ("TLS port (--tls-cert, --tls-key)" if self.csms.highest_profile < 2
                       else "CA for client certificates (--tls-ca)")
            raise InvalidCommand(
                f"SecurityProfile {profile}: this central system has no {missing}, so the charger could not "
                "connect again; nothing was sent"
            )
        return profile

    async def _security_profile_changed(self, charger_id: str, profile: int, status: str) -> None:
        """Only an Accepted change raises the stored profile: from then on the charger is refused
        below it (the whitepaper forbids falling back). RebootRequired, Rejected or NotSupported
        leave it, so the charger can still come back the way it came."""
        if status != ConfigurationStatus.accepted:
            log.info("%s: SecurityProfile %d answered %s: its stored profile stays", charger_id, profile, status)
            return
        stored = await self.store.raise_security_profile(charger_id, profile)
        if stored is not None and stored > profile:
            log.warning("%s: accepted SecurityProfile %d, but its stored profile stays %d (never lowered by a "
                        "charger; `chargers add %s --security-profile N` lowers it)", charger_id, profile, stored,
                        charger_id)
        else:
            log.info("%s: accepted SecurityProfile %d: from now on it is refused below profile %d",
                     charger_id, profile, profile)

    async def get_configuration(self, charger_id: str, keys: list[str] | None = None) -> Any:
        result = await self.send(charger_id, call.GetConfiguration(key=keys or None))
        # a charger that reports its AuthorizationKey (write-only per the whitepaper) is not repeated:
        # neither stored nor handed on to the console or the API
        result.configuration_key = mask_keys(result.configuration_key) if result.configuration_key else result.configuration_key
        await self.store.save_configuration(
            charger_id, result.configuration_key or [], result.unknown_key or [], full=not keys
        )
        return result

    async def reset(self, charger_id: str, type: ResetType = ResetType.soft) -> Any:
        return await self.send(charger_id, call.Reset(type=ResetType(type)))

    async def unlock_connector(self, charger_id: str, connector_id: int) -> Any:
        return await self.send(charger_id, call.UnlockConnector(connector_id=connector_id))

    async def change_availability(self, charger_id: str, connector_id: int, type: AvailabilityType) -> Any:
        return await self.send(charger_id, call.ChangeAvailability(connector_id=connector_id, type=AvailabilityType(type)))

    async def clear_cache(self, charger_id: str) -> Any:
        return await self.send(charger_id, call.ClearCache())

    async def trigger_message(
        self, charger_id: str, requested_message: MessageTrigger, connector_id: int | None = None
    ) -> Any:
        result = await self.send(
            charger_id, call.TriggerMessage(requested_message=MessageTrigger(requested_message), connector_id=connector_id)
        )
        if result.status != TriggerMessageStatus.accepted:
            log.info("%s: TriggerMessage %s answered %s", charger_id, requested_message, result.status)
        return result

    async def update_firmware(
        self,
        charger_id: str,
        location: str,
        retrieve_date: datetime | str | None = None,
        retries: int | None = None,
        retry_interval: int | None = None,
    ) -> Any:
        return await self.send(
            charger_id,
            call.UpdateFirmware(
                location=location,
                retrieve_date=_time(retrieve_date) or iso(utcnow()),
                retries=retries,
                retry_interval=retry_interval,
            ),
        )

    async def get_diagnostics(
        self,
        charger_id: str,
        location: str,
        retries: int | None = None,
        retry_interval: int | None = None,
        start_time: datetime | str | None = None,
        stop_time: datetime | str | None = None,
    ) -> Any:
        return await self.send(
            charger_id,
            call.GetDiagnostics(
                location=location,
                retries=retries,
                retry_interval=retry_interval,
                start_time=_time(start_time),
                stop_time=_time(stop_time),
            ),
        )

    async def data_transfer(
        self, charger_id: str, vendor_id: str, message_id: str | None = None, data: str | None = None
    ) -> Any:
        result = await self.send(charger_id, call.DataTransfer(vendor_id=vendor_id, message_id=message_id, data=data))
        await self.store.data_transfer(charger_id, "out", vendor_id, message_id, data, result.status, result.data)
        return result

    async def reserve_now(
        self,
        charger_id: str,
        connector_id: int,
        id_tag: str,
        expiry_date: datetime | str,
        reservation_id: int | None = None,
        parent_id_tag: str | None = None,
    ) -> Any:
        if reservation_id is None:
            reservation_id = await self.store.next_reservation_id()
        expiry = _time(expiry_date)
        assert expiry is not None
        result = await self.send(
            charger_id,
            call.ReserveNow(
                connector_id=connector_id,
                expiry_date=expiry,
                id_tag=id_tag,
                reservation_id=reservation_id,
                parent_id_tag=parent_id_tag,
            ),
        )
        await self.store.save_reservation(
            reservation_id, charger_id, connector_id, id_tag, parent_id_tag, expiry, str(result.status)
        )
        result.reservation_id = reservation_id  # type: ignore[attr-defined]  # handy for callers
        return result

    async def cancel_reservation(self, charger_id: str, reservation_id: int) -> Any:
        result = await self.send(charger_id, call.CancelReservation(reservation_id=reservation_id))
        if result.status == CancelReservationStatus.accepted:
            await self.store.set_reservation_status(reservation_id, "Cancelled")
        return result

    async def send_local_list(
        self,
        charger_id: str,
        list_version: int,
        update_type: UpdateType,
        local_authorization_list: list[dict[str, Any]] | None = None,
    ) -> Any:
        result = await self.send(
            charger_id,
            call.SendLocalList(
                list_version=list_version,
                update_type=UpdateType(update_type),
                local_authorization_list=local_authorization_list or [],
            ),
        )
        if result.status == UpdateStatus.accepted:
            await self.store.set_local_list_version(charger_id, list_version)
        return result

    async def get_local_list_version(self, charger_id: str) -> Any:
        result = await self.send(charger_id, call.GetLocalListVersion())
        await self.store.set_local_list_version(charger_id, result.list_version)
        return result

    async def set_charging_profile(self, charger_id: str, connector_id: int, cs_charging_profiles: dict[str, Any]) -> Any:
        result = await self.send(
            charger_id, call.SetChargingProfile(connector_id=connector_id, cs_charging_profiles=cs_charging_profiles)
        )
        await self.store.save_charging_profile(charger_id, connector_id, to_camel(cs_charging_profiles), str(result.status))
        return result

    async def clear_charging_profile(
        self,
        charger_id: str,
        id: int | None = None,
        connector_id: int | None = None,
        charging_profile_purpose: ChargingProfilePurposeType | None = None,
        stack_level: int | None = None,
    ) -> Any:
        result = await self.send(
            charger_id,
            call.ClearChargingProfile(
                id=id, connector_id=connector_id, charging_profile_purpose=charging_profile_purpose, stack_level=stack_level
            ),
        )
        if result.status == ClearChargingProfileStatus.accepted:
            await self.store.clear_charging_profiles(
                charger_id, id, connector_id, charging_profile_purpose and str(charging_profile_purpose), stack_level
            )
        return result

    async def get_composite_schedule(
        self, charger_id: str, connector_id: int, duration: int, charging_rate_unit: ChargingRateUnitType | None = None
    ) -> Any:
        return await self.send(
            charger_id,
            call.GetCompositeSchedule(connector_id=connector_id, duration=duration, charging_rate_unit=charging_rate_unit),
        )

    # -- the security extension (OCPP 1.6 security whitepaper) -----------------------------------
    # Nested objects (certificateHashData, log, firmware) are plain dicts in camelCase, as in the
    # OCPP JSON; snake_case keys (as get_installed_certificate_ids hands them back) work too.

    async def certificate_signed(self, charger_id: str, certificate_chain: str) -> Any:
        """Deliver a signed certificate chain; the one the charger accepts is stored as its own."""
        result = await self.send(charger_id, call.CertificateSigned(certificate_chain=certificate_chain))
        if result.status == CertificateSignedStatus.accepted:
            try:
                serial, expiry = certificate_summary(certificate_chain)
            except ValueError:  # a chain typed by hand that the charger took anyway: keep it as it is
                serial = expiry = None
            await self.store.set_certificate(charger_id, serial, expiry, certificate_chain)
            log.info("%s: accepted its certificate (serial %s, valid until %s)", charger_id, serial, expiry)
            self.csms.events.publish(ev.CertificateInstalled(charger_id, serial, expiry))
        return result

    async def renew_certificate(self, charger_id: str) -> Any:
        """Ask the charger for a new certificate signing request (ExtendedTriggerMessage
        SignChargePointCertificate); the operator CA signs it when it comes."""
        return await self.extended_trigger_message(charger_id, MessageTrigger.sign_charge_point_certificate)

    async def install_operator_ca(self, charger_id: str) -> Any:
        """Install the operator CA's certificate on the charger as its CentralSystemRootCertificate."""
        try:
            ca = await self.csms.operator_ca()
        except CAError as exc:
            raise InvalidCommand(f"the operator CA is not available: {exc}") from None
        return await self.install_certificate(charger_id, CertificateUse.central_system_root_certificate, ca.certificate_pem)

    async def delete_certificate(self, charger_id: str, certificate_hash_data: dict[str, Any]) -> Any:
        return await self.send(charger_id, call.DeleteCertificate(certificate_hash_data=certificate_hash_data))

    async def extended_trigger_message(
        self, charger_id: str, requested_message: MessageTrigger | str, connector_id: int | None = None
    ) -> Any:
        # ocpp 2.1.0 shares MessageTrigger between both triggers; a value only TriggerMessage knows
        # (DiagnosticsStatusNotification) fails the ExtendedTriggerMessage schema: InvalidCommand.
        return await self.send(
            charger_id,
            call.ExtendedTriggerMessage(requested_message=MessageTrigger(requested_message), connector_id=connector_id),
        )

    async def get_installed_certificate_ids(self, charger_id: str, certificate_type: CertificateUse | str) -> Any:
        return await self.send(charger_id, call.GetInstalledCertificateIds(certificate_type=CertificateUse(certificate_type)))

    async def get_log(
        self,
        charger_id: str,
        log_type: Log | str,
        request_id: int,
        log: dict[str, Any],
        retries: int | None = None,
        retry_interval: int | None = None,
    ) -> Any:
        return await self.send(
            charger_id,
            call.GetLog(log=log, log_type=Log(log_type), request_id=request_id, retries=retries, retry_interval=retry_interval),
        )

    async def install_certificate(self, charger_id: str, certificate_type: CertificateUse | str, certificate: str) -> Any:
        return await self.send(
            charger_id, call.InstallCertificate(certificate_type=CertificateUse(certificate_type), certificate=certificate)
        )

    async def signed_update_firmware(
        self,
        charger_id: str,
        request_id: int,
        firmware: dict[str, Any],
        retries: int | None = None,
        retry_interval: int | None = None,
    ) -> Any:
        return await self.send(
            charger_id,
            call.SignedUpdateFirmware(request_id=request_id, firmware=firmware, retries=retries, retry_interval=retry_interval),
        )
