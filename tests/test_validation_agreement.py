"""The fast schema check (jsonschema-rs) may only say yes where the full one (fastjsonschema)
says yes too: a frame is accepted on the fast check alone, and refused by the full one's rule."""

from __future__ import annotations

from typing import Any

import fastjsonschema
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ocpp_console.csms import protocol


def _words(schema: Any, out: set[str]) -> set[str]:
    """Every property name and enum value in a schema: the vocabulary of near-valid payloads."""
    if isinstance(schema, dict):
        out.update(k for k in schema.get("properties", {}))
        out.update(v for v in schema.get("enum", ()) if isinstance(v, str))
        for value in schema.values():
            _words(value, out)
    elif isinstance(schema, list):
        for value in schema:
            _words(value, out)
    return out


ACTIONS = sorted(a.value for a in protocol.CHARGER_ACTIONS)
VOCABULARY = sorted(set().union(*(_words(protocol._schema(a, False), set()) for a in ACTIONS)))
SCALARS = st.one_of(
    st.sampled_from(VOCABULARY), st.text(max_size=30), st.integers(-(2**40), 2**40), st.sampled_from([0, 1, -1, 2**31]),
    st.floats(allow_nan=False, allow_infinity=False), st.sampled_from([1.0, 0.5, -0.0]), st.booleans(), st.none(),
    st.sampled_from(["2026-11-29T12:00:00.000Z", "12.5", "Wh", "Accepted"]),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(VOCABULARY), inner, max_size=6),
    max_leaves=12,
)


TS = "2026-11-29T12:00:00.000Z"
SEEDS: dict[str, dict[str, Any]] = {  # one valid payload per action, with its optional fields
    "Authorize": {"idTag": "TAG"},
    "BootNotification": {"chargePointVendor": "V", "chargePointModel": "M", "firmwareVersion": "1", "iccid": "1"},
    "DataTransfer": {"vendorId": "V", "messageId": "m", "data": "d"},
    "DiagnosticsStatusNotification": {"status": "Uploaded"},
    "FirmwareStatusNotification": {"status": "Installed"},
    "Heartbeat": {},
    "MeterValues": {"connectorId": 1, "transactionId": 5, "meterValue": [{"timestamp": TS, "sampledValue": [
        {"value": "1", "measurand": "Power.Active.Import", "unit": "W", "phase": "L1", "context": "Sample.Periodic",
         "location": "Outlet", "format": "Raw"}]}]},
    "StartTransaction": {"connectorId": 1, "idTag": "T", "meterStart": 0, "timestamp": TS, "reservationId": 3},
    "StatusNotification": {"connectorId": 1, "errorCode": "NoError", "status": "Available", "info": "i",
                           "timestamp": TS, "vendorId": "v", "vendorErrorCode": "e"},
    "StopTransaction": {"meterStop": 5, "timestamp": TS, "transactionId": 5, "reason": "Local", "idTag": "T",
                        "transactionData": [{"timestamp": TS, "sampledValue": [{"value": "5"}]}]},
    "SecurityEventNotification": {"type": "T", "timestamp": TS, "techInfo": "x"},
    "SignCertificate": {"csr": "-----BEGIN CERTIFICATE REQUEST-----"},
    "SignedFirmwareStatusNotification": {"status": "Installed", "requestId": 1},
    "LogStatusNotification": {"status": "Uploaded", "requestId": 1},
}


def _leaves(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(value, dict):
        return [path] + [p for k, v in value.items() for p in _leaves(v, (*path, k))]
    if isinstance(value, list):
        return [path] + [p for i, v in enumerate(value) for p in _leaves(v, (*path, i))]
    return [path]


def _mutate(payload: Any, path: tuple[Any, ...], new: Any, drop: bool) -> Any:
    if not path:
        return new
    head, *rest = path
    copy = dict(payload) if isinstance(payload, dict) else list(payload)
    if drop and not rest:
        del copy[head]
    elif not rest:
        copy[head] = new
    else:
        copy[head] = _mutate(copy[head], tuple(rest), new, drop)
    return copy


@st.composite
def near_valid(draw: st.DrawFn) -> tuple[str, Any]:
    """A valid payload with one to three of its parts replaced, dropped or added to."""
    action = draw(st.sampled_from(ACTIONS))
    payload: Any = SEEDS[action]
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(_leaves(payload)))
        if path and draw(st.booleans()) and draw(st.booleans()):
            payload = _mutate(payload, path, None, drop=True)
        elif isinstance(_get(payload, path), dict) and draw(st.booleans()):
            payload = _mutate(payload, (*path, draw(st.sampled_from(VOCABULARY))), draw(VALUES), drop=False)
        else:
            current = _get(payload, path)
            new = draw(_like(current)) if draw(st.booleans()) else draw(VALUES)
            payload = _mutate(payload, path, new, drop=False)
    return action, payload


def _like(value: Any) -> st.SearchStrategy[Any]:
    """Values of the same JSON type: most stay valid or fail one rule, the cases that tell."""
    if isinstance(value, bool):
        return st.booleans()
    if isinstance(value, int):
        return st.one_of(st.integers(-2, 10), st.sampled_from([2**31 - 1, 2**31, -(2**31)]), st.just(float(value)))
    if isinstance(value, str):
        return st.one_of(st.sampled_from(VOCABULARY), st.text(max_size=60), st.sampled_from([value.lower(), value * 30]))
    return VALUES


def _get(payload: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        payload = payload[key]
    return payload


def test_every_seed_is_valid() -> None:
    assert set(SEEDS) == set(ACTIONS)
    for action, payload in SEEDS.items():
        protocol._validator(action)(payload)
        assert protocol._passes(action)(payload), action


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=near_valid())
def test_the_fast_check_never_accepts_what_the_full_one_refuses(case: tuple[str, Any]) -> None:
    action, payload = case
    try:
        fast = protocol._passes(action)(payload)
    except (ValueError, OverflowError):
        fast = False
    try:
        protocol._validator(action)(payload)
    except fastjsonschema.JsonSchemaValueException as exc:
        assert not fast, f"{action} {payload!r}: fast check passed, full check refused: {exc}"


def test_the_fast_check_accepts_a_valid_meter_values() -> None:
    payload = {"connectorId": 1, "transactionId": 5, "meterValue": [{"timestamp": "2026-11-29T12:00:00.000Z",
               "sampledValue": [{"value": "12.5", "measurand": "Power.Active.Import", "unit": "kW"}]}]}
    assert protocol._passes("MeterValues")(payload)
    assert not protocol._passes("MeterValues")({**payload, "connectorId": -1})  # our bound: connector >= 0
    assert not protocol._passes("MeterValues")({**payload, "transactionId": 2**31})  # 32 bits


def test_an_empty_answer_is_checked_once_per_action_and_an_invalid_one_every_time() -> None:
    import pytest

    protocol._EMPTY_ANSWERS_VALID.discard("MeterValues")
    protocol.validate_answer("1", "MeterValues", {})
    assert "MeterValues" in protocol._EMPTY_ANSWERS_VALID
    protocol.validate_answer("2", "MeterValues", {})
    for uid in ("3", "4"):  # a BootNotification answer needs its fields: refused each time, never remembered
        with pytest.raises(protocol.FrameError):
            protocol.validate_answer(uid, "BootNotification", {})
    assert "BootNotification" not in protocol._EMPTY_ANSWERS_VALID
    with pytest.raises(protocol.FrameError):
        protocol.validate_answer("5", "Heartbeat", {"currentTime": 5})
