"""The running instance's record in its database: who runs the central system and with what settings.

The console or `serve` records its effective settings (flags, environment and TOML file merged,
secrets left out), its process id and start time when it starts, and its stop when it stops. The
shell reads them, so that `tariffs list` shows what the running instance bills rather than what
this shell's own flags and environment would say. A process that died without saying so is
recognised by its process id (on the same machine).
"""

from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import TypeAdapter, ValidationError

from ocpp_console.csms.billing import TARIFF_KEYS

if TYPE_CHECKING:
    from ocpp_console.settings import Settings
    from ocpp_console.store import Store

SECRET_SETTINGS = frozenset({"api_token"})
# What billing reads from the settings: the tariff keys, per-charger overrides and the wallet rules.
BILLING_SETTINGS = (*TARIFF_KEYS, "charger_tariffs", "min_balance", "wallet", "stop_on_empty_wallet")


def host_name() -> str:
    return socket.gethostname()


def settings_json(settings: Settings) -> str:
    return json.dumps(settings.model_dump(mode="json", exclude=set(SECRET_SETTINGS)), sort_keys=True)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process: it exists
    except OSError:
        return False
    return True


@dataclass(frozen=True)
class Instance:
    pid: int
    host: str
    started_at: str
    settings: dict[str, Any]

    def describe(self) -> str:
        return f"pid {self.pid} on {self.host}, started {self.started_at}"

    def to_json(self) -> dict[str, Any]:
        return {"pid": self.pid, "host": self.host, "started_at": self.started_at}


async def running_instance(store: Store) -> Instance | None:
    """The instance running on this database, if any: recorded, not stopped, and (on this machine)
    its process still alive."""
    row = await store.instance()
    if row is None or row["stopped_at"] is not None:
        return None
    if row["host"] == host_name() and not pid_alive(row["pid"]):
        return None  # it died without recording its stop (killed, crashed)
    try:
        values = json.loads(row["settings"])
    except ValueError:
        values = {}
    return Instance(row["pid"], row["host"], row["started_at"], values if isinstance(values, dict) else {})


def billing_settings(shell: Settings, instance: Instance | None) -> Settings:
    """The settings billing runs with: the instance's billing keys over this shell's."""
    if instance is None:
        return shell
    from ocpp_console.settings import Settings

    update: dict[str, Any] = {}
    for name in BILLING_SETTINGS:
        if name in instance.settings:
            try:
                update[name] = TypeAdapter(Settings.model_fields[name].annotation).validate_python(
                    instance.settings[name])
            except ValidationError:
                continue  # written by another version: this shell's value is the best guess left
    return shell.model_copy(update=update)
