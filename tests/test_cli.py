"""The CLI contract: `ocpp-console serve` as other tools run it, and the settings precedence."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect

from ocpp_console.cli import build_parser, settings_from_args
from ocpp_console.settings import Settings
from tests.clients import TS
from tests.schemas import assert_valid_response


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_every_setting_has_a_flag_in_both_helps() -> None:
    for argv in ([], ["serve"]):
        parser = build_parser()
        text = subprocess.run(
            [sys.executable, "-m", "ocpp_console", *argv, "--help"], capture_output=True, text=True, check=True
        ).stdout
        for name in Settings.model_fields:
            assert "--" + name.replace("_", "-") in text, (argv, name)
            assert f"OCPP_CONSOLE_{name.upper()}" in text
        assert parser is not None


def test_precedence_cli_over_env_over_toml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "config.toml"
    config.write_text('port = 9100\nheartbeat_interval = 111\nunknown_id_tags = "accept"\ncall_timeout = 7.5\n')
    monkeypatch.setenv("OCPP_CONSOLE_PORT", "9200")
    monkeypatch.setenv("OCPP_CONSOLE_HEARTBEAT_INTERVAL", "222")
    args = build_parser().parse_args(["serve", "--config", str(config), "--port", "9300"])
    settings = settings_from_args(args)
    assert settings.port == 9300  # flag
    assert settings.heartbeat_interval == 222  # environment
    assert settings.unknown_id_tags == "accept" and settings.call_timeout == 7.5  # file
    assert settings.unknown_chargers == "pending"  # default


def test_bad_setting_is_a_clear_error(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "ocpp_console", "serve", "--config", str(tmp_path / "none.toml"), "--port", "99999"],
        capture_output=True, text=True, timeout=30,
    )
    assert result.returncode == 2
    assert "port" in result.stderr and "Traceback" not in result.stderr


async def _full_session(port: int) -> list[str]:
    """A whole session by a plain client; every answer checked against the official schemas."""
    problems: list[str] = []
    async with connect(f"ws://127.0.0.1:{port}/EXT-1", subprotocols=["ocpp1.6"]) as ws:
        async def rpc(action: str, payload: dict[str, Any]) -> dict[str, Any]:
            uid = f"{action[:20]}-{id(payload) % 10**9}"
            await ws.send(json.dumps([2, uid, action, payload]))
            frame = json.loads(await asyncio.wait_for(ws.recv(), 10))
            if frame[0] != 3 or frame[1] != uid:
                problems.append(f"{action}: {frame}")
                return {}
            assert_valid_response(action, frame[2])
            return frame[2]

        boot = await rpc("BootNotification", {"chargePointVendor": "Ext", "chargePointModel": "One"})
        assert boot["status"] == "Accepted"
        await rpc("Heartbeat", {})
        await rpc("StatusNotification", {"connectorId": 1, "errorCode": "NoError", "status": "Preparing"})
        await rpc("Authorize", {"idTag": "EXT"})
        tx = (await rpc("StartTransaction", {"connectorId": 1, "idTag": "EXT", "meterStart": 0, "timestamp": TS}))["transactionId"]
        await rpc("MeterValues", {"connectorId": 1, "transactionId": tx,
                                  "meterValue": [{"timestamp": TS, "sampledValue": [{"value": "100"}]}]})
        await rpc("StopTransaction", {"transactionId": tx, "meterStop": 200, "timestamp": TS, "idTag": "EXT"})
        await rpc("DataTransfer", {"vendorId": "ext"})
        await rpc("FirmwareStatusNotification", {"status": "Idle"})
        await rpc("DiagnosticsStatusNotification", {"status": "Idle"})
    return problems


def test_serve_runs_a_session_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    port = free_port()
    db = tmp_path / "served.sqlite"
    env = {k: v for k, v in os.environ.items() if not k.startswith("OCPP_CONSOLE_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "ocpp_console", "serve", "--config", str(tmp_path / "none.toml"), "--host", "127.0.0.1",
         "--port", str(port), "--db", str(db), "--unknown-chargers", "accept"],
        stderr=subprocess.PIPE, text=True, env=env,
    )
    try:
        assert proc.stderr is not None
        started = []
        for line in proc.stderr:
            started.append(line)
            if "listening" in line:
                break
        else:
            pytest.fail("serve did not start")
        assert any(f"database {db}" in line for line in started)  # the log names the database
        assert asyncio.run(_full_session(port)) == []
        proc.send_signal(signal.SIGTERM)
        rest = proc.stderr.read()
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert "EXT-1: connected" in rest or "EXT-1" in rest
    assert "Traceback" not in rest
    # Closed cleanly: the WAL was checkpointed away and the data is all there.
    assert not Path(str(db) + "-wal").exists() or Path(str(db) + "-wal").stat().st_size == 0
    con = sqlite3.connect(db)
    assert con.execute("SELECT energy_wh FROM transactions").fetchall() == [(200,)]
    assert con.execute("SELECT connected FROM chargers WHERE id='EXT-1'").fetchone() == (0,)


def test_sigint_also_stops_cleanly(tmp_path: Path) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "ocpp_console", "serve", "--config", str(tmp_path / "none.toml"), "--host", "127.0.0.1",
         "--port", str(port), "--db", str(tmp_path / "x.sqlite")],
        stderr=subprocess.PIPE, text=True,
    )
    assert proc.stderr is not None
    for line in proc.stderr:
        if "listening" in line:
            break
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=15) == 0


def test_port_in_use_is_a_clear_error_and_exits(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "ocpp_console", "serve", "--config", str(tmp_path / "none.toml"),
             "--host", "127.0.0.1", "--port", str(port), "--db", str(tmp_path / "x.sqlite")],
            capture_output=True, text=True, timeout=30,
        )
    assert result.returncode == 1
    assert "address already in use" in result.stderr.lower() and "Traceback" not in result.stderr


def test_serve_demo_shows_live_chargers_within_seconds(tmp_path: Path) -> None:
    import time

    port, db = free_port(), tmp_path / "demo.sqlite"
    env = {k: v for k, v in os.environ.items() if not k.startswith("OCPP_CONSOLE_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "ocpp_console", "serve", "--demo", "--config", str(tmp_path / "none.toml"),
         "--host", "127.0.0.1", "--port", str(port), "--db", str(db)],
        stderr=subprocess.DEVNULL, env=env,
    )
    try:
        deadline = time.monotonic() + 20
        booted = 0
        while time.monotonic() < deadline:
            if db.exists():
                try:
                    con = sqlite3.connect(db)
                    booted = con.execute(
                        "SELECT count(*) FROM chargers WHERE connected = 1 AND registration = 'Accepted'"
                        " AND last_boot IS NOT NULL"
                    ).fetchone()[0]
                    con.close()
                except sqlite3.OperationalError:
                    booted = 0
            if booted == 4:
                break
            time.sleep(0.2)
        assert booted == 4
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    con = sqlite3.connect(db)
    assert con.execute("SELECT count(*) FROM transactions WHERE stopped_at IS NULL").fetchone()[0] == 0


def test_an_explicit_database_in_a_missing_folder_is_refused(tmp_path: Path) -> None:
    """--db naming a folder that does not exist is a typo, not a new site: refused with one line and
    exit code 2, nothing created."""
    missing = tmp_path / "no-such-folder" / "site.sqlite"
    for argv in (["serve", "--db", str(missing)], ["chargers", "list", "--db", str(missing)]):
        done = subprocess.run([sys.executable, "-m", "ocpp_console", *argv, "--config", str(tmp_path / "none.toml")],
                              capture_output=True, text=True, timeout=30)
        assert done.returncode == 2, done.stderr
        assert f"the database folder {missing.parent} does not exist" in done.stderr
        assert "Traceback" not in done.stderr and not missing.parent.exists()


def test_ctrl_c_at_the_password_prompt_is_one_line_and_exit_code_130(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "ocpp_console", "chargers", "set-password", "CP-1", "--db", str(tmp_path / "s.sqlite"),
         "--config", str(tmp_path / "none.toml")],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stderr is not None
        seen = ""
        while "password for CP-1" not in seen:  # the prompt is up: the process waits for input
            char = proc.stderr.read(1)
            assert char, f"no prompt: {seen!r}"
            seen += char
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=15) == 130
        rest = proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
    assert "Traceback" not in rest and rest.strip().splitlines()[-1] == "ocpp-console: interrupted"
    assert len([line for line in rest.splitlines() if line.strip(" :")]) == 1  # after the prompt, one line
