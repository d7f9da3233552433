"""`ocpp-console call`: one operation through a running instance's HTTP API.

The standard library's HTTP client is enough for one request from a shell; the call runs in
the running instance, which owns the charger connections.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from ocpp_console.csms.operations import OPERATIONS, find
from ocpp_console.settings import Settings


@dataclass
class Answer:
    status: int
    body: Any


class CallError(Exception):
    """The call could not be made at all (no API configured, nothing listening, bad action)."""


def api_url(settings: Settings) -> str:
    if settings.api_port is None:
        raise CallError(
            "no API port: start the running instance with --api-port N and give the same port here "
            "(--api-port, OCPP_CONSOLE_API_PORT or the TOML file), or pass --url"
        )
    host = settings.api_host
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"  # listening everywhere: reach it on loopback
    return f"http://{'[' + host + ']' if ':' in host else host}:{settings.api_port}"


def call(base_url: str, token: str | None, charger_id: str, action: str, payload: dict[str, Any],
         timeout: float) -> Answer:
    operation = find(action)
    if operation is None:
        raise CallError(f"unknown operation {action!r}; one of: {', '.join(OPERATIONS)}")
    url = f"{base_url.rstrip('/')}/api/chargers/{urllib.request.quote(charger_id, safe='')}/{operation.path_name}"
    request = urllib.request.Request(url, data=json.dumps(payload).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return Answer(response.status, json.loads(response.read() or b"null"))
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        try:
            body = json.loads(raw)
        except ValueError:
            body = {"error": "http", "message": raw.decode(errors="replace") or exc.reason}
        return Answer(exc.code, body)
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise CallError(f"cannot reach the API at {base_url}: {reason}") from None
