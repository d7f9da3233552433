"""The README's shell commands, run as an operator runs them: `python -m ocpp_console` in a
subprocess, against SQLite files under tmp_path and, where a command needs one, a real running
`serve` on 127.0.0.1 with ephemeral ports. The README's own lines are read from the README and run
(with --db/--config added and ports filled in), so that a changed README is a changed test.

`test_every_command_of_the_readme_has_a_test` fails when the Commands table or a shell block
names a command that no test here runs.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ocpp_console.export import LEDGER_COLUMNS, ORDER_COLUMNS

README = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
TIMEOUT = 60

# A Commands-table entry or shell line (its subcommand) -> the test that runs it.
COVERAGE = {
    "console": "test_the_console_and_the_demo_console",
    "--demo": "test_the_console_and_the_demo_console",
    "serve": "test_serve_call_and_simulate_against_a_running_instance",
    "simulate": "test_serve_call_and_simulate_against_a_running_instance",
    "export": "test_the_export_lines",
    "chargers": "test_the_provisioning_lines",
    "tags": "test_the_provisioning_lines",
    "tariffs": "test_tariffs_list_says_whose_settings_it_shows",
    "import": "test_the_import_files_of_the_readme",
    "call": "test_serve_call_and_simulate_against_a_running_instance",
    "ca": "test_the_ca_lines",
    "backup": "test_the_running_as_a_service_section",
    "attach": "test_attach_to_a_running_serve",
    "firmware": "test_the_firmware_lines",
}


def _command_key(command: str) -> str:
    words = shlex.split(command.replace("[", "").replace("]", "").replace("\\|", "|"))
    assert words[0] == "ocpp-console", command
    rest = [w for w in words[1:] if w != "options"]
    if not rest:
        return "console"
    if rest[0] == "--demo":
        return "--demo"
    if rest[0].startswith("-"):
        return "console"
    return rest[0]


def readme_table_commands() -> list[str]:
    section = README.split("## Commands", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^\| `(ocpp-console[^`]*)` \|", section, flags=re.M)


def readme_shell_blocks(section: str | None = None) -> list[list[str]]:
    text = README if section is None else README.split(f"## {section}", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", text, flags=re.S)
    return [[line for line in block.splitlines() if line.strip()] for block in blocks]


def readme_block(language: str, marker: str) -> str:
    for block in re.findall(rf"```{language}\n(.*?)```", README, flags=re.S):
        if marker in block:
            return block
    raise AssertionError(f"no ```{language} block with {marker!r} in the README")


def test_every_command_of_the_readme_has_a_test() -> None:
    table = readme_table_commands()
    assert len(table) >= 11, table
    lines = [line for block in readme_shell_blocks() for line in block if line.startswith("ocpp-console")]
    assert len(lines) >= 20, lines
    for command in table + [line.split("#")[0] for line in lines]:
        key = _command_key(command.split(" ... ")[0])
        assert key in COVERAGE, f"README command {command!r} has no test (add it to COVERAGE)"
        assert callable(globals().get(COVERAGE[key])), COVERAGE[key]


# -- running it ---------------------------------------------------------------------------------


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """The operator's shell: no OCPP_CONSOLE_ variables, and the user directories (the default
    database, the demo's, the config file, the log) under tmp_path."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OCPP_CONSOLE_")}
    for name in ("XDG_DATA_HOME", "XDG_CONFIG_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME"):
        clean[name] = str(tmp_path / "home" / name.lower())
    clean["TZ"] = "UTC"
    return clean


def ocpp(env: dict[str, str], *args: str, timeout: float = TIMEOUT, **kw: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ocpp_console", *args], capture_output=True, text=True,
                          env=env, timeout=timeout, **kw)


def run_line(env: dict[str, str], line: str, *extra: str, **kw: Any) -> subprocess.CompletedProcess[str]:
    """A README line: its comment cut off, `[--json]` as --json, then `extra` (--db, --config)."""
    words = shlex.split(line.replace("[--json]", "--json"), comments=True)
    assert words[0] == "ocpp-console", line
    return ocpp(env, *words[1:], *extra, **kw)


class Served:
    """`ocpp-console serve ...` in a subprocess; its stderr log collected line by line."""

    def __init__(self, env: dict[str, str], *args: str) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "ocpp_console", "serve", *args],
                                     stderr=subprocess.PIPE, text=True, env=env)
        self.lines: list[str] = []
        self._changed = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()
        listening = self.wait_for(lambda line: "central system listening on" in line)
        self.port = int(re.search(r":(\d+)/<chargePointId>", listening).group(1))  # type: ignore[union-attr]
        self.api_port: int | None = None
        if "--api-port" in args:
            api = self.wait_for(lambda line: "HTTP API on" in line)
            self.api_port = int(re.search(r"127\.0\.0\.1:(\d+)/api", api).group(1))  # type: ignore[union-attr]

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            with self._changed:
                self.lines.append(line)
                self._changed.notify_all()

    def wait_for(self, predicate: Callable[[str], bool], timeout: float = 30) -> str:
        deadline = time.monotonic() + timeout
        seen = 0
        with self._changed:
            while True:
                for line in self.lines[seen:]:
                    if predicate(line):
                        return line
                seen = len(self.lines)
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None and seen == len(self.lines):
                    raise AssertionError(f"not in the serve log within {timeout} s:\n{''.join(self.lines)}")
                self._changed.wait(min(left, 0.5))

    def stop(self, sig: int = signal.SIGTERM) -> int:
        self.proc.send_signal(sig)
        return self.proc.wait(timeout=30)


@contextlib.contextmanager
def served(env: dict[str, str], *args: str) -> Iterator[Served]:
    server = Served(env, "--host", "127.0.0.1", "--port", "0", *args)
    try:
        yield server
    finally:
        if server.proc.poll() is None:
            server.proc.kill()
            server.proc.wait()


def http(method: str, url: str, token: str, body: Any = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={"Authorization": f"Bearer {token}"})
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=20) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def eventually(check: Callable[[], Any], timeout: float = 30, interval: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {timeout} s")
        time.sleep(interval)


# -- the commands -------------------------------------------------------------------------------


@pytest.mark.parametrize("argv", [
    [], ["serve"], ["simulate"], ["export"], ["chargers"], ["chargers", "add"], ["tags", "add"], ["tariffs", "list"],
    ["import"], ["call"], ["ca"], ["ca", "server-cert"],
])
def test_every_help_exits_0(argv: list[str], env: dict[str, str]) -> None:
    done = ocpp(env, *argv, "--help")
    assert done.returncode == 0 and done.stdout.startswith("usage: ocpp-console"), done.stderr
    if argv in ([], ["serve"]):  # every option, as the README says
        assert "--stop-on-empty-wallet" in done.stdout and "--demo" in done.stdout
    if argv == ["simulate"]:
        for option in ("--url", "--chargers", "--connectors", "--speed", "--duration", "--sessions", "--server-ca"):
            assert option in done.stdout


async def test_the_console_and_the_demo_console(tmp_path: Path) -> None:
    """`ocpp-console [options]` and `ocpp-console --demo`, built as main() builds them, run by Pilot:
    the URL in the header; the demo's title names the simulated speed, its chargers charge, priced."""
    from ocpp_console.cli import build_parser, console_app, settings_from_args

    base = ["--host", "127.0.0.1", "--port", "0", "--config", str(tmp_path / "none.toml")]
    settings = settings_from_args(build_parser().parse_args([*base, "--db", str(tmp_path / "site.sqlite")]))
    app = console_app(settings)
    system = app.site.csms  # the central system in this process, behind the console's LocalSite
    assert not system.frames_direct  # frames through websockets' reader: the console draws between its steps
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        while system.port is None:
            await pilot.pause(0.05)
        assert f"ws://127.0.0.1:{system.port}/<chargePointId>" in app.sub_title
        assert system.settings.price_per_kwh == 0  # not a demo: no sample tariff
    args = build_parser().parse_args([*base, "--demo", "--demo-chargers", "2", "--db", str(tmp_path / "demo.sqlite")])
    settings = settings_from_args(args)
    assert (str(settings.price_per_kwh), str(settings.price_per_minute)) == ("0.39", "0.02")
    app = console_app(settings, 2)
    async with app.run_test(size=(80, 24)) as pilot:
        assert app.title == "ocpp-console demo · time x30"
        deadline = time.monotonic() + 60  # the first car comes within 30 s (session gaps from 20 simulated s)
        # the event opens the row at once; its stored tariff snapshot is read right after it
        while not any(tx.tariff for tx in app.live.running.values()) and time.monotonic() < deadline:
            await pilot.pause(0.1)
        assert app.live.running, "no demo session started"
        tx = next((tx for tx in app.live.running.values() if tx.tariff is not None), None)
        assert tx is not None and tx.tariff is not None, "the running session shows no tariff"
        assert str(tx.tariff.price_per_kwh) == "0.39"
        shown = app.screen.query_one("HeaderTitle")
        assert "ocpp-console demo · time x30" in str(shown.render())  # in the header, at 80 columns


def test_serve_call_and_simulate_against_a_running_instance(tmp_path: Path, env: dict[str, str]) -> None:
    """serve (one log line per event; SIGTERM: exit 0), the README's simulate line, the HTTP API
    lines (curl as urllib) and `call`, whose answer and exit code agree with the serve log on
    "unknown charger" versus "offline"."""
    db, none = tmp_path / "site.sqlite", str(tmp_path / "none.toml")
    with served(env, "--db", str(db), "--config", none, "--api-port", "0", "--unknown-chargers", "accept",
                "--unknown-id-tags", "accept") as server:
        assert server.wait_for(lambda line: f"database {db}" in line)
        url = f"ws://127.0.0.1:{server.port}"
        (line,) = [line for block in readme_shell_blocks("The simulator") for line in block]
        line = line.replace("ws://127.0.0.1:9000", url).replace("--chargers 5", "--chargers 2")
        line = line.replace("--duration 300", "--duration 3")
        simulated = run_line(env, line)
        assert simulated.returncode == 0, simulated.stderr
        summaries = simulated.stdout.strip().splitlines()
        assert len(summaries) == 2 and all(s.startswith("SIM-00") for s in summaries), simulated.stdout
        server.wait_for(lambda line: "SIM-001: connected" in line)

        # the HTTP API section: the token file beside the database, curl's two requests, call
        token = (db.parent / "api-token").read_text().strip()
        api = f"http://127.0.0.1:{server.api_port}"
        status, chargers = http("GET", f"{api}/api/chargers", token)
        assert status == 200 and {"SIM-001", "SIM-002"} <= {c["id"] for c in chargers}
        assert ocpp(env, "chargers", "add", "CP-1", "--db", str(db), "--config", none).returncode == 0
        status, body = http("POST", f"{api}/api/chargers/CP-1/remote-start-transaction", token,
                            {"idTag": "TAG1", "connectorId": 1})
        assert (status, body["error"]) == (404, "offline") and body["message"] == "CP-1 is offline (known but not connected)"
        server.wait_for(lambda line: "RemoteStartTransaction not sent: CP-1 is offline (known but not connected)" in line)
        (call_line,) = [line for block in readme_shell_blocks("HTTP API") for line in block if " call " in line]
        offline = run_line(env, call_line.replace("8180", str(server.api_port)), "--db", str(db), "--config", none)
        assert offline.returncode == 1 and offline.stdout == ""
        assert offline.stderr.strip() == "ocpp-console call: 404 offline: CP-1 is offline (known but not connected)"
        server.wait_for(lambda line: "Reset not sent: CP-1 is offline (known but not connected)" in line)
        unknown = ocpp(env, "call", "NOBODY", "reset", "--json", '{"type": "Soft"}', "--api-port", str(server.api_port),
                       "--db", str(db), "--config", none)
        words = "NOBODY is an unknown charger (not in the database: never connected, not provisioned)"
        assert unknown.returncode == 1 and unknown.stderr.strip() == f"ocpp-console call: 404 unknown_charger: {words}"
        server.wait_for(lambda line: f"Reset not sent: {words}" in line)

        # a connected charger answers: `simulate --sessions none` stays until told to stop
        sim = subprocess.Popen([sys.executable, "-m", "ocpp_console", "simulate", "--url", url, "--prefix", "LIVE",
                                "--sessions", "none"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                               env=env)
        try:
            server.wait_for(lambda line: "LIVE-001: connected" in line)
            eventually(lambda: http("GET", f"{api}/api/chargers/LIVE-001", token)[1].get("last_boot"))
            answered = ocpp(env, "call", "LIVE-001", "Reset", "--json", '{"type": "Soft"}', "--api-port",
                            str(server.api_port), "--db", str(db), "--config", none)
            assert answered.returncode == 0 and json.loads(answered.stdout) == {"status": "Accepted"}, answered.stderr
            sim.send_signal(signal.SIGINT)
            assert sim.wait(timeout=30) == 0
        finally:
            if sim.poll() is None:
                sim.kill()
        unreachable = ocpp(env, "call", "LIVE-001", "reset", "--api-port", "1", "--db", str(db), "--config", none)
        assert unreachable.returncode == 2 and "cannot reach the API" in unreachable.stderr
        assert server.stop() == 0
    assert any("central system stopped" in line for line in server.lines)


async def test_attach_to_a_running_serve(tmp_path: Path, env: dict[str, str]) -> None:
    """`ocpp-console attach`, built as main() builds it, on a running `serve`: the API and token found
    as `call` finds them (--api-port, the token file beside --db); the chargers it provisioned shown;
    a wrong token or nothing listening: one line, exit code 1 (a real subprocess)."""
    from ocpp_console.attach import attach_app
    from ocpp_console.cli import build_parser, settings_from_args

    db, none = tmp_path / "site.sqlite", str(tmp_path / "none.toml")
    with served(env, "--db", str(db), "--config", none, "--api-port", "0") as server:
        assert ocpp(env, "chargers", "add", "CP-AT", "--db", str(db), "--config", none).returncode == 0
        args = build_parser().parse_args(["attach", "--api-port", str(server.api_port), "--db", str(db), "--config", none])
        app = attach_app(settings_from_args(args), args.url)
        async with app.run_test(size=(120, 40)) as pilot:
            while app.site.link_text() != f"attached to http://127.0.0.1:{server.api_port}" or not app.live.chargers:
                await pilot.pause(0.05)
            assert app.sub_title == app.site.link_text()
            assert app.live.chargers["CP-AT"].registration == "Accepted"
        refused = ocpp(env, "attach", "--url", f"http://127.0.0.1:{server.api_port}", "--api-token", "wrong",
                       "--config", none, stdin=subprocess.DEVNULL)
        assert refused.returncode == 1 and "refused the token (401)" in " ".join(refused.stderr.split())
        assert "Traceback" not in refused.stderr
        assert server.stop() == 0
    gone = ocpp(env, "attach", "--api-port", "1", "--db", str(db), "--config", none, stdin=subprocess.DEVNULL)
    assert gone.returncode == 1 and "cannot reach http://127.0.0.1:1" in gone.stderr and "Traceback" not in gone.stderr


def test_the_demo_is_fresh_priced_and_funded(tmp_path: Path, env: dict[str, str]) -> None:
    """`serve --demo` without --db: a fresh demo.sqlite every run, a sample tariff, funded wallets,
    running sessions priced in the API as they run; a second demo on the same file is refused."""
    demo_db = Path(env["XDG_DATA_HOME"]) / "ocpp-console" / "demo.sqlite"
    demo_db.parent.mkdir(parents=True)
    assert ocpp(env, "tags", "add", "LEFTOVER", "--db", str(demo_db)).returncode == 0  # a previous run's
    with served(env, "--demo", "--demo-chargers", "2", "--api-port", "0") as server:
        server.wait_for(lambda line: "demo: 2 simulated chargers, simulated time x30" in line)
        server.wait_for(lambda line: f"database {demo_db}" in line)
        tags = json.loads(ocpp(env, "tags", "list", "--json", "--db", str(demo_db)).stdout)
        assert "LEFTOVER" not in {t["id_tag"] for t in tags}
        assert tags and all(t["balance"] == "50.00" for t in tags if t["id_tag"].startswith("SIMTAG"))
        listed = json.loads(ocpp(env, "tariffs", "list", "--json", "--db", str(demo_db)).stdout)
        assert (listed[0]["settings_from"], listed[0]["price_per_kwh"], listed[0]["price_per_minute"]) == (
            "running instance", "0.39", "0.02")
        token = (demo_db.parent / "api-token").read_text().strip()

        def priced() -> list[dict[str, Any]]:
            status, running = http("GET", f"http://127.0.0.1:{server.api_port}/api/transactions?running=true", token)
            assert status == 200
            return [t for t in running if t["energy_wh"] and t["cost"] not in (None, "0.00") and t["power_w"]]

        tx = eventually(priced)[0]
        assert tx["running"] and tx["currency"] == "EUR" and "soc" in tx
        second = ocpp(env, "serve", "--demo", "--port", "0", "--host", "127.0.0.1")
        assert second.returncode == 1 and "another demo runs on" in second.stderr and "--db" in second.stderr
        assert server.stop(signal.SIGINT) == 0
    listed = json.loads(ocpp(env, "tariffs", "list", "--json", "--db", str(demo_db)).stdout)
    assert (listed[0]["settings_from"], listed[0]["price_per_kwh"]) == ("this shell", "0")


def test_tariffs_list_says_whose_settings_it_shows(tmp_path: Path, env: dict[str, str]) -> None:
    """The running instance's flags, not this shell's, while it runs; this shell's when none runs."""
    db, none = tmp_path / "site.sqlite", str(tmp_path / "none.toml")
    assert ocpp(env, "chargers", "add", "CP-A", "--db", str(db)).returncode == 0
    with served(env, "--db", str(db), "--config", none, "--price-per-kwh", "0.45", "--min-balance", "2.50",
                "--stop-on-empty-wallet", "--api-port", "0") as server:
        shell_env = {**env, "OCPP_CONSOLE_PRICE_PER_KWH": "0.10"}  # this shell thinks otherwise
        done = ocpp(shell_env, "tariffs", "list", "--json", "--db", str(db), "--config", none)
        (site,) = json.loads(done.stdout)
        assert (site["price_per_kwh"], site["min_balance"], site["stop_on_empty_wallet"]) == ("0.45", "2.50", True)
        assert site["settings_from"] == "running instance" and site["instance"]["pid"] == server.proc.pid
        table = ocpp(shell_env, "tariffs", "list", "--db", str(db), "--config", none)
        assert table.returncode == 0 and table.stdout.splitlines()[1].split()[:3] == ["site", "EUR", "0.45"]
        assert f"billing of the running instance (pid {server.proc.pid}" in table.stderr
        assert "stop on empty wallet on" in table.stderr
        token = (db.parent / "api-token").read_text().strip()
        status, tariffs = http("GET", f"http://127.0.0.1:{server.api_port}/api/tariffs", token)
        assert status == 200 and tariffs[0]["price_per_kwh"] == "0.45" and tariffs[0]["instance"]["pid"] == server.proc.pid
        assert server.stop() == 0
    after = ocpp({**env, "OCPP_CONSOLE_PRICE_PER_KWH": "0.10"}, "tariffs", "list", "--db", str(db), "--config", none)
    assert after.stdout.splitlines()[1].split()[:3] == ["site", "EUR", "0.10"]
    assert "this shell's settings (no instance is running" in after.stderr
    killed = Served(env, "--host", "127.0.0.1", "--port", "0", "--db", str(db), "--config", none,
                    "--price-per-kwh", "0.99")
    killed.proc.kill()  # no chance to record its stop: its dead pid tells
    killed.proc.wait()
    (site,) = json.loads(ocpp(env, "tariffs", "list", "--json", "--db", str(db), "--config", none).stdout)
    assert (site["settings_from"], site["price_per_kwh"]) == ("this shell", "0")


def test_the_provisioning_lines(tmp_path: Path, env: dict[str, str]) -> None:
    """The Provisioning block, line by line, with its promised effects and exit codes."""
    db, none = tmp_path / "site.sqlite", str(tmp_path / "none.toml")
    (block,) = [b for b in readme_shell_blocks("Provisioning") if any("chargers add" in line for line in b)]
    (tmp_path / "site.toml").write_text(readme_block("toml", "# site.toml"))
    results = {}
    for line in block:
        extra = ["--password", "correct-horse-battery"] if "set-password" in line else []
        done = run_line(env, line.replace("site.toml", str(tmp_path / "site.toml")), *extra, "--db", str(db),
                        "--config", none)
        assert done.returncode == 0, (line, done.stderr)
        assert "Traceback" not in done.stderr
        results[line.split("#")[0].strip()] = done
    chargers = json.loads(results["ocpp-console chargers list [--json]"].stdout)
    assert [(c["id"], c["security_profile"], c["password"]) for c in chargers] == [("CP-001", 2, True)]
    tags = json.loads(results["ocpp-console tags list [--json]"].stdout)
    assert {t["id_tag"]: t["balance"] for t in tags}["FLEET-ACME"] == "250.00"
    assert {t["id_tag"]: t["parent"] for t in tags}["RFID-0001"] == "FLEET-ACME"
    tariffs = json.loads(results["ocpp-console tariffs list [--json]"].stdout)
    assert [t["scope"] for t in tariffs] == ["*", "CP-001"]
    # the exit codes the section promises: 1 refused (one line), 2 malformed, 0 done
    for argv, code, words in (
        (["tags", "remove", "NOPE"], 1, "unknown id tag NOPE"),
        (["chargers", "remove", "NOPE"], 1, "NOPE"),
        (["tags", "add", "X", "--parent", "NOPE"], 1, "parent tag NOPE"),
        (["import", str(tmp_path / "missing.toml")], 1, "missing.toml"),
        (["tags", "add", "X", "--balance", "abc"], 2, "not a number"),
        (["tags", "add", "X", "--balance", "1.2.3"], 2, "not a number"),
        (["tags", "add", "X", "--status", "Maybe"], 2, "status"),
        (["tags", "add", "X", "--expiry", "31.12.2026"], 2, "expiry"),
        (["chargers", "add", "CP", "--password", "short"], 2, "16"),
        (["chargers", "add", "CP", "--security-profile", "7"], 2, "profile"),
        (["chargers", "set-password", "CP", "--password", "short"], 2, "16"),
    ):
        done = ocpp(env, *argv, "--db", str(db), "--config", none)
        assert done.returncode == code and words in done.stderr, (argv, done.returncode, done.stderr)
        assert done.stderr.count("\n") == 1, done.stderr
    tags_after = json.loads(ocpp(env, "tags", "list", "--json", "--db", str(db)).stdout)
    assert "X" not in {t["id_tag"] for t in tags_after}  # nothing written by a refused line


def test_the_import_files_of_the_readme(tmp_path: Path, env: dict[str, str]) -> None:
    """The README's site.toml and site.csv, imported into fresh databases: all or nothing."""
    none = str(tmp_path / "none.toml")
    for name, text in (("site.toml", readme_block("toml", "# site.toml")), ("site.csv", readme_block("csv", "kind,id"))):
        path = tmp_path / name
        path.write_text(text)
        db = tmp_path / f"{name}.sqlite"
        done = ocpp(env, "import", str(path), "--db", str(db), "--config", none)
        assert done.returncode == 0, done.stderr
        assert "2 id tags (2 new, 1 balances moved)" in done.stderr and "2 tariffs imported" in done.stderr
        chargers = json.loads(ocpp(env, "chargers", "list", "--json", "--db", str(db)).stdout)
        assert [(c["id"], c["password"], c["note"]) for c in chargers] == [("CP-001", True, "north bay")]
    broken = tmp_path / "broken.csv"
    broken.write_text(readme_block("csv", "kind,id") + "tag,NEW-TAG,,,,NOPE,,,,,\n")
    db = tmp_path / "broken.sqlite"
    done = ocpp(env, "import", str(broken), "--db", str(db), "--config", none)
    assert done.returncode == 1 and "NOPE" in done.stderr and done.stderr.count("\n") == 1
    assert json.loads(ocpp(env, "tags", "list", "--json", "--db", str(db)).stdout) == []


def test_the_export_lines(tmp_path: Path, env: dict[str, str]) -> None:
    """`export orders|ledger` as the README writes them: CSV files with the documented columns."""
    db = tmp_path / "site.sqlite"
    assert ocpp(env, "tags", "add", "CARD", "--balance", "20.00", "--db", str(db)).returncode == 0
    (block,) = [b for b in readme_shell_blocks("Tariffs, orders and wallets") if any("export" in line for line in b)]
    for line in block:
        done = run_line(env, line.replace("site.sqlite", str(db)), "--config", str(tmp_path / "none.toml"),
                        cwd=tmp_path)
        assert done.returncode == 0, (line, done.stderr)
    orders = list(csv.reader(io.StringIO((tmp_path / "november.csv").read_text())))
    assert orders == [ORDER_COLUMNS]
    assert ORDER_COLUMNS[-1] == "stop_note" and ORDER_COLUMNS[:3] == ["transaction_id", "charger", "connector"]
    ledger = list(csv.DictReader(io.StringIO((tmp_path / "ledger.csv").read_text())))
    assert list(ledger[0]) == LEDGER_COLUMNS and (ledger[0]["wallet"], ledger[0]["amount"]) == ("CARD", "20.00")
    missing = ocpp(env, "export", "orders", "--db", str(tmp_path / "none.sqlite"), "--out", "-")
    assert missing.returncode == 1 and "no database" in missing.stderr


def test_the_running_as_a_service_section(tmp_path: Path, env: dict[str, str]) -> None:
    """Its config.toml loads, its unit's ExecStart is a valid serve command line with that file, and
    its backup lines copy a database (an existing copy kept unless --force)."""
    import tomllib

    from ocpp_console.cli import build_parser
    from ocpp_console.settings import load_settings

    section = README.split("## Running as a service", 1)[1].split("\n## ", 1)[0]
    toml_text = readme_block("toml", "api_port = 8180")
    assert "## Running as a service" in README.split(toml_text)[0][-3000:]  # the section's own block
    settings = load_settings(tmp_path / "none.toml", **tomllib.loads(toml_text))
    assert settings.api_port == 8180 and str(settings.db) == "/var/lib/ocpp-console/site.sqlite"
    unit = re.search(r"```ini\n(.*?)```", section, flags=re.S)
    assert unit is not None
    exec_start = re.search(r"^ExecStart=(\S+) (.*)$", unit.group(1), flags=re.M)
    assert exec_start is not None and exec_start.group(1).endswith("/ocpp-console")
    args = build_parser().parse_args(shlex.split(exec_start.group(2)))
    assert args.command == "serve" and str(args.config) == "/etc/ocpp-console/config.toml"
    # the backup lines, against a database of ours
    db = tmp_path / "site.sqlite"
    assert ocpp(env, "tags", "add", "CARD", "--balance", "20.00", "--db", str(db)).returncode == 0
    config = tmp_path / "config.toml"
    config.write_text(toml_text.replace("/var/lib/ocpp-console/site.sqlite", str(db)))
    (block,) = [b for b in readme_shell_blocks("Running as a service") if any("backup" in line for line in b)]
    first, second = block
    first = first.replace("/var/backups/ocpp-console/site-$(date +%F).sqlite", str(tmp_path / "dated.sqlite"))
    first = first.replace("/etc/ocpp-console/config.toml", str(config))
    done = run_line(env, first)
    assert done.returncode == 0, done.stderr
    assert sqlite3_rows(tmp_path / "dated.sqlite", "SELECT id_tag, balance FROM id_tags") == [("CARD", 2000)]
    for expected in (0, 1):  # made, then kept (exit 1) since it exists
        done = run_line(env, second.replace(" --force", "").replace("site.sqlite", str(db)), cwd=tmp_path)
        assert done.returncode == expected, done.stderr
    assert "give --force" in done.stderr
    done = run_line(env, second.replace("site.sqlite", str(db)), cwd=tmp_path)
    assert done.returncode == 0 and (tmp_path / "site-copy.sqlite").exists(), done.stderr


def sqlite3_rows(path: Path, sql: str) -> list[tuple[Any, ...]]:
    import sqlite3

    with contextlib.closing(sqlite3.connect(path)) as con:
        return con.execute(sql).fetchall()


def test_the_ca_lines(tmp_path: Path, env: dict[str, str]) -> None:
    """`ca show`, `ca show --pem`, `ca server-cert --host ...` and serve with the pair it wrote."""
    db, none = tmp_path / "site.sqlite", str(tmp_path / "none.toml")
    (block,) = [b for b in readme_shell_blocks("Security") if any("ca show" in line for line in b)]
    show, pem, server_cert, serve = block
    done = run_line(env, show, "--db", str(db), "--config", none)
    assert done.returncode == 0 and "operator CA:  built-in" in done.stdout and "SHA-256:" in done.stdout
    done = run_line(env, pem.split(">")[0], "--db", str(db), "--config", none)
    assert done.returncode == 0 and done.stdout.startswith("-----BEGIN CERTIFICATE-----")
    done = run_line(env, server_cert, "--db", str(db), "--config", none)
    assert done.returncode == 0 and "csms.example.net, 192.0.2.10" in done.stdout
    cert, key = tmp_path / "tls" / "server.pem", tmp_path / "tls" / "server.key"
    assert cert.exists() and key.stat().st_mode & 0o777 == 0o600
    again = run_line(env, server_cert, "--db", str(db), "--config", none)
    assert again.returncode == 1 and "--force" in again.stderr
    words = shlex.split(serve.replace(".../tls/server.pem", str(cert)).replace(".../tls/server.key", str(key)))
    with served(env, *words[2:], "--db", str(db), "--config", none) as server:
        assert any("wss://127.0.0.1:" in line for line in server.lines)
        assert server.stop() == 0


def test_the_firmware_lines(tmp_path: Path, env: dict[str, str]) -> None:
    """`firmware add FILE`, `firmware add FILE --name N`, `firmware list`, and serve with its file server."""
    db, none = tmp_path / "site.sqlite", str(tmp_path / "none.toml")
    (block,) = readme_shell_blocks("Firmware and diagnostics")
    add, add_named, listing, serve = block
    (tmp_path / "Downloads").mkdir()
    (tmp_path / "Downloads" / "acme-2.0.1.bin").write_bytes(b"a" * 1000)
    (tmp_path / "build").mkdir()
    (tmp_path / "build" / "out.bin").write_bytes(b"b" * 2000)
    done = run_line(env, add.replace("~/", f"{tmp_path}/"), "--db", str(db), "--config", none)
    assert done.returncode == 0 and done.stdout.startswith("acme-2.0.1.bin: 1000 bytes, SHA-256 ")
    done = run_line(env, add_named, "--db", str(db), "--config", none, cwd=tmp_path)
    assert done.returncode == 0 and done.stdout.startswith("acme-2.0.2.bin: 2000 bytes")
    done = run_line(env, listing, "--db", str(db), "--config", none)
    assert [line.split("\t")[:2] for line in done.stdout.splitlines()] == [["acme-2.0.1.bin", "1000"],
                                                                        ["acme-2.0.2.bin", "2000"]]
    assert (tmp_path / "files" / "firmware" / "acme-2.0.2.bin").read_bytes() == b"b" * 2000
    # The file servers on any free port here (the README's ports may be taken on a test machine).
    words = shlex.split(serve.replace("8081", "0").replace("2121", "0"))
    with served(env, *words[2:], "--port", "0", "--db", str(db), "--config", none) as server:
        assert server.wait_for(lambda line: "file server for chargers on http://" in line)
        assert server.stop() == 0
