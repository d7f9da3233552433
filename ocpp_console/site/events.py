"""The site's domain events, as a console receives them through `Site.subscribe`.

The central system publishes them (csms/events.py); the console only reads them. A remote site
decodes the same dataclasses from the API's event stream.
"""

from __future__ import annotations

from dataclasses import dataclass

from ocpp_console.csms.events import (
    CertificateInstalled,
    CertificateRequestRefused,
    ChargerBooted,
    ChargerConnected,
    ChargerDisconnected,
    CommandFinished,
    Event,
    ExternalChange,
    FileTransfer,
    IdTagRefused,
    LoadDecided,
    MessageLogged,
    MeterSample,
    NotificationReceived,
    RegistrationChanged,
    RemoteStartFollowed,
    RemoteStartUnanswered,
    StatusChanged,
    TransactionSettledAgain,
    TransactionStarted,
    TransactionStopped,
)



@dataclass(frozen=True, slots=True)
class SiteResynced(Event):
    """Not a domain event: a remote site's stream could not give the events missed while it was
    away (the service restarted, or this console fell too far behind), so the console reads the
    whole site again. Site-wide: charger_id is empty."""


__all__ = [
    "CertificateInstalled",
    "CertificateRequestRefused",
    "ChargerBooted",
    "ChargerConnected",
    "ChargerDisconnected",
    "CommandFinished",
    "Event",
    "ExternalChange",
    "FileTransfer",
    "IdTagRefused",
    "LoadDecided",
    "MessageLogged",
    "MeterSample",
    "NotificationReceived",
    "RegistrationChanged",
    "RemoteStartFollowed",
    "RemoteStartUnanswered",
    "SiteResynced",
    "StatusChanged",
    "TransactionSettledAgain",
    "TransactionStarted",
    "TransactionStopped",
]
