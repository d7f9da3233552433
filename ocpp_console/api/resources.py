"""What the API returns for stored things (snake_case JSON), and what its manage calls change."""

from __future__ import annotations

from datetime import date, datetime, time, timezone
from typing import TYPE_CHECKING, Any

from ocpp.v16.enums import RegistrationStatus

from ocpp_console import provision
from ocpp_console.csms.billing import from_minor
from ocpp_console.csms.running import RunningTx, load_running
from ocpp_console.store.models import Row
from ocpp_console.timeutil import iso

# Never leave the site: a charger's `stored` row has `has_password` instead.
SECRET_COLUMNS = ("password_hash", "pending_password_hash")


def stored(row: Row) -> dict[str, Any]:
    """The stored row's columns as they are (`stored` in a charger or transaction): what a console
    attached over the API (site/remote.py) reads, exactly as the in-process one reads the store."""
    return {k: v for k, v in row.items() if k not in SECRET_COLUMNS}

if TYPE_CHECKING:
    from ocpp_console.csms.server import CentralSystem


def _money(minor: int | None, currency: str | None) -> str | None:
    return None if minor is None or currency is None else str(from_minor(minor, currency))


def _connector(row: Row) -> dict[str, Any]:
    return {
        "connector_id": row["connector_id"], "status": row["status"], "error_code": row["error_code"],
        "info": row["info"], "updated_at": row["updated_at"],
    }


def _charger(csms: CentralSystem, row: Row, connectors: list[Row]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "registration": row["registration"],
        "connected": row["id"] in csms.sessions,
        "vendor": row["vendor"],
        "model": row["model"],
        "serial": row["charge_point_serial"],
        "firmware_version": row["firmware_version"],
        "remote_address": row["remote_address"] if row["id"] in csms.sessions else None,
        "has_password": bool(row["password_hash"]),
        "security_profile": row["security_profile"],
        "max_kw": provision.kw(row["max_power_w"]),
        "priority": row["priority"],
        "note": row["note"],
        "first_seen": row["first_seen"],
        "last_seen": row["last_seen"],
        "last_boot": row["last_boot"],
        "connectors": [_connector(c) for c in connectors],
        "stored": stored(row),
    }


async def chargers(csms: CentralSystem) -> list[dict[str, Any]]:
    by_charger: dict[str, list[Row]] = {}
    for c in await csms.store.connectors():
        by_charger.setdefault(c["charger_id"], []).append(c)
    return [_charger(csms, row, by_charger.get(row["id"], [])) for row in await csms.store.chargers()]


async def charger(csms: CentralSystem, charger_id: str) -> dict[str, Any] | None:
    row = await csms.store.charger(charger_id)
    if row is None:
        return None
    return _charger(csms, row, await csms.store.connectors(charger_id))


def transaction(csms: CentralSystem, row: Row, live: RunningTx | None = None) -> dict[str, Any]:
    """A stored transaction; a running one (`live`, csms/running.py: the console's own read model)
    with its energy and cost so far and its latest power and SoC."""
    currency = row["currency"]
    energy_wh, cost = row["energy_wh"], _money(row["cost_total"], currency)
    if live is not None:
        energy_wh = int(live.energy_wh)
        if live.tariff is not None:
            currency = live.tariff.currency
            cost = _money(live.cost_so_far(), currency)
    return {
        "id": row["id"],
        "charger_id": row["charger_id"],
        "connector_id": row["connector_id"],
        "id_tag": row["id_tag"],
        "running": row["stopped_at"] is None,
        "meter_start": row["meter_start"],
        "meter_stop": row["meter_stop"],
        "energy_wh": energy_wh,
        "start_timestamp": row["start_timestamp"],
        "stop_timestamp": row["stop_timestamp"],
        "stop_reason": row["stop_reason"],
        "charging_seconds": row["charging_seconds"],
        "idle_seconds": row["idle_seconds"],
        "cost": cost,
        "currency": currency,
        "power_w": live.power_w if live is not None else None,
        "soc": live.soc if live is not None else None,
        "wallet_id_tag": row["wallet_id_tag"],
        "closed_by": row["closed_by"],
        "stop_note": row["stop_note"],
        "flags": [f for f in (row["flags"] or "").split(",") if f],
        "stored": stored(row),
    }


async def transactions(csms: CentralSystem, rows: list[Row]) -> list[dict[str, Any]]:
    """Transactions as the API returns them: the running ones with their live figures."""
    live = await load_running(csms.store, rows)
    return [transaction(csms, row, live.get(row["id"])) for row in rows]


def id_tag(csms: CentralSystem, row: Row) -> dict[str, Any]:
    currency = csms.settings.currency
    return {
        "id_tag": row["id_tag"],
        "status": row["status"],
        "expiry_date": row["expiry_date"],
        "parent_id_tag": row["parent_id_tag"],
        "balance": str(from_minor(row["balance"], currency)),
        "balance_minor": row["balance"],
        "currency": currency,
        "priority": row["priority"],
        "note": row["note"],
        **{k: row.get(k) for k in ("refused_status", "refused_reason", "refused_action", "refused_charger", "refused_at")},
    }


async def id_tags(csms: CentralSystem) -> list[dict[str, Any]]:
    return [id_tag(csms, row) for row in await csms.store.id_tags()]


def message(row: Row) -> dict[str, Any]:
    return {k: row[k] for k in ("id", "charger_id", "direction", "timestamp", "message_type", "unique_id", "action", "raw")}


def day_start(text: str | None, name: str) -> str | None:
    """`from`/`to` query values: a date (midnight UTC) or an ISO 8601 time, as a stored timestamp;
    ValueError saying which parameter is wrong."""

    if text is None:
        return None
    try:
        moment = datetime.combine(date.fromisoformat(text), time(), timezone.utc)
    except ValueError:
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"{name} must be a date (YYYY-MM-DD) or an ISO 8601 time") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
    return iso(moment)


async def put_id_tag(csms: CentralSystem, tag: str, body: dict[str, Any]) -> None:
    """Create or update an id tag from the API's body: absent keys keep their value, null clears."""
    def given(key: str) -> Any:
        return None if key not in body else ("" if body[key] is None else body[key])

    await provision.add_or_update_tag(
        csms.store, tag, status=body.get("status"), expiry=given("expiry_date"), parent=given("parent_id_tag"),
        balance=body.get("balance"), note=given("note"), currency=csms.settings.currency,
        priority=given("priority"),
    )


async def put_charger(csms: CentralSystem, charger_id: str, body: dict[str, Any]) -> None:
    """Provision (Accepted; a pending one connected is asked to boot again) or reject a charger.
    Its maximum and priority: absent keeps, null clears."""
    def given(key: str) -> Any:
        return None if key not in body else ("" if body[key] is None else body[key])

    await provision.add_charger(csms.store, charger_id, password=body.get("password"), note=body.get("note"),
                                security_profile=body.get("security_profile"), max_kw=given("max_kw"),
                                priority=given("priority"))
    if body.get("registration") == RegistrationStatus.rejected:
        await csms.commands.reject(charger_id)


async def set_password(csms: CentralSystem, charger_id: str, body: dict[str, Any]) -> None:
    await provision.set_password(csms.store, charger_id, body["password"])
