"""OCPP-J framing for 1.6: defensive parsing, compiled schema checks, 1.6 error codes.

The `ocpp` package parses with `json` (accepts NaN, dies on deep nesting), drops frames it
cannot parse without an answer, and reports schema errors with 2.0.1 codes. Every frame is
therefore read here first, and anything wrong becomes the CALLERROR OCPP-J 1.6 prescribes.
"""

from __future__ import annotations

import dataclasses
import functools
from datetime import datetime
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import fastjsonschema
import jsonschema_rs
import ocpp
import orjson
from ocpp.charge_point import camel_to_snake_case, snake_to_camel_case
from ocpp.exceptions import (
    FormationViolationError,
    NotImplementedError as OcppNotImplemented,
    NotSupportedError,
    OccurenceConstraintViolationError,
    OCPPError,
    PropertyConstraintViolationError,
    ProtocolError,
    TypeConstraintViolationError,
)
from ocpp.v16.enums import Action

CALL, CALLRESULT, CALLERROR = 2, 3, 4
INT32 = (-(2**31), 2**31 - 1)
DECIMAL_BOUND = (-(10**12), 10**12)
MAX_UNIQUE_ID = 36

# Actions a charge point may send to a central system (1.6 + security extension).
CHARGER_ACTIONS = frozenset(
    {
        Action.authorize,
        Action.boot_notification,
        Action.data_transfer,
        Action.diagnostics_status_notification,
        Action.firmware_status_notification,
        Action.heartbeat,
        Action.meter_values,
        Action.start_transaction,
        Action.status_notification,
        Action.stop_transaction,
        Action.security_event_notification,
        Action.sign_certificate,
        Action.signed_firmware_status_notification,
        Action.log_status_notification,
    }
)
KNOWN_ACTIONS = frozenset(a.value for a in Action)


@dataclass(slots=True)
class Message:
    """A parsed frame. For a CALL, action and payload are set; for CALLERROR, error fields."""

    message_type: int
    unique_id: str
    action: str | None = None
    payload: Any = None
    error_code: str | None = None
    error_description: str | None = None
    error_details: Any = None
    # a StopTransaction's integer fields beyond 32 bits, set aside before validation (session)
    out_of_range: list[str] | None = None


class FrameError(Exception):
    """A frame that must be answered with a CALLERROR (unique_id '-1' when none could be read)."""

    def __init__(self, unique_id: str, error: OCPPError) -> None:
        super().__init__(error.description)
        self.unique_id = unique_id
        self.error = error


class IgnoredFrame(Exception):
    """A frame OCPP-J says to ignore (unknown MessageTypeId): logged, not answered."""


_UID_SALVAGE = re.compile(r'^\s*\[\s*2\s*,\s*"([^"\\]{1,36})"')


def _error(cls: type[OCPPError], description: str, **details: Any) -> OCPPError:
    err = cls(description=description, details=details or {})
    return err


def parse_frame(raw: str) -> Message:
    """Parse one text frame into a Message, or raise FrameError / IgnoredFrame."""
    try:
        data = orjson.loads(raw)  # strict: no NaN/Infinity, bounded nesting depth
    except orjson.JSONDecodeError as exc:
        salvaged = _UID_SALVAGE.match(raw)
        raise FrameError(
            salvaged.group(1) if salvaged else "-1",
            _error(FormationViolationError, "Frame is not valid JSON", cause=str(exc)[:200]),
        ) from None
    if not isinstance(data, list):
        raise FrameError("-1", _error(FormationViolationError, "Frame is not a JSON array"))
    if not data:
        raise FrameError("-1", _error(ProtocolError, "Frame has no MessageTypeId"))
    type_id = data[0]
    uid = data[1] if len(data) > 1 else None
    uid_ok = isinstance(uid, str) and 0 < len(uid) <= MAX_UNIQUE_ID
    answer_to = uid if uid_ok else "-1"
    if type(type_id) is not int:
        raise FrameError(answer_to, _error(FormationViolationError, "MessageTypeId is not an integer"))
    if type_id not in (CALL, CALLRESULT, CALLERROR):
        raise IgnoredFrame(f"unknown MessageTypeId {type_id}")
    if len(data) < 2:
        raise FrameError("-1", _error(ProtocolError, "Frame has no UniqueId"))
    if not isinstance(uid, str):
        raise FrameError("-1", _error(TypeConstraintViolationError, "UniqueId must be a string"))
    if not uid_ok:
        raise FrameError("-1", _error(PropertyConstraintViolationError, "UniqueId must be 1 to 36 characters"))

    if type_id == CALL:
        if len(data) < 4:
            raise FrameError(uid, _error(ProtocolError, "CALL must have 4 elements: [2, id, action, payload]"))
        if len(data) > 4:
            raise FrameError(uid, _error(FormationViolationError, "CALL has more than 4 elements"))
        action, payload = data[2], data[3]
        if not isinstance(action, str):
            raise FrameError(uid, _error(TypeConstraintViolationError, "Action must be a string"))
        if not isinstance(payload, dict):
            raise FrameError(uid, _error(FormationViolationError, "Payload must be a JSON object"))
        return Message(CALL, uid, action=action, payload=payload)
    if type_id == CALLRESULT:
        if len(data) != 3 or not isinstance(data[2], dict):
            raise IgnoredFrame("malformed CALLRESULT")
        return Message(CALLRESULT, uid, payload=data[2])
    if len(data) < 4:
        raise IgnoredFrame("malformed CALLERROR")
    details = data[4] if len(data) > 4 else {}
    return Message(
        CALLERROR, uid, error_code=str(data[2]), error_description=str(data[3]), error_details=details
    )


def check_action(uid: str, action: str) -> None:
    """NotImplemented for an unknown action, NotSupported for one a charger may not send us."""
    if action not in KNOWN_ACTIONS:
        raise FrameError(uid, _error(OcppNotImplemented, f"Unknown action {action!r}"))
    if action not in CHARGER_ACTIONS:
        raise FrameError(uid, _error(NotSupportedError, f"{action} is not sent to a central system"))


# -- schema validation ------------------------------------------------------------------

_SCHEMA_DIR = Path(ocpp.__file__).parent / "v16" / "schemas"

_RULE_TO_ERROR: dict[str, type[OCPPError]] = {
    "type": TypeConstraintViolationError,
    "required": ProtocolError,
    "additionalProperties": FormationViolationError,
    "minItems": OccurenceConstraintViolationError,
    "maxItems": OccurenceConstraintViolationError,
}


def _prepare(schema: Any, keep_formats: bool = False) -> Any:
    """Drop `format` keywords (a charger's timestamps are checked and flagged by us, never
    rejected) and accept the errata spelling Celsius beside the schema's Celcius."""
    if isinstance(schema, dict):
        out = {}
        for key, value in schema.items():
            if key == "format" and isinstance(value, str) and not keep_formats:
                continue
            if key == "enum" and isinstance(value, list) and "Celcius" in value and "Celsius" not in value:
                value = [*value, "Celsius"]
            out[key] = _prepare(value, keep_formats)
        if out.get("type") == "integer" or (keep_formats and out.get("type") == "number"):
            # OCPP 1.6 part 4 (data types): integer is 32-bit signed, both ways (a charger's 2**63
            # would overflow SQLite, 2**64 arrive as a float); what we send, a decimal gets a
            # practical bound too (the ocpp package checks multipleOf with 28-digit decimals)
            low, high = INT32 if out["type"] == "integer" else DECIMAL_BOUND
            out.setdefault("minimum", low)
            out.setdefault("maximum", high)
        props = out.get("properties")
        if isinstance(props, dict) and isinstance(props.get("connectorId"), dict):
            # connector 0 is the charger as a whole; a negative one names nothing
            props["connectorId"] = {**props["connectorId"], "minimum": max(0, props["connectorId"].get("minimum", 0))}
        return out
    if isinstance(schema, list):
        return [_prepare(v, keep_formats) for v in schema]
    return schema


def _is_date_time(value: str) -> bool:
    """RFC 3339 date-time: a full date and time with a zone (fromisoformat alone takes naive ones)."""
    if len(value) < 20 or value[10] not in "Tt":
        return False
    try:
        return datetime.fromisoformat(value.replace("z", "Z")).tzinfo is not None
    except ValueError:
        return False


def _schema(schema_name: str, strict: bool) -> Any:
    path = _SCHEMA_DIR / f"{schema_name}.json"
    schema = orjson.loads(path.read_bytes().removeprefix(b"\xef\xbb\xbf"))
    schema.pop("$schema", None)
    return _prepare(schema, keep_formats=strict)


@functools.cache
def _validator(schema_name: str, strict: bool = False) -> Callable[[Any], Any]:
    return fastjsonschema.compile(_schema(schema_name, strict), formats={"date-time": _is_date_time})


@functools.cache
def _passes(schema_name: str) -> Callable[[Any], bool]:
    """The same schema compiled by jsonschema-rs: yes or no in ~1 us where fastjsonschema takes
    ~13 us for a MeterValues (bench/README.md, issue 17). Only a yes is taken from it; a frame it
    refuses goes to fastjsonschema, whose error says which rule failed and so which CALLERROR."""
    return jsonschema_rs.Draft4Validator(_schema(schema_name, False)).is_valid


def validate_outgoing(schema_name: str, payload: dict[str, Any]) -> None:
    """What we send is held to the whole schema, timestamps' format included (FrameError if not)."""
    try:
        _validator(schema_name, strict=True)(payload)
    except fastjsonschema.JsonSchemaValueException as exc:
        _raise_for("-", exc)


def _fix_enum_case(payload: Any, exc: fastjsonschema.JsonSchemaValueException) -> str | None:
    """Replace an enum value given in the wrong case with the schema's spelling; describe the fix."""
    if exc.rule != "enum" or not isinstance(exc.value, str) or not exc.path:
        return None
    matches = [v for v in (exc.rule_definition or ()) if isinstance(v, str) and v.lower() == exc.value.lower()]
    if not matches:
        return None
    *parents, last = exc.path[1:]
    node = payload
    for key in parents:
        node = node[int(key)] if isinstance(node, list) else node[key]
    node[int(last) if isinstance(node, list) else last] = matches[0]
    return f"{'.'.join(exc.path[1:])}: {exc.value!r} read as {matches[0]!r}"


def validate(uid: str, schema_name: str, payload: dict[str, Any], lenient: list[str] | None = None) -> None:
    """Check a payload against the official 1.6 schema; raise FrameError with the 1.6 code.

    With `lenient` (a list that collects what was tolerated), enum values in the wrong case
    are corrected in place instead of refused.
    """
    try:
        if _passes(schema_name)(payload):
            return
    except (ValueError, OverflowError):  # a value it cannot take in (an integer beyond 64 bits)
        pass
    for _ in range(32):
        try:
            _validator(schema_name)(payload)
            return
        except fastjsonschema.JsonSchemaValueException as exc:
            fixed = _fix_enum_case(payload, exc) if lenient is not None else None
            if fixed is None:
                _raise_for(uid, exc)
            lenient.append(fixed)  # type: ignore[union-attr]


_EMPTY_ANSWERS_VALID: set[str] = set()


def validate_answer(uid: str, action: str, payload: dict[str, Any]) -> None:
    """Our answer to a charger's call, held to its schema (FrameError if not). An empty answer
    (MeterValues, StatusNotification, ...) is the same object every time: checked once per action."""
    if payload or action not in _EMPTY_ANSWERS_VALID:
        validate(uid, f"{action}Response", payload)
        if not payload:
            _EMPTY_ANSWERS_VALID.add(action)


def out_of_int32(payload: dict[str, Any], fields: tuple[str, ...]) -> list[str]:
    """The integer fields of `payload` beyond 32 bits (an integral float is a JSON integer too)."""
    found = []
    for name in fields:
        value = payload.get(name)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue  # a wrong type is the schema's to refuse
        if isinstance(value, float) and not value.is_integer():
            continue
        if not INT32[0] <= value <= INT32[1]:
            found.append(name)
    return found


def _raise_for(uid: str, exc: fastjsonschema.JsonSchemaValueException) -> None:
    cls = _RULE_TO_ERROR.get(exc.rule or "", PropertyConstraintViolationError)
    field = (exc.name or "data").replace("data.", "", 1)
    raise FrameError(uid, _error(cls, f"{field}: {exc.message.replace('data.', '', 1)}", field=field)) from None


# -- key conversion (cached: the regexes in the ocpp package cost ~170 us per message) ---


@functools.cache
def snake_key(key: str) -> str:
    return next(iter(camel_to_snake_case({key: None})))


@functools.cache
def _camel_key(key: str) -> str:
    return next(iter(snake_to_camel_case({key: None})))


def snake_keys(payload: dict[str, Any]) -> dict[str, Any]:
    """A call's top-level keys as handler arguments. Nested objects stay as the charger sent
    them: the handlers that read nested data (meter values, transaction data) read it camelCase
    from the frame, so converting them would be work thrown away."""
    return {snake_key(k): v for k, v in payload.items()}


@functools.cache
def _fields(cls: type) -> tuple[tuple[str, str], ...]:
    return tuple((f.name, _camel_key(f.name)) for f in dataclasses.fields(cls))


def as_payload(result: Any) -> dict[str, Any]:
    """A call or call_result dataclass as the JSON object it stands for: camelCase keys, no None
    anywhere, nested dataclasses as objects (what the ocpp package's serialize_as_dict,
    remove_nones and key conversion make of it, without its deep copy)."""
    out: dict[str, Any] = {}
    for name, camel in _fields(type(result)):
        value = getattr(result, name)
        if value is not None:
            out[camel] = value if isinstance(value, (str, int, float)) else _plain(value)
    return out


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return as_payload(value)
    if isinstance(value, dict):
        return {_camel_key(k): _plain(v) for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value if v is not None]
    return value


def to_camel(data: Any) -> Any:
    if isinstance(data, dict):
        return {_camel_key(k): to_camel(v) for k, v in data.items()}
    if isinstance(data, list):
        return [to_camel(v) for v in data]
    return data


# -- serialisation -----------------------------------------------------------------------


def _default(obj: Any) -> Any:
    from decimal import Decimal

    if isinstance(obj, Decimal):
        return float(obj)
    raise TypeError(f"cannot serialise {type(obj).__name__}")


def dumps(frame: Any) -> str:
    return orjson.dumps(frame, default=_default).decode()


def call_result(uid: str, payload: dict[str, Any]) -> str:
    return dumps([CALLRESULT, uid, payload])


def call_error(uid: str, error: OCPPError) -> str:
    details = error.details if isinstance(error.details, dict) else {}
    return dumps([CALLERROR, uid, error.code, error.description or "", details])
