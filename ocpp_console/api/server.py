"""The local HTTP API: read the site, provision it, and send any OCPP operation to a charger.

aiohttp serves it in the central system's own event loop, so an operation goes through the
same `Commands` (and the same stored effects) as one sent from the console. Bound to loopback
unless told otherwise. A bearer token is always required: --api-token, or by default one made on
first start and kept beside the database (api/token.py), which our own local clients read.
Requests a web page could send (a foreign Origin or Host, a non-JSON body) are refused.
"""

from __future__ import annotations

import functools
import hmac
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import fastjsonschema
import orjson
from aiohttp import web

from ocpp_console import provision
from ocpp_console.api import resources
from ocpp_console.api.openapi import body_validator, document
from ocpp_console.api.stream import EventStream, hello_fields
from ocpp_console.api.token import server_token
from ocpp_console.csms import operations, protocol, transactions
from ocpp_console.csms.errors import (
    CallErrorReceived,
    ChargerOffline,
    CommandError,
    CommandTimeout,
    InvalidAnswer,
    InvalidCommand,
)

if TYPE_CHECKING:
    from ocpp_console.csms.server import CentralSystem

log = logging.getLogger("ocpp_console.api")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
CSMS_KEY: web.AppKey[CentralSystem] = web.AppKey("csms")
STREAM_KEY: web.AppKey[EventStream] = web.AppKey("events")


class ApiError(Exception):
    def __init__(self, status: int, error: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.body = {"error": error, "message": message, **extra}


def reply(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=protocol.dumps)  # OCPP decimals as JSON numbers


@web.middleware
async def errors_as_json(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every failure is a JSON body with a short code and a message, never an HTML page."""
    try:
        return await handler(request)
    except ApiError as exc:
        return reply(exc.body, exc.status)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        response = reply({"error": exc.reason.lower().replace(" ", "_"), "message": exc.reason}, exc.status)
        for name in ("Allow", "WWW-Authenticate"):  # 405 must say what is allowed (RFC 9110)
            if name in exc.headers:
                response.headers[name] = exc.headers[name]
        return response
    except Exception:
        log.exception("API %s %s failed", request.method, request.path)
        return reply({"error": "internal", "message": "internal error; see the log"}, 500)


def bearer_token(token: str | None, where: str = "--api-token") -> Callable[..., Awaitable[web.StreamResponse]]:
    expected = (token or "").encode()
    hint = f"a bearer token is required (Authorization: Bearer TOKEN; the token is in {where})"

    @web.middleware
    async def check(request: web.Request, handler: Handler) -> web.StreamResponse:
        if token and request.path != "/api/openapi.json":
            given = request.headers.get("Authorization", "")
            scheme, _, value = given.partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(value.strip().encode(), expected):
                return web.json_response(
                    {"error": "unauthorized", "message": hint},
                    status=401, headers={"WWW-Authenticate": 'Bearer realm="ocpp-console"'},
                )
        return await handler(request)

    return check


def _query_names() -> dict[tuple[str, str], frozenset[str]]:
    """The query parameters each documented (method, path) takes, from the OpenAPI document."""
    names: dict[tuple[str, str], frozenset[str]] = {}
    for path, item in document().get("paths", {}).items():
        for method, op in item.items():
            names[method.upper(), path] = frozenset(
                p["name"] for p in op.get("parameters", ()) if p.get("in") == "query"
            )
    return names


def known_query() -> Callable[..., Awaitable[web.StreamResponse]]:
    """A query parameter the endpoint does not take is refused (400), not ignored: a misspelt
    filter (`?runing=true`) would otherwise answer with everything, as if it had been applied."""
    allowed = _query_names()

    @web.middleware
    async def check(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.query and request.match_info.http_exception is None:  # 404/405 first, as they are
            resource = request.match_info.route.resource
            template = resource.canonical if resource is not None else request.path
            unknown = sorted(set(request.query) - allowed.get((request.method, template), frozenset()))
            if unknown:
                raise ApiError(400, "unknown_parameter",
                               f"{request.method} {template} takes no query parameter {', '.join(map(repr, unknown))}")
        return await handler(request)

    return check


# -- the operator's browser -------------------------------------------------------------------
# A web page the operator opens can send requests to 127.0.0.1 ("simple" cross-origin requests
# are sent without a preflight: text/plain bodies, any Origin), and a rebound DNS name can make
# such a page same-origin with the API. So: the Host must name this API, a browser's Origin
# must be the API's own, and writes must be JSON (which a page can only send after a preflight
# that we never grant).

WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")
WILDCARDS = ("0.0.0.0", "::", "")


@functools.lru_cache(maxsize=8)  # getfqdn may ask the DNS: once, not per request
def allowed_hosts(host: str, port: int) -> frozenset[str]:
    """Host header values that name the API bound to (host, port). A wildcard bind also takes
    any IP literal (browser_guard): it is reached by whatever address this machine has, and a
    rebinding attack always comes with a name, never an address."""
    from ocpp_console.settings import is_loopback

    if host in WILDCARDS:
        import socket

        names = {*LOOPBACK_NAMES, socket.gethostname().lower(), socket.getfqdn().lower()}
    elif is_loopback(host):
        names = set(LOOPBACK_NAMES)
    else:
        names = {f"[{host}]" if ":" in host else host.lower()}
    hosts = {f"{name}:{port}" for name in names}
    if port == 80:
        hosts |= names
    return frozenset(hosts)


def _is_ip_literal(host_header: str) -> bool:
    import ipaddress

    if host_header.startswith("["):
        name = host_header[1:host_header.find("]")]
    else:
        name = host_header.split(":", 1)[0]
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def _refuse(status: int, error: str, message: str) -> web.Response:
    log.warning("API request refused (%s): %s", error, message)
    return web.json_response({"error": error, "message": message}, status=status)


def browser_guard(bind_host: str, port: Callable[[], int | None]) -> Callable[..., Awaitable[web.StreamResponse]]:
    wildcard = bind_host in WILDCARDS

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        host = (request.headers.get("Host") or "").strip().lower()
        hosts = allowed_hosts(bind_host, port() or 0)
        if host not in hosts and not (wildcard and _is_ip_literal(host)):
            return _refuse(403, "forbidden_host", f"Host {host!r} does not name this API ({', '.join(sorted(hosts))})")
        origin = request.headers.get("Origin")
        if origin is not None and origin.lower() != f"http://{host}":
            return _refuse(403, "forbidden_origin", f"requests from the web page {origin!r} are refused")
        if request.headers.get("Sec-Fetch-Site", "same-origin").lower() not in ("same-origin", "none"):
            return _refuse(403, "forbidden_origin", "requests from another site are refused")
        return await handler(request)

    return guard


@web.middleware
async def json_writes(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A write carries a JSON body or none at all (415 otherwise)."""
    if request.method in WRITES and (request.body_exists or "Content-Type" in request.headers):
        if request.content_type != "application/json":
            return _refuse(415, "unsupported_media_type",
                           f"a body must be JSON (Content-Type: application/json), not {request.content_type!r}")
    return await handler(request)


async def _checked_body(request: web.Request, schema: str) -> dict[str, Any]:
    body = await _body(request)
    try:
        body_validator(schema)(body)
    except fastjsonschema.JsonSchemaValueException as exc:
        raise ApiError(400, "invalid_body", exc.message.replace("data.", "", 1).replace("data ", "body ", 1)) from None
    return body


def _id_tag(request: web.Request) -> str:
    tag = request.match_info["id_tag"]
    if not 1 <= len(tag) <= provision.MAX_ID_TAG:
        raise ApiError(400, "invalid_parameter", f"an id tag is 1 to {provision.MAX_ID_TAG} characters (OCPP IdToken)")
    return tag


async def _body(request: web.Request) -> dict[str, Any]:
    raw = await request.read()
    if not raw.strip():
        raise ApiError(400, "invalid_body", "a JSON object is required as the body ({} for none)")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ApiError(400, "invalid_json", f"the body is not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_body", "the body must be a JSON object")
    return body


def _csms(request: web.Request) -> CentralSystem:
    return request.app[CSMS_KEY]


# -- operations ------------------------------------------------------------------------------


async def run_operation(request: web.Request) -> web.Response:
    charger_id = request.match_info["charger_id"]
    operation = operations.find(request.match_info["action"])
    if operation is None or request.match_info["action"] != operation.path_name:
        names = ", ".join(operations.OPERATIONS)
        raise ApiError(404, "unknown_operation", f"no operation {request.match_info['action']!r}; one of: {names}")
    payload = await _body(request)
    return reply(await answered(operations.execute(_csms(request).commands, charger_id, operation, payload)))


async def answered(command: Awaitable[dict[str, Any]]) -> dict[str, Any]:
    """A command's answer, or its failure as the API's error (the same for every command)."""
    from ocpp_console.files.host import NoFileServer, UnknownImage

    try:
        return await command
    except UnknownImage as exc:
        raise ApiError(404, "unknown_firmware", str(exc)) from None
    except NoFileServer as exc:
        raise ApiError(409, "no_file_server", str(exc)) from None
    except InvalidCommand as exc:
        raise ApiError(400, "invalid_payload", str(exc)) from None
    except ChargerOffline as exc:  # UnknownCharger (unknown_charger) too: the words the serve log has
        raise ApiError(404, exc.outcome, str(exc)) from None
    except CommandTimeout as exc:
        raise ApiError(504, "timeout", str(exc)) from None
    except CallErrorReceived as exc:
        raise ApiError(502, "callerror", str(exc), code=exc.code, details=exc.details) from None
    except InvalidAnswer as exc:
        raise ApiError(502, "invalid_answer", str(exc)) from None
    except CommandError as exc:
        raise ApiError(502, exc.outcome, str(exc)) from None


# -- read ------------------------------------------------------------------------------------


def _int(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    text = request.query.get(name)
    if text is None:
        return default
    try:
        value = int(text)
    except ValueError:
        raise ApiError(400, "invalid_parameter", f"{name} must be an integer") from None
    if not low <= value <= high:
        raise ApiError(400, "invalid_parameter", f"{name} must be between {low} and {high}")
    return value


def _bool(request: web.Request, name: str) -> bool | None:
    text = request.query.get(name)
    if text is None:
        return None
    if text.lower() in ("true", "1", "yes"):
        return True
    if text.lower() in ("false", "0", "no"):
        return False
    raise ApiError(400, "invalid_parameter", f"{name} must be true or false")


async def list_chargers(request: web.Request) -> web.Response:
    return reply(await resources.chargers(_csms(request)))


async def get_charger(request: web.Request) -> web.Response:
    charger_id = request.match_info["charger_id"]
    found = await resources.charger(_csms(request), charger_id)
    if found is None:
        raise ApiError(404, "unknown_charger", f"no charger {charger_id!r}")
    return reply(found)


async def list_transactions(request: web.Request) -> web.Response:
    limit = _int(request, "limit", 500, 1, 10_000)
    rows = await _csms(request).store.transactions(request.query.get("charger_id"), _bool(request, "running"), limit)
    return reply(await resources.transactions(_csms(request), rows))


def _transaction_id(request: web.Request) -> int:
    text = request.match_info["transaction_id"]
    try:
        transaction_id = int(text)
    except ValueError:
        raise ApiError(400, "invalid_parameter", "transaction_id must be an integer") from None
    if not 0 < transaction_id < 2**63:  # beyond SQLite's integers: there is no such transaction
        raise ApiError(404, "unknown_transaction", f"no transaction {transaction_id}")
    return transaction_id


async def get_transaction(request: web.Request) -> web.Response:
    transaction_id = _transaction_id(request)
    row = await _csms(request).store.transaction(transaction_id)
    if row is None:
        raise ApiError(404, "unknown_transaction", f"no transaction {transaction_id}")
    return reply((await resources.transactions(_csms(request), [row]))[0])


async def list_orders(request: web.Request) -> web.Response:
    try:
        since, until = (resources.day_start(request.query.get(n), n) for n in ("from", "to"))
    except ValueError as exc:
        raise ApiError(400, "invalid_parameter", str(exc)) from None
    rows = await _csms(request).store.orders(since, until)
    return reply([resources.transaction(_csms(request), row) for row in rows])


async def list_id_tags(request: web.Request) -> web.Response:
    return reply(await resources.id_tags(_csms(request)))


async def get_id_tag(request: web.Request) -> web.Response:
    tag = _id_tag(request)
    row = await _csms(request).store.id_tag(tag)
    if row is None:
        raise ApiError(404, "unknown_id_tag", f"no id tag {tag!r}")
    return reply(resources.id_tag(_csms(request), row))


async def list_tariffs(request: web.Request) -> web.Response:
    csms = _csms(request)
    return reply(await provision.billing_view(csms.store, csms.settings, own=csms.instance))


async def list_messages(request: web.Request) -> web.Response:
    limit = _int(request, "limit", 500, 1, 10_000)
    rows = await _csms(request).store.message_log(request.query.get("charger_id"), limit)
    return reply([resources.message(row) for row in rows])


async def events(request: web.Request) -> web.StreamResponse:
    """The event stream (api/stream.py); a plain GET is told to upgrade (426)."""
    since = _int(request, "since", 0, 0, 2**63 - 1) if "since" in request.query else None
    epoch = request.query.get("epoch")
    if not web.WebSocketResponse().can_prepare(request).ok:
        raise ApiError(426, "upgrade_required", "GET /api/events is a WebSocket: connect with ws://HOST:PORT/api/events")
    return await request.app[STREAM_KEY].serve(request, since, epoch)


async def openapi(request: web.Request) -> web.Response:
    return reply(document())


# -- manage ----------------------------------------------------------------------------------


Change = Callable[["CentralSystem", str, dict[str, Any]], Awaitable[None]]


async def _provision(request: web.Request, key: str, schema: str, change: Change) -> CentralSystem:
    """Check the body, make the change (a refusal is 400 with provisioning's message), reload."""
    body = await _checked_body(request, schema)
    csms = _csms(request)
    try:
        await change(csms, key, body)
    except ValueError as exc:
        raise ApiError(400, "invalid_value", str(exc)) from None
    await csms.reload()  # our own writes do not move data_version: tell the console and sessions
    return csms


async def put_id_tag(request: web.Request) -> web.Response:
    tag = _id_tag(request)
    csms = await _provision(request, tag, "IdTagUpdate", resources.put_id_tag)
    row = await csms.store.id_tag(tag)
    assert row is not None
    return reply(resources.id_tag(csms, row))


async def set_password(request: web.Request) -> web.Response:
    charger_id = request.match_info["charger_id"]
    csms = await _provision(request, charger_id, "Password", resources.set_password)
    return reply(await resources.charger(csms, charger_id))


async def put_charger(request: web.Request) -> web.Response:
    charger_id = request.match_info["charger_id"]
    csms = await _provision(request, charger_id, "ChargerUpdate", resources.put_charger)
    return reply(await resources.charger(csms, charger_id))


async def delete_charger(request: web.Request) -> web.Response:
    charger_id = request.match_info["charger_id"]
    csms = _csms(request)
    try:
        await provision.remove_charger(csms.store, charger_id)
    except ValueError:
        raise ApiError(404, "unknown_charger", f"no charger {charger_id!r}") from None
    await csms.reload()  # a connected charger is let go
    return web.Response(status=204)


async def close_transaction(request: web.Request) -> web.Response:
    """Close a stuck transaction (closed-by-operator) and answer the settled order."""
    transaction_id = _transaction_id(request)
    if (await request.read()).strip():
        await _checked_body(request, "TransactionClose")  # {} (or nothing): there is nothing to say
    csms = _csms(request)
    try:
        await transactions.close_by_operator(csms, transaction_id)
    except transactions.UnknownTransaction:
        raise ApiError(404, "unknown_transaction", f"no transaction {transaction_id}") from None
    except transactions.AlreadyStopped as exc:
        raise ApiError(409, "already_stopped", str(exc)) from None
    row = await csms.store.transaction(transaction_id)
    assert row is not None
    return reply(resources.transaction(csms, row))


async def delete_id_tag(request: web.Request) -> web.Response:
    tag = _id_tag(request)
    store = _csms(request).store
    if await store.id_tag(tag) is None:
        raise ApiError(404, "unknown_id_tag", f"no id tag {tag!r}")
    try:
        await provision.remove_tag(store, tag)
    except ValueError as exc:  # money in its wallet, child tags, a running session
        raise ApiError(409, "conflict", str(exc)) from None
    await _csms(request).reload()
    return web.Response(status=204)


def build_app(csms: CentralSystem, token: str | None, where: str = "--api-token",
              port: Callable[[], int | None] = lambda: None, **stream_options: Any) -> web.Application:
    middlewares = [errors_as_json, browser_guard(csms.settings.api_host, port), bearer_token(token, where), json_writes,
                   known_query()]
    app = web.Application(middlewares=middlewares, client_max_size=1024 * 1024)
    app[CSMS_KEY] = csms
    stream = app[STREAM_KEY] = EventStream(csms.events, hello=hello_fields(csms), **stream_options)

    async def close_streams(_: web.Application) -> None:
        await stream.shutdown()  # before the runner waits for the handlers: they are endless

    app.on_shutdown.append(close_streams)
    from ocpp_console.api import console_reads, files, load  # they build on this module

    app.add_routes(console_reads.ROUTES)
    app.add_routes(load.ROUTES)
    app.add_routes(files.ROUTES)
    app.add_routes([
        web.get("/api/events", events),
        web.get("/api/openapi.json", openapi),
        web.get("/api/chargers", list_chargers),
        web.get("/api/chargers/{charger_id}", get_charger),
        web.put("/api/chargers/{charger_id}", put_charger),
        web.delete("/api/chargers/{charger_id}", delete_charger),
        web.put("/api/chargers/{charger_id}/password", set_password),
        # not the charger's own sub-resources (password, configuration, ...): their methods say so in Allow
        web.post(rf"/api/chargers/{{charger_id}}/{{action:(?!({'|'.join(console_reads.CHARGER_PATHS)})$)[^{{}}/]+}}",
                 run_operation),
        web.get("/api/transactions", list_transactions),
        web.get("/api/transactions/{transaction_id}", get_transaction),
        web.post("/api/transactions/{transaction_id}/close", close_transaction),
        web.get("/api/orders", list_orders),
        web.get("/api/id-tags", list_id_tags),
        web.get("/api/id-tags/{id_tag}", get_id_tag),
        web.put("/api/id-tags/{id_tag}", put_id_tag),
        web.delete("/api/id-tags/{id_tag}", delete_id_tag),
        web.get("/api/messages", list_messages),
        web.get("/api/tariffs", list_tariffs),
    ])
    return app


class ApiServer:
    """Start with the central system, stop before it; `port` is the bound port (for --api-port 0)."""

    def __init__(self, csms: CentralSystem, **stream_options: Any) -> None:
        """`stream_options`: EventStream's bounds (ring_events, ring_bytes, send_timeout)."""
        self.csms = csms
        self._stream_options = stream_options
        self.port: int | None = None
        self.token: str | None = None
        self.token_source = ""  # where the operator finds the token: the file, or --api-token
        self._runner: web.AppRunner | None = None
        self.app: web.Application | None = None

    @property
    def stream(self) -> EventStream:
        assert self.app is not None, "the API is not started"
        return self.app[STREAM_KEY]

    @property
    def events_url(self) -> str:
        return "ws" + self.url.removeprefix("http") + "/api/events"

    @property
    def url(self) -> str:
        host = self.csms.settings.api_host
        return f"http://{'[' + host + ']' if ':' in host else host}:{self.port}"

    async def start(self) -> None:
        settings = self.csms.settings
        self.token, self.token_source = server_token(settings)
        app = build_app(self.csms, self.token, self.token_source, lambda: self.port, **self._stream_options)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, settings.api_host, settings.api_port or 0)
        try:
            await site.start()
        except OSError:
            await runner.cleanup()
            raise
        self._runner, self.app = runner, app
        self.port = runner.addresses[0][1]
        log.info("HTTP API on %s/api (OpenAPI: %s/api/openapi.json); its bearer token is in %s",
                 self.url, self.url, self.token_source)
        log.info("event stream on %s (WebSocket, same token)", self.events_url)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
