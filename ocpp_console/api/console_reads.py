"""What the console reads and writes beyond the basic resources: one endpoint per store read it
uses (named after the store method), the site's settings it shows, wallet movements, exports.

These answer stored rows as the store returns them (amounts in minor units of their currency,
as the console computes with them), so that a remote console reads exactly what the in-process
one does."""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from aiohttp import web

from ocpp_console import __version__
from ocpp_console.api.server import (
    STREAM_KEY,
    ApiError,
    _checked_body,
    _csms,
    _id_tag,
    _transaction_id,
    answered,
    reply,
)
from ocpp_console.csms import operations
from ocpp_console.csms.billing import from_minor, to_minor
from ocpp_console.export import export_to_text
from ocpp_console.store.models import StoreError
from ocpp_console.timeutil import iso

# The measurands the charger detail's charts read (charger_samples_since) when none is named.
CHART_MEASURANDS = ("Power.Active.Import", "Energy.Active.Import.Register", "SoC")
# Sub-resources of a charger, beside its operations (POST /api/chargers/{id}/{operation}).
CHARGER_PATHS = ("password", "configuration", "reservations", "charging-profiles", "samples", "install-operator-ca",
                 "diagnostics")


RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")


def _since(request: web.Request) -> str:
    """The required `since`: an RFC 3339 time with its zone, as a stored (UTC) timestamp."""
    text = request.query.get("since")
    if text is None:
        raise ApiError(400, "invalid_parameter", "since is required: an RFC 3339 time, e.g. 2026-11-25T08:00:00Z")
    try:
        if not RFC3339.match(text):
            raise ValueError
        moment = datetime.fromisoformat(text.upper().replace("Z", "+00:00"))
    except ValueError:
        raise ApiError(400, "invalid_parameter", f"since must be an RFC 3339 time with its zone, not {text!r}") from None
    return iso(moment)


async def _known_charger(request: web.Request) -> str:
    charger_id = request.match_info["charger_id"]
    if await _csms(request).store.charger(charger_id) is None:
        raise ApiError(404, "unknown_charger", f"no charger {charger_id!r}")
    return charger_id


async def _known_transaction(request: web.Request) -> int:
    transaction_id = _transaction_id(request)
    if await _csms(request).store.transaction(transaction_id) is None:
        raise ApiError(404, "unknown_transaction", f"no transaction {transaction_id}")
    return transaction_id


# -- per charger ---------------------------------------------------------------------------


async def connectors(request: web.Request) -> web.Response:
    return reply(await _csms(request).store.connectors(request.query.get("charger_id")))


async def configuration(request: web.Request) -> web.Response:
    return reply(await _csms(request).store.configuration(await _known_charger(request)))


async def reservations(request: web.Request) -> web.Response:
    return reply(await _csms(request).store.reservations(await _known_charger(request)))


async def charging_profiles(request: web.Request) -> web.Response:
    return reply(await _csms(request).store.charging_profiles(await _known_charger(request)))


async def charger_samples(request: web.Request) -> web.Response:
    charger_id = await _known_charger(request)
    since = _since(request)
    measurands = request.query.getall("measurand", []) or list(CHART_MEASURANDS)
    return reply(await _csms(request).store.charger_samples_since(charger_id, since, measurands))


# -- per transaction -----------------------------------------------------------------------


async def meter_values(request: web.Request) -> web.Response:
    return reply(await _csms(request).store.meter_values_for(await _known_transaction(request)))


async def ledger(request: web.Request) -> web.Response:
    return reply(await _csms(request).store.ledger_for_transaction(await _known_transaction(request)))


# -- the site ------------------------------------------------------------------------------


async def power_samples(request: web.Request) -> web.Response:
    since = _since(request)
    return reply(await _csms(request).store.power_samples_since(since))


async def energy_stopped(request: web.Request) -> web.Response:
    since = _since(request)
    return reply({"since": since, "energy_wh": await _csms(request).store.energy_stopped_since(since)})


async def revenue(request: web.Request) -> web.Response:
    since = _since(request)
    return reply({"since": since, "revenue": await _csms(request).store.revenue_since(since)})


async def site(request: web.Request) -> web.Response:
    """Which service this is and the settings the console shows or decides with."""
    csms = _csms(request)
    s = csms.settings
    record = csms.instance
    return reply({
        "version": __version__,
        "instance": None if record is None else {"pid": record.pid, "host": record.host, "started_at": record.started_at},
        "ocpp": {"host": s.host, "port": csms.port, "tls_port": csms.tls_port, "plain_port": csms.plain_port},
        "connected": sorted(c for c, session in csms.sessions.items() if not session.closing),
        "currency": s.currency,
        "wallet": s.wallet,
        "min_balance": str(s.min_balance),
        "stop_on_empty_wallet": s.stop_on_empty_wallet,
        "stale_transaction_grace": s.stale_transaction_grace,
        "events": {"epoch": request.app[STREAM_KEY].epoch, "seq": request.app[STREAM_KEY].seq},
    })


# -- writes the console makes --------------------------------------------------------------


async def wallet_movement(request: web.Request) -> web.Response:
    """A top-up or an adjustment of the wallet a tag spends (its fleet account's, if it has one)."""
    tag = _id_tag(request)
    body = await _checked_body(request, "WalletMovement")
    csms = _csms(request)
    if await csms.store.id_tag(tag) is None:
        raise ApiError(404, "unknown_id_tag", f"no id tag {tag!r}")
    currency = csms.settings.currency
    try:
        given = Decimal(body["amount"])
    except InvalidOperation:
        raise ApiError(400, "invalid_value", "amount must be a decimal number") from None
    amount = to_minor(given, currency)
    if from_minor(amount, currency) != given:
        raise ApiError(400, "invalid_value", f"amount {given} has more decimals than {currency} has")
    if body["kind"] == "topup" and amount <= 0:
        raise ApiError(400, "invalid_value", "a top-up adds money: use an adjustment to take some out")
    try:
        wallet, balance = await csms.store.wallet_movement(tag, amount, currency, body["kind"], body.get("reason"))
    except StoreError as exc:
        raise ApiError(409, "conflict", str(exc)) from None
    await csms.reload()  # as after any change through the API: consoles read the tags again
    return reply({"id_tag": tag, "wallet_id_tag": wallet, "kind": body["kind"],
                  "amount": str(from_minor(amount, currency)), "balance": str(from_minor(balance, currency)),
                  "currency": currency})



async def export(request: web.Request) -> web.Response:
    """The CSV the console's `e` writes: orders or the wallet ledger, by local days."""
    kind = request.match_info["kind"]
    if kind not in ("orders", "ledger"):
        raise ApiError(404, "unknown_export", f"no export {kind!r}: orders or ledger")
    days: list[date | None] = []
    for name in ("from", "to"):
        text = request.query.get(name)
        try:
            if text is not None and not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
                raise ValueError
            days.append(date.fromisoformat(text) if text is not None else None)
        except ValueError:
            raise ApiError(400, "invalid_parameter", f"{name} must be a date (YYYY-MM-DD)") from None
    csms = _csms(request)
    text, count = await export_to_text(csms.store, kind, days[0], days[1], csms.settings.currency)
    return web.Response(text=text, content_type="text/csv", charset="utf-8", headers={"X-Row-Count": str(count)})


async def install_operator_ca(request: web.Request) -> web.Response:
    """InstallCertificate with the site's own operator CA (which only the service holds)."""
    commands = _csms(request).commands
    return reply(await answered(_installed(commands, request.match_info["charger_id"])))


async def _installed(commands: Any, charger_id: str) -> dict[str, Any]:
    return operations.answer_payload(await commands.install_operator_ca(charger_id))


ROUTES = [
    web.get("/api/site", site),
    web.get("/api/connectors", connectors),
    web.get("/api/chargers/{charger_id}/configuration", configuration),
    web.get("/api/chargers/{charger_id}/reservations", reservations),
    web.get("/api/chargers/{charger_id}/charging-profiles", charging_profiles),
    web.get("/api/chargers/{charger_id}/samples", charger_samples),
    web.get("/api/transactions/{transaction_id}/meter-values", meter_values),
    web.get("/api/transactions/{transaction_id}/ledger", ledger),
    web.get("/api/power-samples", power_samples),
    web.get("/api/energy-stopped", energy_stopped),
    web.get("/api/revenue", revenue),
    web.post("/api/id-tags/{id_tag}/wallet", wallet_movement),
    web.get("/api/export/{kind}", export),
    web.post("/api/chargers/{charger_id}/install-operator-ca", install_operator_ca),
]
