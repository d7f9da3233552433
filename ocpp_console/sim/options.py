"""How a simulated charger looks and behaves, and where it connects."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import quote

SUBPROTOCOL = "ocpp1.6"
SessionMode = Literal["auto", "none"]
DEFAULT_ORGANISATION = "ocpp-console"  # as the central system's built-in operator CA names itself


@dataclass(slots=True)
class ChargerOptions:
    """How a simulated charger looks and behaves. Times marked sim are scaled by `speed`."""

    vendor: str = "ocpp-console"
    model: str = "SimCharger"
    firmware_version: str = "1.0.0"
    serial: str | None = None  # default: derived from the charger id
    max_current_a: float = 16.0  # per phase, per connector
    phases: int = 3
    voltage: float = 230.0
    fetch_firmware: bool = False  # (Signed)UpdateFirmware: really GET (HTTP) or RETR (FTP) the image (else simulated)
    upload_diagnostics: bool = False  # GetDiagnostics and GetLog: really PUT/POST (HTTP) or STOR (FTP) the file (else simulated)
    call_timeout: float = 30.0  # real s to wait for the central system's answer
    reconnect_initial_s: float = 1.0  # real s: first reconnection delay (doubles, with jitter)
    reconnect_max_s: float = 60.0
    boot_retry_s: float = 60.0  # real s before booting again when the answer gave no interval
    reboot_s: float = 10.0  # sim s a reset or firmware reboot takes
    transfer_s: float = 60.0  # sim s a simulated download, install or upload takes
    unplug_s: float = 60.0  # sim s between Finishing and the driver unplugging
    session_gap_s: tuple[float, float] = (300.0, 3600.0)  # sim s between sessions (--sessions auto)
    session_stay_s: tuple[float, float] = (1200.0, 10800.0)  # sim s a driver stays plugged in
    tick_s: float = 1.0  # real s, at most, between two physics updates of a charging car
    drain_timeout_s: float = 10.0  # real s stop()/Reset wait for queued messages to be answered
    max_queued_meter_values: int = 10_000
    config: dict[str, str] = field(default_factory=dict)  # configuration key overrides
    # -- security profile 3: a certificate signed by the central system's operator CA --
    organisation: str = DEFAULT_ORGANISATION  # CpoName: the O of the certificate signing request
    request_certificate: bool = False  # send SignCertificate once Accepted, while it has no certificate
    server_ca: str | None = None  # PEM file of the CA that signed the central system's wss:// certificate
    reconnect_on_certificate: bool = True  # over wss://: reconnect at once with a newly signed certificate

    @property
    def max_power_w(self) -> float:
        return self.max_current_a * self.voltage * self.phases


def charger_url(base: str, charger_id: str) -> str:
    """The central system's URL with the charger id as the last path segment, URL-encoded."""
    return f"{base.rstrip('/')}/{quote(charger_id, safe='')}"
