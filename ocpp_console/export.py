"""CSV exports of orders (finished transactions) and wallet movements."""

from __future__ import annotations

import csv
import io
import json
from datetime import date, datetime, time, timedelta
from typing import Any, TextIO

from ocpp_console.csms.billing import LINE_ITEMS, from_minor
from ocpp_console.store import Store
from ocpp_console.timeutil import iso

ORDER_COLUMNS = [
    "transaction_id", "charger", "connector", "id_tag", "start", "stop", "meter_start_wh", "meter_stop_wh",
    "energy_kwh", "charging_minutes", "idle_minutes", *(f"{item}_cost" for item in LINE_ITEMS), "total",
    "currency", "stop_reason", "wallet", "flags", "stop_note",
]
LEDGER_COLUMNS = ["id", "time", "wallet", "kind", "amount", "balance_after", "currency", "transaction_id", "reason"]


def day_bounds(first: date | None, last: date | None) -> tuple[str | None, str | None]:
    """[first 00:00, last+1 00:00) in local time, as UTC bounds for the store."""
    since = iso(datetime.combine(first, time()).astimezone()) if first else None
    until = iso(datetime.combine(last + timedelta(days=1), time()).astimezone()) if last else None
    return since, until


def _minutes(seconds: int | None) -> str:
    return "" if seconds is None else f"{seconds / 60:.2f}"


def order_row(tx: dict[str, Any], default_currency: str) -> dict[str, Any]:
    currency = tx["currency"] or default_currency
    items = json.loads(tx["cost_items"]) if tx["cost_items"] else {}
    return {
        "transaction_id": tx["id"],
        "charger": tx["charger_id"],
        "connector": tx["connector_id"],
        "id_tag": tx["id_tag"],
        "start": tx["start_timestamp"],
        "stop": tx["stop_timestamp"],
        "meter_start_wh": tx["meter_start"],
        "meter_stop_wh": tx["meter_stop"],
        "energy_kwh": f"{(tx['energy_wh'] or 0) / 1000:.3f}",
        "charging_minutes": _minutes(tx["charging_seconds"]),
        "idle_minutes": _minutes(tx["idle_seconds"]),
        **{f"{item}_cost": from_minor(items.get(item, 0), currency) for item in LINE_ITEMS},
        "total": from_minor(tx["cost_total"] or 0, currency),
        "currency": currency,
        "stop_reason": tx["stop_reason"] or "",
        "wallet": tx["wallet_id_tag"] or "",
        "flags": tx["flags"],
        "stop_note": tx["stop_note"] or "",
    }


async def write_orders(store: Store, out: TextIO, first: date | None, last: date | None, currency: str) -> int:
    since, until = day_bounds(first, last)
    writer = csv.DictWriter(out, ORDER_COLUMNS)
    writer.writeheader()
    rows = await store.orders(since, until)
    for tx in rows:
        writer.writerow(order_row(tx, currency))
    return len(rows)


async def write_ledger(store: Store, out: TextIO, first: date | None, last: date | None) -> int:
    since, until = day_bounds(first, last)
    writer = csv.DictWriter(out, LEDGER_COLUMNS)
    writer.writeheader()
    rows = await store.ledger(since=since, until=until)
    for row in rows:
        writer.writerow(
            {
                "id": row["id"],
                "time": row["created_at"],
                "wallet": row["id_tag"],
                "kind": row["kind"],
                "amount": from_minor(row["amount"], row["currency"]),
                "balance_after": from_minor(row["balance_after"], row["currency"]),
                "currency": row["currency"],
                "transaction_id": row["transaction_id"] or "",
                "reason": row["reason"] or "",
            }
        )
    return len(rows)


async def export_to_text(store: Store, kind: str, first: date | None, last: date | None, currency: str) -> tuple[str, int]:
    buffer = io.StringIO(newline="")
    count = await (write_orders(store, buffer, first, last, currency) if kind == "orders"
                   else write_ledger(store, buffer, first, last))
    return buffer.getvalue(), count
