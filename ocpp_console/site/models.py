"""What the console computes with, beside the rows: pure helpers and value types shared with the
central system (money, tariffs, a running transaction's live figures, staleness, errors).

They are the site's vocabulary, not its machinery: the console takes them from here, never from
the central system's modules, so that a remote console computes exactly what the site computes.
"""

from __future__ import annotations

from typing import Any

from ocpp_console.csms.billing import LINE_ITEMS, Tariff, format_money, from_minor, to_minor
from ocpp_console.csms.errors import CommandError, offline_message, unknown_message
from ocpp_console.csms.running import RunningTx
from ocpp_console.csms.security import PasswordError, check_password
from ocpp_console.csms.transactions import is_stale
from ocpp_console.csms.wallet_guard import WALLET_EMPTY

__all__ = [
    "LINE_ITEMS",
    "WALLET_EMPTY",
    "CommandError",
    "PasswordError",
    "RunningTx",
    "Tariff",
    "check_password",
    "format_money",
    "from_minor",
    "is_stale",
    "offline_message",
    "running_row",
    "running_tx",
    "to_minor",
    "unknown_message",
]


def running_row(tx: RunningTx) -> dict[str, Any]:
    """A running transaction as JSON-shaped values (its tariff snapshot as the stored JSON text)."""
    return {
        "id": tx.id, "charger_id": tx.charger_id, "connector_id": tx.connector_id, "id_tag": tx.id_tag,
        "meter_start": tx.meter_start, "started": tx.started, "energy_wh": tx.energy_wh, "power_w": tx.power_w,
        "soc": tx.soc, "tariff": tx.tariff.to_json() if tx.tariff is not None else None, "received": tx.received,
    }


def running_tx(row: dict[str, Any]) -> RunningTx:
    """The console's live model of a running transaction from `running_row`'s values."""
    return RunningTx(
        row["id"], row["charger_id"], row["connector_id"], row["id_tag"], row["meter_start"], row["started"],
        energy_wh=row["energy_wh"], power_w=row["power_w"], soc=row["soc"],
        tariff=Tariff.from_json(row["tariff"]) if row["tariff"] else None, received=row["received"],
    )
