"""The API's OpenAPI 3.0 document, built from the official OCPP 1.6 schemas.

Request and answer bodies of the operations are the OCPP payloads, so their schemas are the
ones the `ocpp` package ships (with `$ref`s inlined and draft-only keywords dropped); nothing
here restates what an OCPP payload looks like.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import fastjsonschema
import ocpp

from ocpp_console import __version__
from ocpp_console.provision import MAX_CHARGER_ID, MAX_ID_TAG, MAX_KW, MIN_KW, PRIORITIES
from ocpp_console.csms.operations import OPERATIONS, Operation
from ocpp_console.csms.protocol import DECIMAL_BOUND, INT32

_SCHEMA_DIR = Path(ocpp.__file__).parent / "v16" / "schemas"
_DROP = {"$schema", "$id", "id", "title", "javaType", "additionalItems", "definitions"}


def _inline(node: Any, definitions: dict[str, Any]) -> Any:
    if isinstance(node, dict):
        if "$ref" in node:
            return _inline(definitions[node["$ref"].rsplit("/", 1)[-1]], definitions)
        out = {}
        for key, value in node.items():
            if key in _DROP:
                continue
            if key == "properties":
                out[key] = {name: _inline(v, definitions) for name, v in value.items()}
                if isinstance(out[key].get("connectorId"), dict):  # as protocol holds it: 0 = the charger
                    out[key]["connectorId"]["minimum"] = max(0, out[key]["connectorId"].get("minimum", 0))
            elif key == "additionalProperties" and node.get("type") != "object":
                continue  # the schemas put it on strings too; meaningless there
            else:
                out[key] = _inline(value, definitions)
        if out.get("type") == "integer":  # OCPP 1.6's integer is 32-bit signed
            out.setdefault("format", "int32")
            out.setdefault("minimum", INT32[0])
            out.setdefault("maximum", INT32[1])
        elif out.get("type") == "number":  # the bound operations.check_payload holds decimals to
            out.setdefault("minimum", DECIMAL_BOUND[0])
            out.setdefault("maximum", DECIMAL_BOUND[1])
        return out
    if isinstance(node, list):
        return [_inline(v, definitions) for v in node]
    return node


@functools.cache
def ocpp_schema(name: str) -> dict[str, Any]:
    raw = json.loads((_SCHEMA_DIR / f"{name}.json").read_text(encoding="utf-8-sig"))
    return _inline(raw, raw.get("definitions", {}))


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _error(description: str) -> dict[str, Any]:
    return _json(_ref("Error"), description)


_NULLABLE_STRING = {"type": "string", "nullable": True}
_NULLABLE_INT = {"type": "integer", "nullable": True}
_PRIORITY = {"type": "integer", "minimum": PRIORITIES[0], "maximum": PRIORITIES[1], "nullable": True}
_TIME = {"type": "string", "nullable": True, "description": "ISO 8601, UTC"}
_MONEY = {"type": "string", "nullable": True, "pattern": r"^-?\d+(\.\d+)?$",
          "description": "an exact decimal amount in the currency's major unit"}


def _object(properties: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": required or list(properties)}


def _row(columns: list[str]) -> dict[str, Any]:
    """A stored row: these columns at least (of any JSON type), maybe more."""
    return {"type": "object", "properties": {c: {"nullable": True} for c in columns}, "required": columns}


RESOURCES: dict[str, Any] = {
    "Error": {
        "type": "object",
        "properties": {
            "error": {"type": "string", "description": "what went wrong, as a short code"},
            "message": {"type": "string"},
            "code": {"type": "string", "description": "the charger's CALLERROR code (502 only)"},
            "details": {"description": "the charger's CALLERROR details (502 only)"},
        },
        "required": ["error", "message"],
    },
    "Connector": _object({
        "connector_id": {"type": "integer"},
        "status": {"type": "string"},
        "error_code": {"type": "string"},
        "info": _NULLABLE_STRING,
        "updated_at": _TIME,
    }),
    "Charger": _object({
        "id": {"type": "string"},
        "registration": {"type": "string", "enum": ["Accepted", "Pending", "Rejected"]},
        "connected": {"type": "boolean"},
        "vendor": _NULLABLE_STRING,
        "model": _NULLABLE_STRING,
        "serial": _NULLABLE_STRING,
        "firmware_version": _NULLABLE_STRING,
        "remote_address": _NULLABLE_STRING,
        "has_password": {"type": "boolean"},
        "security_profile": {"type": "integer", "minimum": 0, "maximum": 3,
                             "description": "the lowest OCPP security profile it is let in with"},
        "max_kw": {"type": "number", "nullable": True, "description": "the most load management gives its "
                   "sessions (a charger or cable weaker than its rating); null: the setting charger_max_kw"},
        "priority": {**_NULLABLE_INT, "description": "its sessions' priority under load_policy \"priority\" "
                     "(higher first); null: 0. A tag's own priority wins"},
        "note": _NULLABLE_STRING,
        "first_seen": _TIME,
        "last_seen": _TIME,
        "last_boot": _TIME,
        "connectors": {"type": "array", "items": _ref("Connector")},
        "stored": {"type": "object", "description": "the stored row's columns as they are (without password "
                   "hashes): firmware and diagnostics progress, certificate, local list version, ..."},
    }),
    "Transaction": _object({
        "id": {"type": "integer"},
        "charger_id": {"type": "string"},
        "connector_id": {"type": "integer"},
        "id_tag": {"type": "string"},
        "running": {"type": "boolean"},
        "meter_start": {"type": "integer"},
        "meter_stop": _NULLABLE_INT,
        "energy_wh": {**_NULLABLE_INT, "description": "Wh delivered; while running, so far (its latest energy "
                      "register less meterStart, as the console shows it)"},
        "start_timestamp": {"type": "string"},
        "stop_timestamp": _TIME,
        "stop_reason": _NULLABLE_STRING,
        "charging_seconds": _NULLABLE_INT,
        "idle_seconds": _NULLABLE_INT,
        "cost": {**_MONEY, "description": "the settled cost; while running, the cost so far (priced by "
                 "settlement's own code as if it stopped now, as the console shows it)"},
        "currency": _NULLABLE_STRING,
        "power_w": {"type": "number", "nullable": True,
                    "description": "while running: the latest power reported (W); null once stopped"},
        "soc": {"type": "number", "nullable": True,
                "description": "while running: the latest state of charge reported (%); null once stopped"},
        "wallet_id_tag": _NULLABLE_STRING,
        "closed_by": {"type": "string", "nullable": True,
                      "description": "we closed it, no StopTransaction having come: superseded (a new "
                      "StartTransaction on its connector), closed-after-reboot or closed-by-operator"},
        "stop_note": {"type": "string", "nullable": True,
                      "description": "why we asked the charger to stop it, e.g. 'wallet empty: ...' "
                      "(stop_on_empty_wallet)"},
        "flags": {"type": "array", "items": {"type": "string"},
                  "description": "what was noticed: superseded, late_stop, meter_discrepancy, wallet_empty, ..."},
        "stored": {"type": "object", "description": "the stored row's columns as they are (money in minor "
                   "units, the tariff snapshot and cost items as JSON text, flags comma-separated)"},
    }),
    "TransactionClose": {"type": "object", "additionalProperties": False, "properties": {}},
    "IdTag": _object({
        "id_tag": {"type": "string"},
        "status": {"type": "string", "enum": ["Accepted", "Blocked", "Expired", "Invalid", "ConcurrentTx"]},
        "expiry_date": _TIME,
        "parent_id_tag": _NULLABLE_STRING,
        "balance": {**_MONEY, "nullable": False},
        "balance_minor": {"type": "integer", "description": "the balance in minor units of `currency`"},
        "currency": {"type": "string"},
        "priority": {**_NULLABLE_INT, "description": "its sessions' priority under load_policy \"priority\" "
                     "(higher first); null: its charger's"},
        "note": _NULLABLE_STRING,
        "refused_status": {**_NULLABLE_STRING, "description": "its last refusal: what it was answered"},
        "refused_reason": {**_NULLABLE_STRING, "description": "its last refusal: why, e.g. wallet below minimum"},
        "refused_action": {**_NULLABLE_STRING, "description": "its last refusal: Authorize or StartTransaction"},
        "refused_charger": {**_NULLABLE_STRING, "description": "its last refusal: at which charger"},
        "refused_at": _TIME,
    }),
    "IdTagUpdate": {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "status": {"type": "string", "enum": ["Accepted", "Blocked", "Expired", "Invalid"]},
            "expiry_date": {"type": "string", "nullable": True, "description": "a date or an ISO 8601 time"},
            "parent_id_tag": {"type": "string", "nullable": True, "minLength": 1, "maxLength": MAX_ID_TAG},
            "balance": {"type": "string", "pattern": r"^-?\d+(\.\d+)?$",
                        "description": "set the wallet to this amount (a ledger movement of the difference)"},
            "priority": {**_PRIORITY, "description": "its sessions' priority under load_policy \"priority\", "
                         "higher first, over its charger's; null clears it"},
            "note": {"type": "string", "nullable": True},
        },
    },
    "ChargerUpdate": {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "password": {"type": "string", "minLength": 16, "maxLength": 40},
            "note": {"type": "string", "nullable": True},
            "security_profile": {
                "type": "integer", "minimum": 0, "maximum": 3,
                "description": "the lowest OCPP security profile (0-3) it is let in with, whatever the listener "
                "allows; lowering it lets back in a charger whose profile was raised beyond what it can do",
            },
            "max_kw": {"type": "number", "minimum": MIN_KW, "maximum": MAX_KW, "nullable": True,
                       "description": "the most load management gives its sessions (a charger or its cable "
                       "weaker than its rating); null clears it (the setting charger_max_kw)"},
            "priority": {**_PRIORITY, "description": "its sessions' priority under load_policy \"priority\", "
                         "higher first; null clears it (0)"},
            "registration": {"type": "string", "enum": ["Accepted", "Rejected"],
                             "description": "Accepted (the default) approves a pending charger"},
        },
    },
    "Password": {
        "type": "object",
        "additionalProperties": False,
        "properties": {"password": {"type": "string", "minLength": 16, "maxLength": 40, "nullable": True,
                                    "description": "null removes the password"}},
        "required": ["password"],
    },
    "Tariff": _object({
        "scope": {"type": "string", "description": "* for the site, else a charger id"},
        "source": {"type": "string", "enum": ["settings", "stored", "settings + stored"]},
        "currency": {"type": "string"},
        "price_per_kwh": {"type": "string"},
        "price_per_minute": {"type": "string"},
        "idle_price_per_minute": {"type": "string"},
        "idle_grace_minutes": {"type": "string"},
        "session_fee": {"type": "string"},
        "tou_windows": {"type": "string", "description": "e.g. 22:00-06:00=0.20,12:00-14:00=0.25"},
        "timezone": _NULLABLE_STRING,
        "settings_from": {"type": "string", "enum": ["running instance", "this shell"],
                          "description": "whose settings: the running instance's (recorded in the database "
                          "at its start), or, with none running, the asking shell's"},
        "instance": {"type": "object", "nullable": True, "description": "the running instance",
                     "properties": {"pid": {"type": "integer"}, "host": {"type": "string"},
                                    "started_at": {"type": "string"}},
                     "required": ["pid", "host", "started_at"]},
        "min_balance": {"type": "string", "description": "below this wallet balance a tag is Blocked"},
        "wallet": {"type": "boolean", "description": "wallet balances are checked"},
        "stop_on_empty_wallet": {"type": "boolean",
                                 "description": "a session is stopped when its cost reaches the spendable balance"},
    }),
    "SiteLimit": {
        "type": "object",
        "additionalProperties": False,
        "properties": {"limit_kw": {"type": "number", "minimum": 0.1, "nullable": True,
                                    "description": "the grid connection in kW; null turns load management off"}},
        "required": ["limit_kw"],
    },
    "SiteLoad": _object({
        "limit_kw": {"type": "number", "nullable": True, "description": "null: load management is off"},
        "measured_kw": {"type": "number", "description": "what the running sessions draw, from their MeterValues"},
        "allocated_kw": {"type": "number", "description": "the sum of the shares (fixed loads included)"},
        "safe_kw": {"type": "number", "nullable": True,
                    "description": "the failsafe of a running connector: where it falls if nobody decides"},
        "policy": {"type": "string", "enum": ["equal", "priority"]},
        "sessions": {"type": "array", "items": _object({
            "transaction_id": {"type": "integer"}, "charger_id": {"type": "string"},
            "connector_id": {"type": "integer"}, "id_tag": {"type": "string"},
            "allocated_kw": {"type": "number", "nullable": True, "description": "its share (0: paused)"},
            "sent_kw": {"type": "number", "nullable": True, "description": "the share its charger accepted last"},
            "measured_kw": {"type": "number", "nullable": True},
            "state": {"type": "string", "enum": ["charging", "paused", "fixed", "new"]},
            "reason": {"type": "string", "description": "why this share (share, cap, max, paused: ..., fixed load)"},
            "next_turn_at": {"type": "string", "nullable": True, "description": "a paused session: when a turn ends"},
        })},
        "fixed_chargers": {"type": "array", "items": {"type": "string"},
                           "description": "chargers that refuse profiles: counted at their maximum"},
        "min_kw": {"type": "number", "description": "the least a car takes while charging (6 A per phase)"},
        "rotation_minutes": {"type": "number", "description": "how long a turn lasts when sessions take turns"},
        "history": {"type": "array", "description": "with history=true or since: the site at each decision, "
                    "oldest first (up to 3,600 points)", "items": _object({
                        "at": {"type": "string", "format": "date-time"},
                        "measured_kw": {"type": "number"}, "allocated_kw": {"type": "number"},
                        "limit_kw": {"type": "number", "nullable": True}})},
    }, ["limit_kw", "measured_kw", "allocated_kw", "safe_kw", "policy", "sessions", "fixed_chargers", "min_kw",
        "rotation_minutes"]),
    "WalletMovement": {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "kind": {"type": "string", "enum": ["topup", "adjustment"],
                     "description": "topup adds money (amount > 0); adjustment adds or takes out (amount < 0)"},
            "amount": {"type": "string", "pattern": r"^-?\d+(\.\d+)?$",
                       "description": "in the site currency's major unit, at most its decimals"},
            "reason": {"type": "string", "nullable": True, "maxLength": 500},
        },
        "required": ["kind", "amount"],
    },
    "WalletMoved": _object({
        "id_tag": {"type": "string"},
        "wallet_id_tag": {"type": "string", "description": "whose wallet moved: the tag's, or its fleet account's"},
        "kind": {"type": "string"},
        "amount": {**_MONEY, "nullable": False},
        "balance": {**_MONEY, "nullable": False, "description": "the wallet's balance after the movement"},
        "currency": {"type": "string"},
    }),
    "Site": _object({
        "version": {"type": "string"},
        "instance": {"type": "object", "nullable": True, "description": "this process, as recorded in the database",
                     "properties": {"pid": {"type": "integer"}, "host": {"type": "string"},
                                    "started_at": {"type": "string"}}},
        "ocpp": _object({"host": {"type": "string"}, "port": _NULLABLE_INT, "tls_port": _NULLABLE_INT,
                         "plain_port": _NULLABLE_INT}),
        "connected": {"type": "array", "items": {"type": "string"}, "description": "the chargers connected now"},
        "currency": {"type": "string"},
        "wallet": {"type": "boolean"},
        "min_balance": {"type": "string"},
        "stop_on_empty_wallet": {"type": "boolean"},
        "stale_transaction_grace": {"type": "number"},
        "events": _object({"epoch": {"type": "string"}, "seq": {"type": "integer"}},),
    }),
    "Total": {"type": "object", "properties": {"since": {"type": "string"}, "energy_wh": {"type": "number"},
                                               "revenue": {"type": "object", "additionalProperties": {"type": "integer"},
                                                           "description": "minor units per currency"}},
              "required": ["since"]},
    # Stored rows, as the store returns them (the console's own read model): the columns listed
    # are always there; amounts are integers in minor units of their currency.
    "ConnectorRow": _row(["charger_id", "connector_id", "status", "error_code", "info", "updated_at"]),
    "ConfigurationRow": _row(["charger_id", "key", "value", "readonly", "known", "updated_at"]),
    "ReservationRow": _row(["id", "charger_id", "connector_id", "id_tag", "expiry_date", "status", "transaction_id"]),
    "ChargingProfileRow": _row(["charger_id", "connector_id", "profile_id", "stack_level", "purpose", "profile",
                                "status", "set_at"]),
    "SampleRow": _row(["connector_id", "timestamp", "measurand", "value_num"]),
    "PowerSampleRow": _row(["charger_id", "connector_id", "timestamp", "value_num"]),
    "MeterValueRow": _row(["id", "charger_id", "connector_id", "transaction_id", "source", "timestamp", "measurand",
                           "phase", "unit", "context", "location", "format", "value", "value_num", "received_at"]),
    "LedgerRow": _row(["id", "id_tag", "amount", "currency", "kind", "transaction_id", "reason", "balance_after",
                       "created_at"]),
    "FirmwareImage": _object({
        "name": {"type": "string"}, "size": {"type": "integer"}, "sha256": {"type": "string"},
        "added_at": {"type": "string"},
    }),
    "FirmwareAdd": {"type": "object", "additionalProperties": False, "required": ["path"], "properties": {
        "path": {"type": "string", "minLength": 1, "description": "a file on the central system's machine"},
        "name": {"type": "string", "pattern": r"^[^/\\.][^/\\]*$",
                 "description": "its name in the library (default: the file's): no folders, no leading dot"},
    }},
    "ReceivedFile": _object({"name": {"type": "string"}, "size": {"type": "integer"},
                             "receivedAt": {"type": "string", "description": "UTC, when the upload ended"}}),
    "Message": _object({
        "id": {"type": "integer"},
        "charger_id": {"type": "string"},
        "direction": {"type": "string", "enum": ["in", "out"]},
        "timestamp": {"type": "string"},
        "message_type": _NULLABLE_INT,
        "unique_id": _NULLABLE_STRING,
        "action": _NULLABLE_STRING,
        "raw": {"type": "string"},
    }),
}

_CHARGER_ID = {"name": "charger_id", "in": "path", "required": True, "schema": {"type": "string", "minLength": 1}}
# What provisioning takes as a new charger's id: no control characters (C0 or C1), no spaces around it.
CHARGER_ID_PATTERN = r"^[^\x00-\x20\x7f-\x9f\s]([^\x00-\x1f\x7f-\x9f]*[^\x00-\x20\x7f-\x9f\s])?$"
_NEW_CHARGER_ID = {**_CHARGER_ID, "schema": {"type": "string", "minLength": 1, "maxLength": MAX_CHARGER_ID,
                                             "pattern": CHARGER_ID_PATTERN}}
_ID_TAG = {"name": "id_tag", "in": "path", "required": True,
           "schema": {"type": "string", "minLength": 1, "maxLength": MAX_ID_TAG}}
_LIMIT = {"name": "limit", "in": "query", "required": False,
          "schema": {"type": "integer", "minimum": 1, "maximum": 10000, "default": 500}}
_SINCE = {"name": "since", "in": "query", "required": True, "schema": {"type": "string", "format": "date-time"},
          "description": "an RFC 3339 time with its zone, e.g. 2026-11-25T08:00:00Z"}
_TRANSACTION_ID = {"name": "transaction_id", "in": "path", "required": True, "schema": {"type": "integer"}}
_UNAUTHORIZED = {"401": _error("missing or wrong bearer token"),
                 "403": _error("refused: the Host does not name this API, or the request comes from a web page (Origin)")}
_NOT_JSON = {"415": _error("a body that is not Content-Type: application/json")}


_HOSTED_ERRORS = {
    "404": _error("the charger is unknown or not connected, or the firmware image is not in the library"),
    "409": _error("a URL of ours was asked for, but no file server runs (--files-port, --ftp-port)"),
}


def _operation_path(op: Operation) -> dict[str, Any]:
    return {
        "post": {
            "operationId": op.method,
            "tags": ["operations"],
            "summary": f"Send {op.name} to a connected charger and return its answer",
            "parameters": [_CHARGER_ID],
            "requestBody": {"required": True, "content": {"application/json": {"schema": _ref(op.name)}}},
            "responses": {
                "200": _json(_ref(f"{op.name}Response"), f"the charger's {op.name} answer"),
                "400": _error("the body is not a valid OCPP payload for this operation"), **_NOT_JSON,
                "404": _error("the charger is unknown or not connected"),
                **(_HOSTED_ERRORS if op.name in ("UpdateFirmware", "GetDiagnostics", "GetLog") else {}),
                "502": _error("the charger answered with a CALLERROR (its code in `code`) or an invalid payload"),
                "504": _error("the charger did not answer in time"),
                **_UNAUTHORIZED,
            },
        }
    }


def _list(name: str, schema: str, description: str, parameters: list[dict[str, Any]],
          missing: bool = False) -> dict[str, Any]:
    responses = {"200": _json({"type": "array", "items": _ref(schema)}, description),
                 "400": _error("a query parameter is not valid"), **_UNAUTHORIZED}
    if missing:
        responses["404"] = _error("no such charger or transaction")
    return {"get": {"operationId": name, "tags": ["read"], "summary": description, "parameters": parameters,
                    "responses": responses}}


def _total(name: str, description: str) -> dict[str, Any]:
    return {"get": {"operationId": name, "tags": ["read"], "summary": description, "parameters": [_SINCE],
                    "responses": {"200": _json(_ref("Total"), description),
                                  "400": _error("since is missing or not a date or time"), **_UNAUTHORIZED}}}


def _one(name: str, schema: str, description: str, parameter: dict[str, Any]) -> dict[str, Any]:
    return {"get": {
        "operationId": name, "tags": ["read"], "summary": description, "parameters": [parameter],
        "responses": {"200": _json(_ref(schema), description), "400": _error("a parameter is not valid"),
                      "404": _error("not found"), **_UNAUTHORIZED},
    }}


def _delete(name: str, summary: str, parameter: dict[str, Any], missing: str) -> dict[str, Any]:
    return {
        "operationId": name, "tags": ["manage"], "summary": summary, "parameters": [parameter],
        "responses": {"204": {"description": "removed"}, "400": _error("a parameter is not valid"),
                      "404": _error(missing),
                      "409": _error("refused: money in its wallet, child tags or a running session"),
                      **_NOT_JSON, **_UNAUTHORIZED},
    }


def _json_schema(node: Any) -> Any:
    """OpenAPI 3.0's `nullable` as plain JSON Schema (for validating bodies with the same schema)."""
    if isinstance(node, dict):
        out = {k: _json_schema(v) for k, v in node.items() if k != "nullable"}
        if node.get("nullable") and "type" in node:
            out["type"] = [node["type"], "null"]
        return out
    if isinstance(node, list):
        return [_json_schema(v) for v in node]
    return node


@functools.cache
def body_validator(name: str) -> Callable[[Any], Any]:
    """A validator of a manage body (IdTagUpdate, Password), from the schema the document publishes."""
    return fastjsonschema.compile(_json_schema(RESOURCES[name]))


_PROTOCOL = {"type": "string", "enum": ["http", "ftp"], "default": "http",
             "description": "not OCPP: which of our file servers the URL we fill in names"}


def _hosted_transfers(schemas: dict[str, Any]) -> None:
    """UpdateFirmware with a library image in place of `location`, GetDiagnostics and GetLog without
    a location: the central system fills in a one-time URL of its own file server."""
    original = schemas["UpdateFirmware"]
    schemas["UpdateFirmware"] = {"oneOf": [original, {
        "type": "object", "additionalProperties": False, "required": ["firmware", "retrieveDate"],
        "description": "not OCPP: a firmware library image (GET /api/firmware) instead of a location",
        "properties": {"firmware": {"type": "string", "minLength": 1},
                       **{k: v for k, v in original["properties"].items() if k != "location"},
                       "transferProtocol": _PROTOCOL}}]}
    diagnostics = schemas["GetDiagnostics"] = dict(schemas["GetDiagnostics"])
    diagnostics["required"] = [n for n in diagnostics.get("required", []) if n != "location"]
    diagnostics["properties"] = {**diagnostics["properties"], "transferProtocol": _PROTOCOL}
    diagnostics["description"] = "without location: the charger uploads to our file server"
    get_log = schemas["GetLog"] = dict(schemas["GetLog"])
    log_ = dict(get_log["properties"]["log"])
    log_["required"] = [n for n in log_.get("required", []) if n != "remoteLocation"]
    get_log["properties"] = {**get_log["properties"], "log": log_, "transferProtocol": _PROTOCOL}
    get_log["description"] = "without log.remoteLocation: the charger uploads to our file server"


@functools.cache
def document() -> dict[str, Any]:
    schemas: dict[str, Any] = dict(RESOURCES)
    for op in OPERATIONS.values():
        schemas[op.name] = ocpp_schema(op.request_schema)
        schemas[f"{op.name}Response"] = ocpp_schema(op.response_schema)
    # ReserveNow: reservationId may be left out (the site takes the next free one and answers it).
    reserve = schemas["ReserveNow"] = dict(schemas["ReserveNow"])
    reserve["required"] = [name for name in reserve["required"] if name != "reservationId"]
    answer = schemas["ReserveNowResponse"] = dict(schemas["ReserveNowResponse"])
    answer["properties"] = {**answer["properties"], "reservationId": {
        "type": "integer", "description": "the number the site gave the reservation, when the request had none"}}
    _hosted_transfers(schemas)
    paths: dict[str, Any] = {
        "/api/firmware": {
            **_list("list_firmware", "FirmwareImage", "the firmware library: images chargers can be sent", []),
            "post": {
                "operationId": "add_firmware", "tags": ["manage"],
                "summary": "Copy an image from this machine's disk into the firmware library",
                "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("FirmwareAdd")}}},
                "responses": {"201": _json(_ref("FirmwareImage"), "the image as recorded"),
                              "400": _error("not a plain file name, or it cannot be copied"),
                              "404": _error("no such file on the central system's machine"), **_NOT_JSON, **_UNAUTHORIZED},
            },
        },
        "/api/chargers/{charger_id}/diagnostics": _list(
            "list_diagnostics", "ReceivedFile", "the diagnostics and logs the charger uploaded to us, newest first",
            [_CHARGER_ID], missing=True),
        "/api/chargers/{charger_id}/diagnostics/{name}": {"get": {
            "operationId": "get_diagnostics_file", "tags": ["read"], "summary": "One file the charger uploaded",
            "parameters": [_CHARGER_ID, {"name": "name", "in": "path", "required": True,
                                         "schema": {"type": "string", "minLength": 1}}],
            "responses": {"200": {"description": "the file as received",
                                  "content": {"application/octet-stream": {"schema": {"type": "string",
                                                                                      "format": "binary"}}}},
                          "404": _error("no such charger or file"), **_UNAUTHORIZED},
        }},
        "/api/chargers": _list("list_chargers", "Charger", "chargers with their connectors and status", []),
        "/api/chargers/{charger_id}": {
            **_one("get_charger", "Charger", "one charger", _CHARGER_ID),
            "put": {
                "operationId": "put_charger", "tags": ["manage"],
                "summary": "Provision, approve or reject a charger, or update its note, password or security profile",
                "parameters": [_NEW_CHARGER_ID],
                "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("ChargerUpdate")}}},
                "responses": {"200": _json(_ref("Charger"), "the charger as stored"),
                              "400": _error("a value is not valid"), **_NOT_JSON, **_UNAUTHORIZED},
            },
            "delete": _delete("delete_charger", "Forget a charger (its transactions and message log stay)",
                              _CHARGER_ID, "unknown charger"),
        },
        "/api/chargers/{charger_id}/password": {"put": {
            "operationId": "set_charger_password", "tags": ["manage"],
            "summary": "Set the password a charger gives with HTTP Basic auth (security profiles 1-2)",
            "parameters": [_NEW_CHARGER_ID],
            "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("Password")}}},
            "responses": {"200": _json(_ref("Charger"), "the charger, provisioned if it was new"),
                          "400": _error("the password is not acceptable"), **_NOT_JSON, **_UNAUTHORIZED},
        }},
        "/api/transactions": _list("list_transactions", "Transaction", "transactions, newest first; running ones "
                                   "with their energy and cost so far, power and SoC, as the console shows them", [
            {"name": "running", "in": "query", "required": False, "schema": {"type": "boolean"}},
            {"name": "charger_id", "in": "query", "required": False, "schema": {"type": "string"}},
            _LIMIT,
        ]),
        "/api/transactions/{transaction_id}": _one(
            "get_transaction", "Transaction", "one transaction",
            {"name": "transaction_id", "in": "path", "required": True, "schema": {"type": "integer"}},
        ),
        "/api/transactions/{transaction_id}/close": {"post": {
            "operationId": "close_transaction", "tags": ["manage"],
            "summary": "Close a stuck transaction with its last meter value and settle it (closed-by-operator); "
                       "a StopTransaction that comes later replaces the closing and settles the difference",
            "parameters": [{"name": "transaction_id", "in": "path", "required": True, "schema": {"type": "integer"}}],
            "requestBody": {"required": True,
                            "content": {"application/json": {"schema": _ref("TransactionClose")}}},
            "responses": {"200": _json(_ref("Transaction"), "the transaction, closed and settled"),
                          "400": _error("a parameter is not valid"), "404": _error("no such transaction"),
                          "409": _error("the transaction is already stopped"), **_UNAUTHORIZED},
        }},
        "/api/orders": _list("list_orders", "Transaction", "finished transactions with their cost, by stop time", [
            {"name": "from", "in": "query", "required": False, "schema": {"type": "string", "format": "date"}},
            {"name": "to", "in": "query", "required": False, "schema": {"type": "string", "format": "date"},
             "description": "exclusive"},
        ]),
        "/api/id-tags": _list("list_id_tags", "IdTag", "id tags with their wallet balance", []),
        "/api/id-tags/{id_tag}": {
            **_one("get_id_tag", "IdTag", "one id tag", _ID_TAG),
            "put": {
                "operationId": "put_id_tag", "tags": ["manage"], "summary": "Create or update an id tag",
                "parameters": [_ID_TAG],
                "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("IdTagUpdate")}}},
                "responses": {"200": _json(_ref("IdTag"), "the id tag as stored"),
                              "400": _error("a value is not valid"), **_NOT_JSON, **_UNAUTHORIZED},
            },
            "delete": {**_delete("delete_id_tag", "Remove an id tag (its transactions and ledger stay)",
                                 _ID_TAG, "unknown id tag")},
        },
        "/api/events": {"get": {
            "operationId": "events", "tags": ["read"],
            "summary": "The central system's domain events, live, over a WebSocket (connect with Upgrade: "
                       "websocket and the bearer token). Each text frame holds one or more JSON messages, one "
                       "per line: first {\"type\": \"hello\", \"epoch\", \"seq\", \"oldest\", \"instance\"}, "
                       "then {\"type\": \"event\", \"seq\": N, \"event\": {\"type\": \"StatusChanged\", ...}} "
                       "with N increasing by one (a client that fell behind may miss MeterSample and MessageLogged "
                       "events: gaps), and {\"type\": \"resync\", \"epoch\", \"seq\", \"reason\"} when the client "
                       "must read the state again (reason: too_old, restarted, lagging); events then go on from seq.",
            "parameters": [
                {"name": "since", "in": "query", "required": False,
                 "schema": {"type": "integer", "minimum": 0, "maximum": 2**63 - 1},
                 "description": "the last seq this client has: the events after it are sent first, or resync"},
                {"name": "epoch", "in": "query", "required": False, "schema": {"type": "string"},
                 "description": "the epoch of `since` (from hello): another epoch means the service restarted"},
            ],
            "responses": {"101": {"description": "switching to the WebSocket event stream"},
                          "400": _error("a query parameter is not valid"),
                          "426": _error("not a WebSocket upgrade"), **_UNAUTHORIZED},
        }},
        "/api/site": {"get": {
            "operationId": "get_site", "tags": ["read"],
            "summary": "This service: its version and instance, its OCPP ports, the chargers connected now, the "
                       "settings the console shows (currency, wallet rules) and the event stream's epoch and seq",
            "parameters": [],
            "responses": {"200": _json(_ref("Site"), "the site"), **_UNAUTHORIZED},
        }},
        "/api/site/load": {"get": {
            "operationId": "get_site_load", "tags": ["read"],
            "summary": "Load management: the limit, what the site draws, each running session's share and why",
            "parameters": [
                {"name": "history", "in": "query", "required": False, "schema": {"type": "boolean"},
                 "description": "true: with `history`, the site's power and limit at each decision kept"},
                {"name": "since", "in": "query", "required": False, "schema": {"type": "string", "format": "date-time"},
                 "description": "`history` with only the points after this RFC 3339 time (a chart that has the rest)"}],
            "responses": {"200": _json(_ref("SiteLoad"), "the site's load"),
                          "400": _error("a query parameter is not valid"), **_UNAUTHORIZED},
        }},
        "/api/site/limit": {"put": {
            "operationId": "set_site_limit", "tags": ["manage"],
            "summary": "Change the site limit at run time (until the service restarts: the setting is the default)",
            "parameters": [],
            "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("SiteLimit")}}},
            "responses": {"200": _json(_ref("SiteLoad"), "the load with the shares decided for the new limit"),
                          "400": _error("the limit is not a positive number or null"), **_NOT_JSON, **_UNAUTHORIZED},
        }},
        "/api/connectors": _list("connectors", "ConnectorRow", "every connector's stored status", [
            {"name": "charger_id", "in": "query", "required": False, "schema": {"type": "string"}}]),
        "/api/chargers/{charger_id}/configuration": _list(
            "configuration", "ConfigurationRow", "the charger's configuration keys, as last read (GetConfiguration) "
            "or changed", [_CHARGER_ID], missing=True),
        "/api/chargers/{charger_id}/reservations": _list(
            "reservations", "ReservationRow", "the charger's reservations", [_CHARGER_ID], missing=True),
        "/api/chargers/{charger_id}/charging-profiles": _list(
            "charging_profiles", "ChargingProfileRow", "the charging profiles set on the charger", [_CHARGER_ID],
            missing=True),
        "/api/chargers/{charger_id}/samples": _list(
            "charger_samples_since", "SampleRow", "the charger's whole-connector samples since a time, oldest first "
            "(its charts)", [_CHARGER_ID, _SINCE, {
                "name": "measurand", "in": "query", "required": False, "style": "form", "explode": True,
                "schema": {"type": "array", "items": {"type": "string"}},
                "description": "repeat for several; default Power.Active.Import, Energy.Active.Import.Register, SoC"}],
            missing=True),
        "/api/transactions/{transaction_id}/meter-values": _list(
            "meter_values_for", "MeterValueRow", "every meter value of a transaction, in order", [_TRANSACTION_ID],
            missing=True),
        "/api/transactions/{transaction_id}/ledger": _list(
            "ledger_for_transaction", "LedgerRow", "the wallet movements of a transaction", [_TRANSACTION_ID],
            missing=True),
        "/api/power-samples": _list("power_samples_since", "PowerSampleRow", "every connector's power samples "
                                    "since a time, oldest first (the site's power chart)", [_SINCE]),
        "/api/energy-stopped": _total("energy_stopped_since", "energy (Wh) of the transactions stopped since a time"),
        "/api/revenue": _total("revenue_since", "settled revenue per currency (minor units) of the transactions "
                               "stopped since a time"),
        "/api/id-tags/{id_tag}/wallet": {"post": {
            "operationId": "wallet_movement", "tags": ["manage"],
            "summary": "Top up or adjust the wallet an id tag spends (its fleet account's when it has a parent); "
                       "one ledger movement",
            "parameters": [_ID_TAG],
            "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("WalletMovement")}}},
            "responses": {"200": _json(_ref("WalletMoved"), "the movement and the balance after it"),
                          "400": _error("a value is not valid"), "404": _error("unknown id tag"),
                          "409": _error("refused by the wallet"), **_NOT_JSON, **_UNAUTHORIZED},
        }},
        "/api/chargers/{charger_id}/install-operator-ca": {"post": {
            "operationId": "install_operator_ca", "tags": ["operations"],
            "summary": "InstallCertificate (CentralSystemRootCertificate) with the site's own operator CA, which "
                       "only the service holds; no body (or `{}`)",
            "parameters": [_CHARGER_ID],
            "responses": {
                "200": _json(_ref("InstallCertificateResponse"), "the charger's InstallCertificate answer"),
                "400": _error("the operator CA cannot be read or made (the message says why)"),
                "404": _error("the charger is unknown or not connected"),
                "502": _error("the charger answered with a CALLERROR or an invalid payload"),
                "504": _error("the charger did not answer in time"),
                **_UNAUTHORIZED,
            },
        }},
        "/api/export/{kind}": {"get": {
            "operationId": "export", "tags": ["read"],
            "summary": "Orders or wallet movements as CSV, as `ocpp-console export` writes them",
            "parameters": [
                {"name": "kind", "in": "path", "required": True, "schema": {"type": "string", "enum": ["orders", "ledger"]}},
                {"name": "from", "in": "query", "required": False, "schema": {"type": "string", "format": "date"},
                 "description": "first day (local time)"},
                {"name": "to", "in": "query", "required": False, "schema": {"type": "string", "format": "date"},
                 "description": "last day (local time), included"},
            ],
            "responses": {"200": {"description": "CSV with a header row; X-Row-Count says how many rows",
                                  "content": {"text/csv": {"schema": {"type": "string"}}}},
                          "400": _error("a parameter is not valid"), "404": _error("no such export"),
                          **_UNAUTHORIZED},
        }},
        "/api/tariffs": _list("list_tariffs", "Tariff", "the site's tariff and every charger's own, as billing "
                              "applies them", []),
        "/api/messages": _list("list_messages", "Message", "the OCPP message log, newest first", [
            {"name": "charger_id", "in": "query", "required": False, "schema": {"type": "string"}}, _LIMIT,
        ]),
    }
    for op in OPERATIONS.values():
        paths[f"/api/chargers/{{charger_id}}/{op.path_name}"] = _operation_path(op)
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "ocpp-console",
            "version": __version__,
            "description": "The local HTTP API of an ocpp-console central system (OCPP 1.6J). Resources are "
            "snake_case JSON; operation bodies and answers are OCPP payloads exactly as on the wire.",
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        # always: --api-token, or the token file made on first start beside the database
        "security": [{"bearer": []}],
    }

