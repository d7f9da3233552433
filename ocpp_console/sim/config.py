"""The charger's configuration keys (OCPP 1.6 chapter 9), with read-only and write-only flags."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

from ocpp.v16.enums import ConfigurationKey as Key
from ocpp.v16.enums import ConfigurationStatus, Measurand


class Kind(Enum):
    INT = "int"
    BOOL = "bool"
    MEASURANDS = "measurands"  # comma-separated list of Measurand values
    TEXT = "text"
    SECRET = "secret"  # AuthorizationKey: 16-20 bytes, written as text or up to 40 hex digits


# The profiles this simulator implements (SupportedFeatureProfiles is read-only).
FEATURE_PROFILES = "Core,FirmwareManagement,LocalAuthListManagement,Reservation,SmartCharging,RemoteTrigger"
DEFAULT_SAMPLED = ",".join(
    m.value
    for m in (
        Measurand.energy_active_import_register,
        Measurand.power_active_import,
        Measurand.current_import,
        Measurand.voltage,
        Measurand.soc,
    )
)
# The measurands this simulator can report; others are refused by ChangeConfiguration.
MEASURANDS = frozenset(
    m.value
    for m in (
        Measurand.energy_active_import_register,
        Measurand.power_active_import,
        Measurand.power_offered,
        Measurand.current_import,
        Measurand.current_offered,
        Measurand.voltage,
        Measurand.frequency,
        Measurand.temperature,
        Measurand.soc,
    )
)
MAX_VALUE_LENGTH = 500  # KeyValue.value is CiString500


@dataclass(slots=True)
class Entry:
    key: str
    value: str
    kind: Kind
    readonly: bool = False
    write_only: bool = False  # never reported by GetConfiguration
    max_items: int | None = None  # for lists: the key holding the maximum length


def _defaults(connectors: int) -> list[Entry]:
    e = Entry
    return [
        e(Key.heartbeat_interval, "300", Kind.INT),
        e(Key.connection_time_out, "60", Kind.INT),
        e(Key.meter_value_sample_interval, "60", Kind.INT),
        e(Key.meter_values_sampled_data, DEFAULT_SAMPLED, Kind.MEASURANDS, max_items=10),
        e(Key.meter_values_sampled_data_max_length, "10", Kind.INT, readonly=True),
        e(Key.meter_values_aligned_data, Measurand.energy_active_import_register.value, Kind.MEASURANDS, max_items=10),
        e(Key.meter_values_aligned_data_max_length, "10", Kind.INT, readonly=True),
        e(Key.clock_aligned_data_interval, "0", Kind.INT),
        e(Key.stop_txn_sampled_data, Measurand.energy_active_import_register.value, Kind.MEASURANDS, max_items=10),
        e(Key.stop_txn_sampled_data_max_length, "10", Kind.INT, readonly=True),
        e(Key.stop_txn_aligned_data, "", Kind.MEASURANDS, max_items=10),
        e(Key.stop_txn_aligned_data_max_length, "10", Kind.INT, readonly=True),
        e(Key.authorize_remote_tx_requests, "true", Kind.BOOL),
        e(Key.local_authorize_offline, "true", Kind.BOOL),
        e(Key.local_pre_authorize, "false", Kind.BOOL),
        e(Key.allow_offline_tx_for_unknown_id, "false", Kind.BOOL),
        e(Key.authorization_cache_enabled, "true", Kind.BOOL),
        e(Key.local_auth_list_enabled, "true", Kind.BOOL),
        e(Key.local_auth_list_max_length, "100", Kind.INT, readonly=True),
        e(Key.send_local_list_max_length, "50", Kind.INT, readonly=True),
        e(Key.number_of_connectors, str(connectors), Kind.INT, readonly=True),
        e(Key.supported_feature_profiles, FEATURE_PROFILES, Kind.TEXT, readonly=True),
        e(Key.charge_profile_max_stack_level, "10", Kind.INT, readonly=True),
        e(Key.charging_schedule_allowed_charging_rate_unit, "Current,Power", Kind.TEXT, readonly=True),
        e(Key.charging_schedule_max_periods, "24", Kind.INT, readonly=True),
        e(Key.max_charging_profiles_installed, "20", Kind.INT, readonly=True),
        e(Key.reserve_connector_zero_supported, "false", Kind.BOOL, readonly=True),
        e(Key.stop_transaction_on_ev_side_disconnect, "true", Kind.BOOL),
        e(Key.stop_transaction_on_invalid_id, "true", Kind.BOOL),
        e(Key.unlock_connector_on_ev_side_disconnect, "true", Kind.BOOL),
        e(Key.get_configuration_max_keys, "100", Kind.INT, readonly=True),
        e(Key.reset_retries, "3", Kind.INT),
        e(Key.transaction_message_attempts, "3", Kind.INT),
        e(Key.transaction_message_retry_interval, "30", Kind.INT),
        e(Key.minimum_status_duration, "0", Kind.INT),
        e(Key.web_socket_ping_interval, "60", Kind.INT),
        e(Key.authorization_key, "", Kind.SECRET, write_only=True),
        e(Key.cpo_name, "", Kind.TEXT),  # security whitepaper: the O of the charger's certificate
    ]


def _valid(entry: Entry, value: str, lengths: Mapping[str, Entry]) -> bool:
    if len(value) > MAX_VALUE_LENGTH:
        return False
    if entry.kind is Kind.INT:
        return value.strip().isdigit()
    if entry.kind is Kind.BOOL:
        return value.strip().lower() in ("true", "false")
    if entry.kind is Kind.MEASURANDS:
        items = [v.strip() for v in value.split(",") if v.strip()]
        limit_key = f"{entry.key}MaxLength"
        limit = int(lengths[limit_key].value) if limit_key in lengths else len(items)
        return all(v in MEASURANDS for v in items) and len(items) <= limit
    if entry.kind is Kind.SECRET:
        # Security whitepaper: 16-20 bytes, plain or as up to 40 hexadecimal digits.
        return 16 <= len(value) <= 40
    return True


class Configuration:
    """Key/value store answering GetConfiguration and ChangeConfiguration as a charger does."""

    def __init__(self, connectors: int, overrides: Mapping[str, str] | None = None) -> None:
        self._entries: dict[str, Entry] = {}
        for entry in _defaults(connectors):
            entry.key = str(entry.key)  # plain text in answers, not the enum
            self._entries[entry.key] = entry
        for key, value in (overrides or {}).items():
            if key not in self._entries:
                raise KeyError(f"unknown configuration key {key!r}")
            self._entries[key].value = str(value)

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def keys(self) -> list[str]:
        return list(self._entries)

    def get(self, key: str) -> str:
        return self._entries[key].value

    def get_int(self, key: str) -> int:
        try:
            return int(self._entries[key].value)
        except ValueError:
            return 0

    def get_bool(self, key: str) -> bool:
        return self._entries[key].value.strip().lower() == "true"

    def get_list(self, key: str) -> list[str]:
        return [v.strip() for v in self._entries[key].value.split(",") if v.strip()]

    def set(self, key: str, value: str) -> None:
        """Set a value from inside the charger (read-only keys included), e.g. the boot's interval."""
        self._entries[key].value = value

    def change(self, key: str, value: str) -> ConfigurationStatus:
        """ChangeConfiguration: NotSupported for unknown keys, Rejected for read-only or bad values."""
        entry = self._entries.get(key)
        if entry is None:
            return ConfigurationStatus.not_supported
        if entry.readonly or not _valid(entry, value, self._entries):
            return ConfigurationStatus.rejected
        if entry.kind is Kind.BOOL:
            value = value.strip().lower()
        elif entry.kind is Kind.INT:
            value = str(int(value))
        elif entry.kind is Kind.MEASURANDS:
            value = ",".join(v.strip() for v in value.split(",") if v.strip())
        entry.value = value
        return ConfigurationStatus.accepted

    def report(self, keys: Iterable[str] | None = None) -> tuple[list[dict[str, Any]], list[str]]:
        """GetConfiguration: (configurationKey entries, unknownKey). Write-only keys never appear."""
        wanted = list(keys) if keys else [k for k, e in self._entries.items() if not e.write_only]
        known: list[dict[str, Any]] = []
        unknown: list[str] = []
        for key in wanted:
            entry = self._entries.get(key)
            if entry is None:
                unknown.append(key)
            elif not entry.write_only:
                known.append({"key": entry.key, "readonly": entry.readonly, "value": entry.value})
        return known, unknown
