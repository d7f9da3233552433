"""The site's domain events, as a console receives them through `Site.subscribe`.

The central system publishes them (csms/events.py); the console only reads them. A remote site
decodes the same dataclasses from the API's event stream.
"""

from ocpp_console.csms.events import (
    CertificateInstalled,
    CertificateRequestRefused,
    ChargerBooted,
    ChargerConnected,
    ChargerDisconnected,
    CommandFinished,
    Event,
    ExternalChange,
    IdTagRefused,
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

__all__ = [
    "CertificateInstalled",
    "CertificateRequestRefused",
    "ChargerBooted",
    "ChargerConnected",
    "ChargerDisconnected",
    "CommandFinished",
    "Event",
    "ExternalChange",
    "IdTagRefused",
    "MessageLogged",
    "MeterSample",
    "NotificationReceived",
    "RegistrationChanged",
    "RemoteStartFollowed",
    "RemoteStartUnanswered",
    "StatusChanged",
    "TransactionSettledAgain",
    "TransactionStarted",
    "TransactionStopped",
]
