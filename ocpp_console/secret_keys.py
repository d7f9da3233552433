"""Which configuration keys are secrets, and their values masked wherever they would be kept or shown.

OCPP 1.6 configuration keys are CiString (case-insensitive): `authorizationkey` is the
AuthorizationKey. Every layer (the message log, the commands log, the stored configuration,
the API and the console) asks `is_secret_key`, so no spelling slips through one of them. A
module of its own, below csms and store alike, so that the store can use it too.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson

SECRET_KEYS = frozenset({"authorizationkey"})  # lower case: compared case-insensitively
MASK = "********"


def is_secret_key(key: object) -> bool:
    return isinstance(key, str) and key.lower() in SECRET_KEYS


def mask_value(key: object, value: Any) -> Any:
    return MASK if value is not None and is_secret_key(key) else value


def mask_keys(keys: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """GetConfiguration's configurationKey list with secret values masked (a new list)."""
    return [{**k, "value": MASK} if is_secret_key(k.get("key")) and k.get("value") is not None else k
            for k in keys or ()]


def mask_payload(action: str | None, payload: Any) -> Any:
    """A ChangeConfiguration request or a GetConfiguration answer with secret values masked;
    any other payload as it is."""
    if not isinstance(payload, dict):
        return payload
    if action == "ChangeConfiguration" and is_secret_key(payload.get("key")) and "value" in payload:
        return {**payload, "value": MASK}
    if action == "GetConfiguration" and isinstance(payload.get("configurationKey"), list):
        keys = payload["configurationKey"]
        if any(isinstance(k, dict) and is_secret_key(k.get("key")) for k in keys):
            return {**payload, "configurationKey": [
                {**k, "value": MASK} if isinstance(k, dict) and is_secret_key(k.get("key")) and "value" in k else k
                for k in keys]}
    return payload


def mask_frame(raw: str, action: str | None) -> str:
    """An OCPP-J frame as the message log may keep it. Only the two configuration actions can
    carry a key's value, so every other frame costs one comparison."""
    if action not in ("ChangeConfiguration", "GetConfiguration") or "authorizationkey" not in raw.lower():
        return raw
    try:
        frame = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return raw
    if not isinstance(frame, list) or len(frame) < 3:
        return raw
    at = 3 if frame[0] == 2 else 2  # a CALL's payload, or a CALLRESULT's
    if len(frame) <= at:
        return raw
    masked = mask_payload(action, frame[at])
    if masked is frame[at]:
        return raw
    frame[at] = masked
    return orjson.dumps(frame).decode()


# -- the secrets websockets would log at DEBUG --------------------------------------------------

_SECRET_HEADERS = frozenset({"authorization", "proxy-authorization"})


class MaskSecrets(logging.Filter):
    """websockets logs every handshake header and frame at DEBUG: the Basic header (the charger's
    password in base64) and a frame carrying an AuthorizationKey are masked before any handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if not isinstance(args, tuple) or not args:
            return True
        if record.msg in ("< %s: %s", "> %s: %s") and len(args) == 2 and str(args[0]).lower() in _SECRET_HEADERS:
            scheme = str(args[1]).split(" ", 1)[0]
            record.args = (args[0], f"{scheme} ********")
        elif record.msg in ("< %s", "> %s") and any(k in str(args[0]).lower() for k in SECRET_KEYS):
            record.args = ("<frame with an AuthorizationKey, not logged>",)
        return True
