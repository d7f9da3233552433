"""`ocpp-console simulate` against `ocpp-console serve`, each in its own process, as from two shells."""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_cli import free_port

LINE = re.compile(r"^(SIM-\d{3}): (\d+) sessions, (\d+\.\d{3}) kWh, (\d+) reconnects, (\d+) errors$")


def test_n_simulated_chargers_finish_sessions_against_serve(tmp_path: Path) -> None:
    port, db, n = free_port(), tmp_path / "site.sqlite", 3
    env = {k: v for k, v in os.environ.items() if not k.startswith("OCPP_CONSOLE_")}
    serve = subprocess.Popen(
        [sys.executable, "-m", "ocpp_console", "serve", "--config", str(tmp_path / "none.toml"), "--host", "127.0.0.1",
         "--port", str(port), "--db", str(db), "--unknown-chargers", "accept", "--unknown-id-tags", "accept"],
        stderr=subprocess.PIPE, text=True, env=env,
    )
    try:
        assert serve.stderr is not None
        for line in serve.stderr:
            if "listening" in line:
                break
        else:
            pytest.fail("serve did not start")
        sim = subprocess.run(
            [sys.executable, "-m", "ocpp_console", "simulate", "--url", f"ws://127.0.0.1:{port}", "--chargers", str(n),
             "--connectors", "2", "--duration", "4", "--speed", "2000", "--seed", "11"],
            capture_output=True, text=True, timeout=60, env=env,
        )
        assert sim.returncode == 0, sim.stderr
    finally:
        serve.terminate()
        assert serve.wait(timeout=15) == 0
    summaries = [LINE.match(line) for line in sim.stdout.splitlines()]
    assert len(summaries) == n and all(summaries), sim.stdout
    con = sqlite3.connect(db)
    for match in summaries:
        assert match is not None
        cp_id, sessions, kwh, _, errors = match.groups()
        assert int(errors) == 0 and int(sessions) >= 1, match.group(0)
        rows = con.execute(
            "SELECT meter_start, meter_stop, energy_wh, stopped_at FROM transactions WHERE charger_id = ?", (cp_id,)
        ).fetchall()
        assert len(rows) == int(sessions)
        assert all(stopped is not None and energy == stop - start and energy >= 0 for start, stop, energy, stopped in rows)
        assert f"{sum(r[2] for r in rows) / 1000:.3f}" == kwh
    # The energy register in each session's meter values never passes its meterStop.
    beyond = con.execute(
        "SELECT count(*) FROM transactions t JOIN meter_values m ON m.transaction_id = t.id"
        " WHERE m.measurand = 'Energy.Active.Import.Register' AND m.value_num > t.meter_stop"
    ).fetchone()[0]
    samples = con.execute("SELECT count(*) FROM meter_values WHERE transaction_id IS NOT NULL").fetchone()[0]
    assert samples > 0 and beyond == 0
    complete = con.execute("SELECT count(*) FROM transactions WHERE stopped_at IS NOT NULL").fetchone()[0]
    assert complete >= n
    assert con.execute("SELECT count(*) FROM unknown_stops").fetchone()[0] == 0
