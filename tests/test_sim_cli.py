"""`ocpp-console simulate`: N chargers with sessions of their own, one summary line each."""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import signal
import sys

import pytest

from ocpp_console.csms import CentralSystem
from ocpp_console.sim.cli import add_simulate_arguments, run_simulate
from tests.conftest import eventually

LINE = re.compile(r"^(SIM-\d{3}): (\d+) sessions, (\d+\.\d{3}) kWh, (\d+) reconnects, (\d+) errors$")
TAGS = ["A1", "A2", "A3", "A4", "A5"]


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="simulate")
    add_simulate_arguments(parser)
    return parser.parse_args(list(argv))


def _has_simulate_command() -> bool:
    from ocpp_console.cli import build_parser

    for action in build_parser()._actions:
        if isinstance(action, argparse._SubParsersAction):
            return "simulate" in action.choices
    return False


async def _provision(csms: CentralSystem) -> None:
    for tag in TAGS:
        await csms.store.upsert_id_tag(tag)


async def _check_against_database(csms: CentralSystem, lines: list[str]) -> dict[str, tuple[int, float]]:
    """Each summary line agrees with what the central system recorded."""
    seen: dict[str, tuple[int, float]] = {}
    for line in lines:
        match = LINE.match(line)
        assert match, line
        cp_id, sessions, kwh, _reconnects, errors = match.groups()
        assert int(errors) == 0, line
        rows = await csms.store.transactions(cp_id)
        assert all(r["stopped_at"] is not None for r in rows), "a session was left running"
        assert len(rows) == int(sessions), line
        energy = sum(r["energy_wh"] for r in rows)
        assert f"{energy / 1000:.3f}" == kwh, line
        assert all(r["stop_reason"] in ("Local", "EVDisconnected") and r["auth_status"] == "Accepted" for r in rows)
        seen[cp_id] = (int(sessions), float(kwh))
    return seen


async def test_simulate_runs_sessions_and_prints_a_summary_per_charger(
    csms: CentralSystem, capsys: pytest.CaptureFixture[str]
) -> None:
    await _provision(csms)
    args = parse(
        "--url", f"ws://127.0.0.1:{csms.port}", "--chargers", "2", "--connectors", "2", "--duration", "3",
        "--speed", "3000", "--id-tags", ",".join(TAGS), "--seed", "7",
    )
    assert await run_simulate(args) == 0
    lines = capsys.readouterr().out.splitlines()
    seen = await _check_against_database(csms, lines)
    assert sorted(seen) == ["SIM-001", "SIM-002"]
    assert sum(s for s, _ in seen.values()) >= 1  # four connectors for three simulated hours
    chargers = {c["id"]: c for c in await csms.store.chargers()}
    assert {"SIM-001", "SIM-002"} <= set(chargers)

    async def offline() -> bool:  # the server notices the closed sockets a moment after the client
        return (await csms.store.charger("SIM-001"))["connected"] == 0

    await eventually(offline)
    connectors = {(c["charger_id"], c["connector_id"]): c["status"] for c in await csms.store.connectors()}
    assert connectors[("SIM-002", 2)] == "Available"  # every session ended, the cars left


async def test_sigint_finishes_running_sessions_first(csms: CentralSystem, capsys: pytest.CaptureFixture[str]) -> None:
    await _provision(csms)
    args = parse("--url", f"ws://127.0.0.1:{csms.port}", "--connectors", "2", "--speed", "3000",
                 "--id-tags", ",".join(TAGS), "--seed", "3", "--prefix", "SIG")
    run = asyncio.create_task(run_simulate(args))

    async def running_sessions() -> int:
        return len(await csms.store.transactions("SIG-001", running=True))

    deadline = asyncio.get_running_loop().time() + 10
    while not await running_sessions():
        assert asyncio.get_running_loop().time() < deadline, "no session started"
        assert not run.done()
        await asyncio.sleep(0.02)
    os.kill(os.getpid(), signal.SIGINT)
    assert await asyncio.wait_for(run, 15) == 0
    assert await running_sessions() == 0
    rows = await csms.store.transactions("SIG-001")
    assert rows and any(r["stop_reason"] == "Local" for r in rows)
    (line,) = capsys.readouterr().out.splitlines()
    assert line.startswith("SIG-001: ") and f"{len(rows)} sessions" in line


async def test_sessions_none_only_reacts(csms: CentralSystem, capsys: pytest.CaptureFixture[str]) -> None:
    args = parse("--url", f"ws://127.0.0.1:{csms.port}/", "--sessions", "none", "--duration", "0.5", "--speed", "3000")
    assert await run_simulate(args) == 0
    assert capsys.readouterr().out.splitlines() == ["SIM-001: 0 sessions, 0.000 kWh, 0 reconnects, 0 errors"]
    assert await csms.store.transactions("SIM-001") == []
    assert (await csms.store.charger("SIM-001"))["registration"] == "Accepted"  # type: ignore[index]


async def test_bad_url_and_unreachable_central_system(capsys: pytest.CaptureFixture[str]) -> None:
    assert await run_simulate(parse("--url", "http://127.0.0.1:9")) == 2
    assert "--url must be" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parse("--url", "ws://x", "--chargers", "0")
    # Nobody listens on port 9: the charger keeps retrying until the duration ends, then says so.
    assert await run_simulate(parse("--url", "ws://127.0.0.1:9", "--duration", "0.5")) == 1
    assert capsys.readouterr().out.strip().endswith("never connected")


@pytest.mark.skipif(not _has_simulate_command(), reason="`ocpp-console simulate` is not wired into the CLI yet")
async def test_simulate_subcommand_in_a_subprocess(csms: CentralSystem) -> None:
    await _provision(csms)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ocpp_console", "simulate", "--url", f"ws://127.0.0.1:{csms.port}",
        "--duration", "2", "--speed", "3000", "--id-tags", ",".join(TAGS), "--seed", "5",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0, err.decode()
    lines = out.decode().splitlines()
    seen = await _check_against_database(csms, lines)
    assert list(seen) == ["SIM-001"]


async def test_simulate_over_wss_requests_a_certificate(settings_factory, tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    """--server-ca, --request-certificate and --organisation: two chargers connect over wss://,
    trusting the operator CA, and each gets a certificate with the organisation asked for."""
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    from ocpp_console.csms.ca import OperatorCA

    ca = OperatorCA.load_or_create(settings_factory(tls_client_org="Depot Ops"))
    chain, key = ca.issue_server_certificate(["127.0.0.1"])
    (tmp_path / "server.pem").write_text(chain)
    (tmp_path / "server.key").write_text(key)
    settings = settings_factory(tls_cert=tmp_path / "server.pem", tls_key=tmp_path / "server.key",
                                tls_client_org="Depot Ops")
    async with CentralSystem(settings) as csms:
        assert await run_simulate(parse("--url", "wss://127.0.0.1:1", "--server-ca", str(tmp_path / "nope.pem"))) == 2
        assert "--server-ca" in capsys.readouterr().err
        args = parse("--url", f"wss://127.0.0.1:{csms.port}", "--chargers", "2", "--sessions", "none",
                     "--server-ca", str(ca.cert_path), "--request-certificate", "--organisation", "Depot Ops",
                     "--duration", "60")
        run = asyncio.create_task(run_simulate(args))

        async def both_signed() -> bool:
            rows = [await csms.store.charger(f"SIM-00{i}") for i in (1, 2)]
            return all(r and r["certificate_pem"] for r in rows)

        await eventually(both_signed, timeout=20)
        run.cancel()
        await asyncio.gather(run, return_exceptions=True)
        for i in (1, 2):
            row = await csms.store.charger(f"SIM-00{i}")
            cert = x509.load_pem_x509_certificates(row["certificate_pem"].encode())[0]
            assert cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "Depot Ops"
            assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == f"SIM-00{i}"
