"""All settings in one place: CLI flags > OCPP_CONSOLE_* environment > TOML file > defaults."""

from __future__ import annotations

from contextvars import ContextVar
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import platformdirs
from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

APP_NAME = "ocpp-console"


def default_config_path() -> Path:
    return Path(platformdirs.user_config_dir(APP_NAME)) / "config.toml"


def default_db_path() -> Path:
    return Path(platformdirs.user_data_dir(APP_NAME)) / "ocpp-console.sqlite"


def is_loopback(host: str) -> bool:
    """Whether `host` only accepts connections from this machine."""
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to any interface


# The TOML file is chosen at run time (--config); a context variable carries the choice
# into settings_customise_sources without a global that tests would have to reset.
_config_file: ContextVar[Path | None] = ContextVar("_config_file", default=None)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="OCPP_CONSOLE_", extra="forbid")

    host: str = Field("0.0.0.0", description="Address the central system listens on.")
    port: int = Field(
        9000, ge=0, le=65535,
        description="WebSocket port chargers connect to: ws:// without --tls-cert, wss:// with it (0: any free port).",
    )
    plain_port: int | None = Field(
        None, ge=0, le=65535,
        description="With --tls-cert: also a plain ws:// port for chargers at profiles 0-1 (0: any free port).",
    )
    db: Path = Field(default_factory=default_db_path, description="SQLite database file.")
    heartbeat_interval: int = Field(
        300, ge=1, description="Heartbeat interval (s) sent to chargers in BootNotification.conf."
    )
    boot_retry_interval: int = Field(
        60, ge=1, description="Interval (s) after which a Pending or Rejected charger boots again."
    )
    unknown_chargers: Literal["pending", "accept", "reject"] = Field(
        "pending", description="Registration of a charger not yet known: await approval, accept or reject."
    )
    unknown_id_tags: Literal["reject", "accept"] = Field(
        "reject", description="Answer for an id tag not in the database: Invalid (reject) or Accepted (demos)."
    )
    call_timeout: float = Field(30.0, gt=0, description="Seconds to wait for a charger's answer to a command.")
    ping_interval: float = Field(
        30.0, ge=0, description="Seconds between WebSocket pings that detect dead connections (0: off)."
    )
    ping_timeout: float = Field(30.0, gt=0, description="Seconds to wait for a pong before dropping a connection.")
    max_frame_size: int = Field(
        8 * 1024 * 1024, ge=1024, description="Largest WebSocket frame accepted, in bytes."
    )
    message_log_max_rows: int = Field(
        200_000, ge=100, description="Frames kept in the message log; older ones are pruned (in bulk, once a tenth more has come)."
    )
    message_log_max_mb: int = Field(
        256, ge=1, description="Size of the message log, MiB of frames; older ones are pruned (rows or size, first bound reached)."
    )
    sqlite_synchronous: Literal["FULL", "NORMAL"] = Field(
        "FULL", description="SQLite synchronous mode: FULL survives power loss, NORMAL only a crash."
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="Log level on stderr.")

    # -- security and limits --
    security_profile: int = Field(
        0, ge=0, le=3,
        description="Minimum OCPP security profile of every charger (a charger's own stored profile may be "
        "higher): 0 none (a charger with a password must still give it), 1 Basic auth, 2 Basic auth over TLS, "
        "3 TLS client certificates.",
    )
    tls_cert: Path | None = Field(None, description="Server certificate (PEM) for wss://; needed for profiles 2-3.")
    tls_key: Path | None = Field(None, description="Private key (PEM) of the server certificate.")
    tls_ca: Path | None = Field(
        None, description="CA certificate(s) (PEM) the TLS listener trusts for charger certificates (profile 3); "
        "the TLS port then asks every charger for a certificate, optional at the TLS level (default: the operator CA).",
    )
    tls_client_org: str | None = Field(
        None, description="Profile 3: the O (organisation) charger certificates must carry."
    )
    # -- the operator CA (csms/ca.py): signs charger certificates (SignCertificate) --
    ca_cert: Path | None = Field(
        None, description="The site's own CA certificate (PEM) that signs charger certificates; "
        "default: the built-in operator CA, made on first use in <database dir>/ca/.",
    )
    ca_key: Path | None = Field(None, description="Private key (PEM, not encrypted) of --ca-cert.")
    certificate_days: int = Field(
        365, ge=1, le=3650, description="Days a charger certificate signed by the operator CA is valid."
    )
    max_connections: int = Field(10_000, ge=1, description="Simultaneous charger connections accepted.")
    handshake_timeout: float = Field(10.0, gt=0, description="Seconds a client has to complete the WebSocket upgrade.")
    max_calls_per_second: float = Field(
        50.0, gt=0,
        description="Calls per second one charger may send on average (bursts of four times that); "
        "more get a GenericError CALLERROR.",
    )
    lenient_enums: bool = Field(
        False, description="Accept enum values in the wrong case (e.g. 'charging'), logged as tolerated."
    )

    # -- tariff and wallets (amounts are exact decimals in the currency's major unit) --
    currency: str = Field("EUR", pattern=r"^[A-Z]{3}$", description="ISO 4217 currency code of all prices.")
    price_per_kwh: Decimal = Field(Decimal(0), ge=0, description="Energy price per kWh.")
    price_per_minute: Decimal = Field(Decimal(0), ge=0, description="Price per minute while charging.")
    idle_price_per_minute: Decimal = Field(
        Decimal(0), ge=0, description="Price per minute connected but not charging after the car is full."
    )
    idle_grace_minutes: Decimal = Field(
        Decimal(10), ge=0, description="Idle minutes free of charge after charging ends."
    )
    session_fee: Decimal = Field(Decimal(0), ge=0, description="Fixed fee per charging session.")
    tou_windows: str = Field(
        "", description="Time-of-use energy prices, e.g. '22:00-06:00=0.20,12:00-14:00=0.25' (local time)."
    )
    timezone: str | None = Field(
        None, description="IANA time zone of the time-of-use windows (default: this machine's)."
    )
    charger_tariffs: dict[str, dict[str, str]] = Field(
        default_factory=dict,
        description='Per-charger tariff overrides, e.g. {"DC-1": {"price_per_kwh": "0.59"}} (TOML: a table per charger).',
    )
    min_balance: Decimal = Field(
        Decimal(0), description="Authorize/StartTransaction answer Blocked below this wallet balance."
    )
    wallet: bool = Field(True, description="Check wallet balances (--no-wallet: never block on balance).")
    stop_on_empty_wallet: bool = Field(
        False,
        description="Stop a running session with RemoteStopTransaction when its cost so far reaches the "
        "spendable balance of its wallet (the balance above --min-balance); the order says why.",
    )
    # -- files the chargers fetch and upload (ocpp_console/files/) --
    files_dir: Path | None = Field(
        None, description="The firmware library and the chargers' uploads (default: 'files' beside the database).",
    )
    files_port: int | None = Field(
        None, ge=0, le=65535, description="HTTP port of the file server chargers fetch firmware from and upload "
        "diagnostics and logs to, each with a one-time URL (0: any free port; off unless given).",
    )
    ftp_port: int | None = Field(
        None, ge=0, le=65535, description="FTP port of the same file server, for chargers that only speak FTP "
        "(0: any free port; off unless given).",
    )
    ftp_passive_ports: str | None = Field(
        None, description="FTP passive-mode data ports as LOW-HIGH, e.g. 60000-60099: open them on the site's "
        "firewall beside --ftp-port (default: any free port, which only works without a firewall between).",
    )
    ftp_nat_address: str | None = Field(
        None, description="The address FTP passive replies give chargers that reach this machine through NAT "
        "(the public address forwarded to it); default: the address the charger connected to.",
    )
    files_any_address: bool = Field(
        False, description="A charger's one-time file URL works from any address (default: only from the address "
        "the charger connects from; turn this on where its transfers leave by another address).",
    )
    # -- load management (csms/load.py): the sessions share the grid connection --
    site_limit_kw: float | None = Field(
        None, gt=0, description="The site's grid connection in kW: running sessions share it (a TxProfile each), "
        "never over it; off unless this or --site-limit-amps is given.",
    )
    site_limit_amps: float | None = Field(
        None, gt=0, description="The grid connection in amps per phase, instead of --site-limit-kw "
        "(kW = amps x --site-voltage x --site-phases).",
    )
    site_voltage: float = Field(230.0, gt=0, description="Phase voltage of the site (limits and minimums in amps).")
    site_phases: Literal[1, 3] = Field(3, description="Phases of the site's connection and of its chargers.")
    load_policy: Literal["equal", "priority"] = Field(
        "equal", description="How sessions share the limit: equally, or higher priority first (the id tag's, "
        "else the charger's; see `chargers add --priority`, `tags add --priority`).",
    )
    load_rotation_minutes: float = Field(
        15.0, gt=0, description="When the limit cannot give every session its minimum (6 A per phase), the "
        "paused ones take turns: a session that has charged this long gives its place to the one waiting longest.",
    )
    charger_max_kw: float = Field(
        22.0, gt=0, description="The maximum of a charger that has none of its own (its max_power_w).",
    )
    load_lease_seconds: int = Field(
        300, ge=10, le=86_400, description="A share holds this long on the charger unless renewed (at half of it): "
        "if the central system stops, the chargers fall back to their failsafe default, the limit divided by the "
        "site's connectors.",
    )
    stale_transaction_grace: float = Field(
        300.0, gt=0,
        description="Seconds a rebooted charger has to send the StopTransaction of a session that started "
        "before the boot, once it reports that connector Available or Preparing; then the transaction is "
        "closed with its last meter value (closed-after-reboot).",
    )

    # -- local HTTP API --
    api_port: int | None = Field(
        None, ge=0, le=65535, description="Serve the HTTP API on this port (0: any free port; default: no API)."
    )
    api_host: str = Field(
        "127.0.0.1", description="Address the HTTP API listens on; anything but loopback needs --api-token."
    )
    api_token: SecretStr | None = Field(
        None, description="Bearer token the HTTP API requires (Authorization: Bearer TOKEN)."
    )

    @field_validator("tou_windows")
    @classmethod
    def _check_windows(cls, value: str) -> str:
        from ocpp_console.csms.billing import Window

        for part in filter(None, (p.strip() for p in value.split(","))):
            Window.parse(part)
        return value

    @field_validator("charger_tariffs")
    @classmethod
    def _check_charger_tariffs(cls, value: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
        from decimal import InvalidOperation

        from ocpp_console.csms.billing import TARIFF_KEYS, Window

        for charger, override in value.items():
            for key, item in override.items():
                if key not in TARIFF_KEYS:
                    raise ValueError(f"{charger}: {key!r} is not a tariff setting ({', '.join(TARIFF_KEYS)})")
                if key.startswith(("price", "idle", "session")):
                    try:
                        Decimal(str(item))
                    except InvalidOperation:
                        raise ValueError(f"{charger}: {key} = {item!r} is not a number") from None
                if key == "tou_windows":
                    for part in filter(None, (p.strip() for p in str(item).split(","))):
                        Window.parse(part)
        return value

    @model_validator(mode="after")
    def _check_tls(self) -> Settings:
        if self.security_profile >= 2 and not (self.tls_cert and self.tls_key):
            raise ValueError(f"security profile {self.security_profile} needs --tls-cert and --tls-key")
        if bool(self.tls_cert) != bool(self.tls_key):
            raise ValueError("--tls-cert and --tls-key go together")
        if self.plain_port is not None:
            if not self.tls_cert:
                raise ValueError("--plain-port goes with --tls-cert: without TLS, --port is plain ws:// already")
            if self.security_profile >= 2:
                raise ValueError(
                    f"--plain-port serves profiles 0-1, but --security-profile {self.security_profile} refuses them all"
                )
            if self.plain_port == self.port and self.port != 0:
                raise ValueError(f"--plain-port and --port are both {self.port}")
        if self.api_port is not None and not is_loopback(self.api_host) and not self.api_token:
            raise ValueError(f"the HTTP API on {self.api_host} (not loopback) needs --api-token")
        return self

    @model_validator(mode="after")
    def _check_site_limit(self) -> Settings:
        if self.site_limit_kw is not None and self.site_limit_amps is not None:
            raise ValueError("give the site limit once: --site-limit-kw or --site-limit-amps")
        return self

    @property
    def files_path(self) -> Path:
        """Where the hosted files live: --files-dir, else 'files' beside the database."""
        return self.files_dir if self.files_dir is not None else self.db.parent / "files"

    @property
    def site_limit_w(self) -> float | None:
        """The grid connection in W, from kW or from amps per phase; None: no load management."""
        if self.site_limit_amps is not None:
            return self.site_limit_amps * self.site_voltage * self.site_phases
        return None if self.site_limit_kw is None else self.site_limit_kw * 1000

    @model_validator(mode="after")
    def _check_ca(self) -> Settings:
        if bool(self.ca_cert) != bool(self.ca_key):
            raise ValueError("--ca-cert and --ca-key go together")
        return self

    @field_validator("ftp_passive_ports")
    @classmethod
    def _check_passive_ports(cls, value: str | None) -> str | None:
        if value is not None:
            _port_range(value)
        return value

    @property
    def ftp_passive_range(self) -> range | None:
        """--ftp-passive-ports as a range (inclusive of HIGH)."""
        return _port_range(self.ftp_passive_ports) if self.ftp_passive_ports else None

    @field_validator("timezone")
    @classmethod
    def _check_timezone(cls, value: str | None) -> str | None:
        if value:
            from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"unknown time zone {value!r} (use an IANA name such as Europe/Berlin)") from None
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_file = _config_file.get() or default_config_path()
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls, toml_file=toml_file))


def load_settings(config: Path | None = None, **overrides: Any) -> Settings:
    """Settings from the TOML file (`config` or the default one), the environment, then `overrides`."""
    token = _config_file.set(config)
    try:
        return Settings(**overrides)
    finally:
        _config_file.reset(token)


def _port_range(value: str) -> range:
    """'60000-60099' (or one port) as range(60000, 60100)."""
    low, _, high = value.strip().partition("-")
    try:
        first, last = int(low), int(high or low)
    except ValueError:
        raise ValueError(f"not a port range LOW-HIGH: {value!r}") from None
    if not 1 <= first <= last <= 65535:
        raise ValueError(f"not a port range LOW-HIGH within 1-65535: {value!r}")
    return range(first, last + 1)
