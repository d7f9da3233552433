"""A site in another process: a `Site` over its HTTP API and event stream (`ocpp-console attach`).

Reads and commands are HTTP requests (api/console_reads.py names each after the store read it
answers); events come from `GET /api/events`, decoded into the same dataclasses the central
system publishes. A lost stream is reconnected with back-off and resumed where it stopped; when
the service cannot resume it (it restarted, or we fell too far behind) the console is told to
read the site again, by an ExternalChange as when another process changes the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from datetime import date
from decimal import Decimal
from typing import Any
from urllib.parse import quote

import aiohttp
import orjson

from ocpp_console.csms import errors
from ocpp_console.csms.event_json import UnknownEvent, from_dict
from ocpp_console.csms.operations import find
from ocpp_console.site.events import Event, ExternalChange, SiteResynced
from ocpp_console.site.interface import Row, Site, SiteError, SiteInfo, Unsubscribe
from ocpp_console.site.models import from_minor, to_minor

log = logging.getLogger("ocpp_console.site.remote")

# The API's error codes for an operation that got no normal answer, as the console's own errors.
COMMAND_ERRORS: dict[str, type[errors.CommandError]] = {
    "invalid_payload": errors.InvalidCommand, "offline": errors.ChargerOffline,
    "unknown_charger": errors.UnknownCharger, "timeout": errors.CommandTimeout,
    "callerror": errors.CallErrorReceived, "invalid_answer": errors.InvalidAnswer,
}
RETRY_FIRST, RETRY_MOST = 0.2, 5.0  # seconds between reconnection attempts: doubling up to this


class Unreachable(errors.CommandError):
    """The API did not answer (a command the console sent, while the link is down)."""

    outcome = "unreachable"


def _command_error(status: int, body: dict[str, Any]) -> errors.CommandError:
    kind = COMMAND_ERRORS.get(body.get("error", ""), errors.CommandError)
    exc = kind.__new__(kind)
    Exception.__init__(exc, body.get("message", f"HTTP {status}"))  # the API's words, as the site said them
    if isinstance(exc, errors.CallErrorReceived):
        exc.code, exc.description, exc.details = body.get("code", ""), body.get("message", ""), body.get("details")
    return exc


class RemoteSite(Site):
    owns_chargers = False  # the chargers stay with the service when this console quits

    def __init__(self, url: str, token: str | None, *, timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self.token = token
        self.timeout = timeout
        self._http: aiohttp.ClientSession | None = None
        self._info: SiteInfo | None = None
        self._subscribers: list[Callable[[Event], None]] = []
        self._link_watchers: list[Callable[[], None]] = []
        self._reader: asyncio.Task[None] | None = None
        self._hello = asyncio.Event()
        self.epoch: str | None = None
        self.seq: int | None = None
        self.connected_now = False  # the event stream is up (the header says so)
        self.reconnects = 0

    # -- lifecycle -----------------------------------------------------------------

    async def start(self) -> None:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        self._http = aiohttp.ClientSession(headers=headers, timeout=aiohttp.ClientTimeout(total=self.timeout))
        try:
            site = await self._get("/api/site")
        except SiteError:
            await self._http.close()
            raise
        host = site["ocpp"]["host"]
        host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
        self._info = SiteInfo(currency=site["currency"], wallet=site["wallet"], min_balance=site["min_balance"],
                              charger_url=f"ws://{host}:{site['ocpp']['port']}/<chargePointId>", api_url=self.url)
        self._reader = asyncio.create_task(self._follow(), name="remote-site-events")
        # Events from now on reach the console before it loads: nothing falls between the two.
        hello = asyncio.ensure_future(self._hello.wait())
        await asyncio.wait([self._reader, hello], timeout=self.timeout, return_when=asyncio.FIRST_COMPLETED)
        hello.cancel()
        if not self._hello.is_set():
            await self.stop()
            raise SiteError(f"cannot follow the event stream at {self.url}/api/events")

    async def stop(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader
            self._reader = None
        if self._http is not None:
            await self._http.close()
            self._http = None

    def info(self) -> SiteInfo:
        assert self._info is not None, "start() first"
        return self._info

    def link_text(self) -> str | None:
        return f"attached to {self.url}" if self.connected_now else f"reconnecting to {self.url}…"

    def watch_link(self, callback: Callable[[], None]) -> None:
        self._link_watchers.append(callback)

    # -- events --------------------------------------------------------------------

    def subscribe(self, callback: Callable[[Event], None]) -> Unsubscribe:
        self._subscribers.append(callback)
        return lambda: self._subscribers.remove(callback) if callback in self._subscribers else None

    def _publish(self, event: Event) -> None:
        for callback in list(self._subscribers):
            try:
                callback(event)
            except Exception:  # one subscriber's bug must not stop the stream for the others
                log.exception("event subscriber failed on %s", type(event).__name__)

    def _set_link(self, up: bool) -> None:
        if up != self.connected_now:
            self.connected_now = up
            for watcher in list(self._link_watchers):
                watcher()

    async def _follow(self) -> None:
        """Read the stream for good: reconnect with back-off, resume from the last number seen."""
        assert self._http is not None
        ws_url = "ws" + self.url.removeprefix("http") + "/api/events"
        delay = RETRY_FIRST
        while True:
            params = {} if self.seq is None else {"since": str(self.seq), "epoch": self.epoch or ""}
            try:
                async with self._http.ws_connect(ws_url, params=params, heartbeat=30.0, timeout=aiohttp.ClientWSTimeout(ws_close=5)) as ws:
                    async for msg in ws:
                        if msg.type != aiohttp.WSMsgType.TEXT:
                            break
                        for line in msg.data.splitlines():
                            self._handle(orjson.loads(line))  # thousands a second at a busy site
                        delay = RETRY_FIRST
            except asyncio.CancelledError:
                raise
            except (aiohttp.ClientError, OSError, TimeoutError, ValueError) as exc:
                log.info("event stream at %s: %s", ws_url, exc)
            self._set_link(False)
            await asyncio.sleep(delay)
            delay = min(delay * 2, RETRY_MOST)
            self.reconnects += 1

    def _handle(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == "hello":
            resumed = self.seq is not None
            self.epoch = message["epoch"]
            if self.seq is None:
                self.seq = message["seq"]
            self._hello.set()
            self._set_link(True)
            if resumed:  # nothing was lost (else a resync follows), but what we read meanwhile is old
                self._publish(ExternalChange("", 0))
        elif kind == "resync":
            self.epoch, self.seq = message["epoch"], message["seq"]
            self._publish(SiteResynced(""))  # events were lost: the console reads the whole site again
        elif kind == "event":
            self.seq = message["seq"]
            try:
                event = from_dict(message["event"])
            except UnknownEvent:
                return  # a newer service's event this console does not know
            self._publish(event)

    # -- HTTP ----------------------------------------------------------------------

    async def _request(self, method: str, path: str, *, params: dict[str, Any] | None = None,
                       body: Any = None, missing: bool = False, text: bool = False) -> Any:
        if self._http is None:
            raise SiteError(f"not attached to {self.url}")
        try:
            async with self._http.request(method, self.url + path, params=params,
                                          json=body if method != "GET" else None) as response:
                if response.status == 401:
                    raise SiteError(f"the API at {self.url} refused the token (401): give the one in the token "
                                    f"file beside its database (--api-token or OCPP_CONSOLE_API_TOKEN)")
                if missing and response.status == 404:
                    return None
                if text and response.status == 200:
                    return await response.text(), int(response.headers.get("X-Row-Count", "0"))
                answer = await response.json(content_type=None) if response.status != 204 else None
                if response.status >= 400:
                    raise ApiRefused(response.status, answer if isinstance(answer, dict) else {})
                return answer
        except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, OSError, TimeoutError) as exc:
            raise SiteError(f"cannot reach {self.url}: {exc or type(exc).__name__}") from None

    async def _get(self, path: str, **params: Any) -> Any:
        return await self._request("GET", path, params={k: v for k, v in params.items() if v is not None} or None)

    async def _command(self, method: str, path: str, body: Any = None) -> Any:
        """A command: its failures as CommandError (what the console's actions handle)."""
        try:
            return await self._request(method, path, body=body)
        except ApiRefused as exc:
            raise _command_error(exc.status, exc.body) from None
        except SiteError as exc:
            raise Unreachable(str(exc)) from None

    async def _change(self, method: str, path: str, body: Any = None) -> Any:
        """An operator change: a refusal as SiteError with the API's message."""
        try:
            return await self._request(method, path, body=body)
        except ApiRefused as exc:
            raise SiteError(exc.body.get("message", f"HTTP {exc.status}")) from None

    # -- read models ---------------------------------------------------------------

    async def chargers(self) -> list[Row]:
        return await self._get("/api/chargers")

    async def connected(self) -> set[str]:
        return set((await self._get("/api/site"))["connected"])

    async def charger(self, charger_id: str) -> Row | None:
        row = await self._request("GET", f"/api/chargers/{_q(charger_id)}", missing=True)
        if row is None:
            return None
        return {**row["stored"], "has_password": row["has_password"], "connected": row["connected"]}

    async def connectors(self, charger_id: str | None = None) -> list[Row]:
        return await self._get("/api/connectors", charger_id=charger_id)

    async def _per_charger(self, charger_id: str, what: str, **params: Any) -> list[Row]:
        try:
            return await self._request("GET", f"/api/chargers/{_q(charger_id)}/{what}", params=params or None)
        except ApiRefused as exc:
            if exc.status == 404:
                return []  # as the store answers for a charger it does not have
            raise SiteError(exc.body.get("message", f"HTTP {exc.status}")) from None

    async def configuration(self, charger_id: str) -> list[Row]:
        return await self._per_charger(charger_id, "configuration")

    async def reservations(self, charger_id: str) -> list[Row]:
        return await self._per_charger(charger_id, "reservations")

    async def charging_profiles(self, charger_id: str) -> list[Row]:
        return await self._per_charger(charger_id, "charging-profiles")

    async def charger_samples_since(self, charger_id: str, since: str, measurands: Sequence[str]) -> list[Row]:
        if not measurands:
            return []
        return await self._per_charger(charger_id, "samples", since=since, measurand=list(measurands))

    async def running(self) -> list[Row]:
        rows = await self._get("/api/transactions", running="true", limit=10_000)
        return [{
            "id": r["id"], "charger_id": r["charger_id"], "connector_id": r["connector_id"], "id_tag": r["id_tag"],
            "meter_start": r["meter_start"], "started": r["start_timestamp"], "energy_wh": float(r["energy_wh"] or 0),
            "power_w": r["power_w"], "soc": r["soc"], "tariff": r["stored"].get("tariff"),
            "received": r["stored"].get("started_at"),
        } for r in rows]

    async def transaction(self, transaction_id: int) -> Row | None:
        row = await self._request("GET", f"/api/transactions/{transaction_id}", missing=True)
        return None if row is None else row["stored"]

    async def transactions(self, running: bool | None = None, limit: int = 500) -> list[Row]:
        state = None if running is None else ("true" if running else "false")
        return [row["stored"] for row in await self._get("/api/transactions", running=state, limit=limit)]

    async def _per_transaction(self, transaction_id: int, what: str) -> list[Row]:
        rows = await self._request("GET", f"/api/transactions/{transaction_id}/{what}", missing=True)
        return rows or []

    async def meter_values_for(self, transaction_id: int) -> list[Row]:
        return await self._per_transaction(transaction_id, "meter-values")

    async def ledger_for_transaction(self, transaction_id: int) -> list[Row]:
        return await self._per_transaction(transaction_id, "ledger")

    async def energy_stopped_since(self, since: str) -> float:
        return (await self._get("/api/energy-stopped", since=since))["energy_wh"]

    async def revenue_since(self, since: str) -> dict[str, int]:
        return (await self._get("/api/revenue", since=since))["revenue"]

    async def power_samples_since(self, since: str) -> list[Row]:
        return await self._get("/api/power-samples", since=since)

    async def site_load(self, history_since: str | None = None) -> Row:
        if history_since is None:
            return await self._get("/api/site/load")
        if history_since:
            return await self._get("/api/site/load", since=history_since)
        return await self._get("/api/site/load", history="true")

    async def id_tags(self) -> list[Row]:
        return [{**row, "balance": row["balance_minor"]} for row in await self._get("/api/id-tags")]

    async def message_log(self, limit: int = 1000) -> list[Row]:
        return await self._get("/api/messages", limit=min(limit, 10_000))

    # -- commands ------------------------------------------------------------------

    async def operate(self, charger_id: str, action: str, payload: dict[str, Any]) -> dict[str, Any]:
        operation = find(action)
        if operation is None:
            raise errors.InvalidCommand(f"no operation {action!r}")
        return await self._command("POST", f"/api/chargers/{_q(charger_id)}/{operation.path_name}", payload)

    async def firmware_images(self) -> list[Row]:
        return await self._get("/api/firmware")

    async def add_firmware(self, path: str, name: str | None = None) -> Row:
        return await self._change("POST", "/api/firmware", {"path": path, **({"name": name} if name else {})})

    async def received_files(self, charger_id: str) -> list[Row]:
        return await self._request("GET", f"/api/chargers/{_q(charger_id)}/diagnostics", missing=True) or []

    async def received_file(self, charger_id: str, name: str) -> bytes:
        if self._http is None:
            raise SiteError(f"not attached to {self.url}")
        try:
            async with self._http.get(f"{self.url}/api/chargers/{_q(charger_id)}/diagnostics/{_q(name)}") as response:
                if response.status != 200:
                    raise SiteError(f"{charger_id} uploaded no file {name!r}")
                return await response.read()
        except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, OSError, TimeoutError) as exc:
            raise SiteError(f"cannot reach {self.url}: {exc or type(exc).__name__}") from None

    async def install_operator_ca(self, charger_id: str) -> dict[str, Any]:
        return await self._command("POST", f"/api/chargers/{_q(charger_id)}/install-operator-ca", {})

    async def approve(self, charger_id: str) -> None:
        await self._command("PUT", f"/api/chargers/{_q(charger_id)}", {"registration": "Accepted"})

    async def reject(self, charger_id: str) -> None:
        await self._command("PUT", f"/api/chargers/{_q(charger_id)}", {"registration": "Rejected"})

    async def set_password(self, charger_id: str, password: str | None) -> None:
        await self._change("PUT", f"/api/chargers/{_q(charger_id)}/password", {"password": password})

    async def save_id_tag(self, id_tag: str, status: str, expiry_date: str | None, parent_id_tag: str | None,
                          note: str | None) -> None:
        await self._change("PUT", f"/api/id-tags/{_q(id_tag)}", {
            "status": status, "expiry_date": expiry_date, "parent_id_tag": parent_id_tag, "note": note})

    async def wallet_movement(self, id_tag: str, amount: int, kind: str, reason: str) -> tuple[str, int]:
        currency = self.info().currency
        answer = await self._change("POST", f"/api/id-tags/{_q(id_tag)}/wallet",
                                    {"amount": str(from_minor(amount, currency)), "kind": kind, "reason": reason})
        return answer["wallet_id_tag"], to_minor(Decimal(answer["balance"]), currency)

    async def close_transaction(self, transaction_id: int) -> Row:
        row = await self._change("POST", f"/api/transactions/{transaction_id}/close", {})
        stored = row["stored"]
        return {"transaction_id": row["id"], "charger_id": row["charger_id"], "connector_id": row["connector_id"],
                "energy_wh": row["energy_wh"], "cost_total": stored.get("cost_total"), "currency": row["currency"]}

    async def set_site_limit(self, limit_kw: float | None) -> Row:
        return await self._change("PUT", "/api/site/limit", {"limit_kw": limit_kw})

    async def export_csv(self, kind: str, first: date | None, last: date | None) -> tuple[str, int]:
        params = {k: d.isoformat() for k, d in (("from", first), ("to", last)) if d is not None}
        try:
            return await self._request("GET", f"/api/export/{kind}", params=params or None, text=True)
        except ApiRefused as exc:
            raise SiteError(exc.body.get("message", f"HTTP {exc.status}")) from None


class ApiRefused(SiteError):
    """The API answered with an error (other than 401): its status and JSON body."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(body.get("message", f"HTTP {status}"))
        self.status = status
        self.body = body


def _q(part: str) -> str:
    return quote(part, safe="")
