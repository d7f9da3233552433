"""Generated garbage and schema-violating payloads against a live server: it stays up and answers."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from websockets.asyncio.client import connect

from ocpp_console.csms import CentralSystem
from ocpp_console.csms.protocol import CHARGER_ACTIONS
from ocpp_console.settings import load_settings

CODES_16 = {"NotImplemented", "NotSupported", "InternalError", "ProtocolError", "SecurityError", "FormationViolation",
            "PropertyConstraintViolation", "OccurenceConstraintViolation", "TypeConstraintViolation", "GenericError"}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=12,
)
fields = st.sampled_from(["connectorId", "idTag", "meterStart", "timestamp", "transactionId", "meterValue", "status",
                          "errorCode", "chargePointVendor", "chargePointModel", "vendorId", "meterStop", "reason"])
payloads = st.dictionaries(fields | st.text(max_size=8), json_values, max_size=6)
calls = st.builds(lambda uid, action, payload: json.dumps([2, uid, action, payload]),
                  st.text(min_size=1, max_size=36).filter(lambda u: u != "hb"),
                  st.sampled_from(sorted(a.value for a in CHARGER_ACTIONS)) | st.text(max_size=20), payloads)
garbage = st.text(max_size=200) | json_values.map(json.dumps) | calls
frames = st.lists(garbage, min_size=1, max_size=8)


async def _exercise(tmp: Path, batch: list[str]) -> list[Any]:
    cfg = load_settings(tmp / "none.toml", host="127.0.0.1", port=0, db=tmp / "fuzz.sqlite", unknown_chargers="accept")
    async with CentralSystem(cfg) as system:
        async with connect(f"ws://127.0.0.1:{system.port}/FUZZ", subprotocols=["ocpp1.6"], max_size=None) as ws:
            await ws.send(json.dumps([2, "boot", "BootNotification", {"chargePointVendor": "V", "chargePointModel": "M"}]))
            await ws.recv()
            for frame in batch:
                await ws.send(frame)
            await ws.send(json.dumps([2, "hb", "Heartbeat", {}]))
            answers = []
            while True:
                answer = json.loads(await asyncio.wait_for(ws.recv(), 10))
                answers.append(answer)
                if answer[1] == "hb":
                    assert answer[0] == 3
                    return answers


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batch=frames)
def test_garbage_never_brings_the_server_down(tmp_path_factory: pytest.TempPathFactory, batch: list[str]) -> None:
    answers = asyncio.run(_exercise(tmp_path_factory.mktemp("fuzz"), batch))
    for answer in answers:
        assert isinstance(answer, list) and answer[0] in (3, 4)
        if answer[0] == 4:
            assert answer[2] in CODES_16 and isinstance(answer[3], str) and isinstance(answer[4], dict)
