"""The benchmark runs (a smoke version: small N, a few seconds) so that it cannot rot. No speed asserted."""

from __future__ import annotations

import json
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


def test_attach_benchmark_smoke_measures_the_stream_and_the_attached_console() -> None:
    """bench/attach_latency.py: serve, a load generator, a raw stream client and an attached console."""
    result = subprocess.run([sys.executable, str(ROOT / "bench" / "attach_latency.py"), "--smoke"],
                            capture_output=True, text=True, timeout=240, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["connected"] == 20 and report["load_errors"] == 0
    assert report["raw_client_events_per_s"][0] > 0  # the raw client read the stream
    assert len(report["windows"]["none"]) == 3 and len(report["windows"]["console"]) == 1
    assert report["key_presses"] > 0 and report["key_to_screen_ms_p50"] > 0
    assert report["console_stream_reconnects"] == 0
