"""Running as a service: `serve` says where its API and event stream are, and `ocpp-console
backup FILE` copies the database consistently while it writes."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from ocpp_console.cli import main
from tests.test_cli import free_port

TIMEOUT = 30.0


class Served:
    """`ocpp-console serve` in a subprocess; its stderr lines, read as they come."""

    def __init__(self, tmp_path: Path, *args: str, port: int | None = None) -> None:
        self.db = tmp_path / "site.sqlite"
        env = {k: v for k, v in os.environ.items() if not k.startswith("OCPP_CONSOLE_")}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ocpp_console", "serve", "--config", str(tmp_path / "none.toml"),
             "--host", "127.0.0.1", "--port", str(port or free_port()), "--db", str(self.db), *args],
            stderr=subprocess.PIPE, text=True, env=env,
        )
        self.lines: list[str] = []
        self._new = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            with self._new:
                self.lines.append(line)
                self._new.notify_all()
        with self._new:
            self._new.notify_all()

    def wait_for(self, pattern: str, timeout: float = TIMEOUT) -> re.Match[str]:
        regex = re.compile(pattern)
        with self._new:
            ok = self._new.wait_for(
                lambda: any(regex.search(line) for line in self.lines) or self.proc.poll() is not None, timeout)
            for line in self.lines:
                if found := regex.search(line):
                    return found
        raise AssertionError(f"serve never logged {pattern!r} (ok={ok}): {''.join(self.lines)}")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=TIMEOUT)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()


@pytest.fixture
def demo_site(tmp_path: Path) -> Iterator[Served]:
    """A demo site (simulated chargers charging at x30): its database is written all the time."""
    served = Served(tmp_path, "--demo", "--demo-chargers", "3", "--api-port", "0")
    try:
        yield served
    finally:
        served.stop()


def test_serve_logs_the_api_and_event_stream_urls(demo_site: Served, tmp_path: Path) -> None:
    api = demo_site.wait_for(r"HTTP API on (http://127\.0\.0\.1:(\d+))/api \(OpenAPI: .*\); its bearer token is in (\S+)")
    url, port, token_file = api.group(1), api.group(2), api.group(3)
    stream = demo_site.wait_for(r"event stream on (ws://\S+) \(WebSocket, same token\)")
    assert stream.group(1) == f"ws://127.0.0.1:{port}/api/events"
    assert Path(token_file) == tmp_path / "api-token"
    token = Path(token_file).read_text().strip()

    async def listen() -> list[dict[str, object]]:
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as http:
            async with http.ws_connect(stream.group(1)) as ws:
                messages: list[dict[str, object]] = []
                while not any(m.get("type") == "event" for m in messages):
                    frame = await ws.receive(TIMEOUT)
                    assert frame.type == aiohttp.WSMsgType.TEXT, frame
                    messages += [json.loads(line) for line in frame.data.split("\n")]
                return messages

    messages = asyncio.run(asyncio.wait_for(listen(), TIMEOUT))
    assert messages[0]["type"] == "hello" and messages[0]["instance"]["pid"] == demo_site.proc.pid
    assert url.startswith("http://127.0.0.1:")
    assert demo_site.stop() == 0
    assert "Traceback" not in "".join(demo_site.lines)


def test_serve_without_an_api_says_so(tmp_path: Path) -> None:
    served = Served(tmp_path)
    try:
        served.wait_for(r"no HTTP API \(nor event stream\): give --api-port")
    finally:
        assert served.stop() == 0


def test_backup_while_serve_writes(demo_site: Served, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    demo_site.wait_for(r"event stream on")
    db = demo_site.db

    def counts(con: sqlite3.Connection) -> tuple[int, int]:
        return (con.execute("SELECT count(*) FROM transactions").fetchone()[0],
                con.execute("SELECT count(*) FROM meter_values").fetchone()[0])

    live = sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True)
    # wait (on the data, with a deadline) until the demo has sessions with meter values
    end = time.monotonic() + TIMEOUT
    while not (counts(live)[0] >= 1 and counts(live)[1] >= 10):
        assert time.monotonic() < end, f"the demo wrote nothing: {counts(live)}"
        time.sleep(0.1)
    copy = tmp_path / "backup" / "site-copy.sqlite"
    copy.parent.mkdir()
    assert main(["backup", str(copy), "--db", str(db), "--config", str(tmp_path / "none.toml")]) == 0
    assert f"copied to {copy}" in capsys.readouterr().err
    assert demo_site.proc.poll() is None  # the service ran on through the copy
    taken = counts(live)
    con = sqlite3.connect(copy)
    assert con.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert con.execute("PRAGMA journal_mode").fetchone() == ("delete",)  # one file, no -wal needed
    tx, samples = counts(con)
    assert tx >= 1 and samples >= 10
    assert tx <= taken[0] and samples <= taken[1]  # a snapshot from during the run, not later
    assert con.execute("SELECT count(*) FROM chargers").fetchone()[0] == 3
    assert not copy.with_name(copy.name + ".partial").exists()
    con.close()
    live.close()

    # an existing file is kept unless --force
    before = copy.read_bytes()
    assert main(["backup", str(copy), "--db", str(db), "--config", str(tmp_path / "none.toml")]) == 1
    assert "exists: give --force" in capsys.readouterr().err
    assert copy.read_bytes() == before
    assert main(["backup", str(copy), "--force", "--db", str(db), "--config", str(tmp_path / "none.toml")]) == 0
    with sqlite3.connect(copy) as again:
        assert again.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert counts(again)[0] >= tx and counts(again)[1] >= samples
    assert demo_site.stop() == 0


def test_backup_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    none = str(tmp_path / "none.toml")
    assert main(["backup", str(tmp_path / "copy.sqlite"), "--db", str(tmp_path / "missing.sqlite"), "--config", none]) == 1
    assert "no database at" in capsys.readouterr().err
    assert not (tmp_path / "copy.sqlite").exists()
    with pytest.raises(SystemExit) as usage:
        main(["backup"])  # FILE is required: a malformed command line
    assert usage.value.code == 2
