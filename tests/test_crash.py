"""Crash safety: SIGKILL the server while many chargers are mid-transaction; acknowledged means committed."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ocpp.v16 import ChargePoint, call
from websockets.asyncio.client import connect

from tests.conftest import REPORT
from tests.test_cli import free_port

CHARGERS, SESSIONS, SAMPLES = 20, 3, 6


@dataclass
class DurableCharger:
    """Sends its transaction messages one by one and resends each until it is acknowledged,
    reconnecting as often as it takes, as the specification requires of a charger."""

    cp_id: str
    url: str
    acked: list[tuple[str, Any]] = field(default_factory=list)
    reconnects: int = 0
    _cp: ChargePoint | None = None
    _reader: asyncio.Task[None] | None = None

    async def _connect(self) -> ChargePoint:
        while True:
            try:
                ws = await connect(f"{self.url}/{self.cp_id}", subprotocols=["ocpp1.6"], open_timeout=2)
            except OSError:
                await asyncio.sleep(0.1)
                continue
            cp = ChargePoint(self.cp_id, ws, response_timeout=2)
            self._reader = asyncio.create_task(cp.start())
            return cp

    async def send(self, payload: Any) -> Any:
        while True:
            if self._cp is None:
                self._cp = await self._connect()
            try:
                return await self._cp.call(payload)
            except Exception:  # closed under us, or no answer: connect again and resend the same message
                if self._reader:
                    self._reader.cancel()
                with contextlib.suppress(Exception):
                    await self._cp._connection.close()
                self._cp = None
                self.reconnects += 1

    async def run(self) -> None:
        await self.send(call.BootNotification(charge_point_model="Durable", charge_point_vendor="Test"))
        meter = 0
        for s in range(SESSIONS):
            start_ts = f"2026-11-25T{8 + s:02d}:00:00Z"
            tag = f"{self.cp_id}-{s}"
            started = await self.send(call.StartTransaction(connector_id=1, id_tag=tag, meter_start=meter, timestamp=start_ts))
            self.acked.append(("start", (tag, start_ts, meter, started.transaction_id)))
            for k in range(SAMPLES):
                meter += 1000
                ts = f"2026-11-25T{8 + s:02d}:{10 + k:02d}:00Z"
                await self.send(call.MeterValues(connector_id=1, transaction_id=started.transaction_id, meter_value=[
                    {"timestamp": ts, "sampledValue": [{"value": str(meter)}]}]))
                self.acked.append(("meter", (started.transaction_id, ts, str(meter))))
                await asyncio.sleep(0.01)
            await self.send(call.StopTransaction(meter_stop=meter, timestamp=f"2026-11-25T{8 + s:02d}:59:00Z",
                                                 transaction_id=started.transaction_id))
            self.acked.append(("stop", (started.transaction_id, meter)))
        if self._reader:
            self._reader.cancel()
        if self._cp:
            await self._cp._connection.close()


def serve(port: int, db: Path, tmp: Path) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OCPP_CONSOLE_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "ocpp_console", "serve", "--config", str(tmp / "none.toml"), "--host", "127.0.0.1",
         "--port", str(port), "--db", str(db), "--unknown-chargers", "accept", "--unknown-id-tags", "accept"],
        stderr=subprocess.PIPE, text=True, env=env,
    )
    assert proc.stderr is not None
    for line in proc.stderr:
        if "listening" in line:
            return proc
    raise AssertionError("serve did not start")


async def test_sigkill_mid_transaction_loses_nothing_acknowledged(tmp_path: Path, record_property: Any) -> None:
    port, db = free_port(), tmp_path / "crash.sqlite"
    server = serve(port, db, tmp_path)
    chargers = [DurableCharger(f"DUR-{i:02d}", f"ws://127.0.0.1:{port}") for i in range(CHARGERS)]
    runs = asyncio.gather(*(c.run() for c in chargers))
    try:
        # Kill once enough has been acknowledged that every charger is mid-transaction.
        deadline = asyncio.get_running_loop().time() + 20
        while not all(any(kind == "start" for kind, _ in c.acked) for c in chargers):
            assert asyncio.get_running_loop().time() < deadline, "no progress before the kill"
            await asyncio.sleep(0.02)
        before_kill = sum(len(c.acked) for c in chargers)
        server.send_signal(signal.SIGKILL)
        server.wait(timeout=10)
        await asyncio.sleep(0.3)
        server = await asyncio.to_thread(serve, port, db, tmp_path)
        await asyncio.wait_for(runs, 90)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=15)
    assert server.returncode == 0
    con = sqlite3.connect(db)
    checked = 0
    for charger in chargers:
        for kind, key in charger.acked:
            checked += 1
            if kind == "start":
                tag, ts, meter_start, tx = key
                rows = con.execute(
                    "SELECT id FROM transactions WHERE charger_id = ? AND id_tag = ? AND start_timestamp_raw = ?"
                    " AND meter_start = ?", (charger.cp_id, tag, ts, meter_start)).fetchall()
                assert rows == [(tx,)], (charger.cp_id, key, rows)
            elif kind == "meter":
                tx, ts, value = key
                count = con.execute(
                    "SELECT count(*) FROM meter_values WHERE transaction_id = ? AND timestamp = ? AND value = ?",
                    (tx, ts.replace(":00Z", ":00.000Z"), value)).fetchone()[0]
                assert count == 1, (charger.cp_id, key, count)
            else:
                tx, meter_stop = key
                row = con.execute("SELECT meter_stop, stopped_at FROM transactions WHERE id = ?", (tx,)).fetchone()
                assert row is not None and row[0] == meter_stop and row[1] is not None
    # Every transaction ends consistent: stopped, energy = meterStop - meterStart, no strays.
    rows = con.execute("SELECT meter_start, meter_stop, energy_wh, stopped_at FROM transactions").fetchall()
    assert len(rows) == CHARGERS * SESSIONS
    assert all(stopped and energy == stop - start == SAMPLES * 1000 for start, stop, energy, stopped in rows)
    assert con.execute("SELECT count(*) FROM unknown_stops").fetchone()[0] == 0
    assert checked == CHARGERS * SESSIONS * (SAMPLES + 2)
    reconnects = sum(c.reconnects for c in chargers)
    assert reconnects >= CHARGERS  # every charger lost its connection to the kill
    record_property("acknowledged_messages_checked", checked)
    REPORT.append(f"crash test: SIGKILL after {before_kill} acknowledged messages with {CHARGERS} chargers mid-"
                  f"transaction; {reconnects} reconnects; {checked} acknowledged messages checked, each in the "
                  f"database exactly once")
