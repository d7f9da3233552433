"""The benchmark runs (a smoke version: small N, a few seconds) so that it cannot rot. No speed asserted."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_benchmark_smoke_prints_the_table_with_the_baseline() -> None:
    result = subprocess.run([sys.executable, str(ROOT / "bench" / "run.py"), "--smoke"],
                            capture_output=True, text=True, timeout=240, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    table = result.stdout
    assert "| calls/s (MeterValues + Heartbeat) |" in table and "bare ocpp library" in table
    connected = next(line for line in table.splitlines() if line.startswith("| chargers connected"))
    assert connected.split("|")[2].strip() == "20" and connected.split("|")[3].strip() == "20"
