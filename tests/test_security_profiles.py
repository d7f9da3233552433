"""Security per charger: a stored profile no connection may fall below, profiles 2 and 3 on one
TLS port, failed logins throttled per charger id, hashing off the event loop, strict headers and
certificates, and no Basic header in the DEBUG log. Real sockets, real TLS, a test CA."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect

from ocpp_console import provision
from ocpp_console.csms import CentralSystem
from ocpp_console.csms.errors import InvalidCommand
from ocpp_console.csms.security import FailureThrottle, hash_password
from ocpp_console.settings import Settings
from tests.clients import TestCharger
from tests.conftest import Console, charger, eventually
from tests.test_security import _openssl, basic, boots, client_tls, refused

PASSWORD = "correct-horse-battery"
WRONG = "wrong-horse-battery!"
ORG = "Test Operator"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Our CA with a server certificate and charger certificates (one with two CNs, one without
    the O), and a rogue CA with a certificate for the same charger."""
    d = tmp_path_factory.mktemp("pki-profiles")
    for ca in ("ca", "rogue-ca"):
        _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{ca}.key", "-out", f"{ca}.pem",
                 "-days", "2", "-subj", f"/O={ORG}/CN={ca}", cwd=d)
    (d / "san.cnf").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    for name, subject, ca, ext in (
        ("server", "/CN=localhost", "ca", ["-extfile", "san.cnf"]),
        ("cp3", f"/O={ORG}/CN=CP-3", "ca", []),
        ("cp-other", f"/O={ORG}/CN=SOMEONE-ELSE", "ca", []),
        ("two-cns", f"/O={ORG}/CN=SOMEONE-ELSE/CN=CP-TWO", "ca", []),  # today read by its last CN
        ("no-org", "/CN=CP-NO-ORG", "ca", []),
        ("rogue", f"/O={ORG}/CN=CP-3", "rogue-ca", []),
    ):
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr",
                 "-subj", subject, cwd=d)
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key", "-CAcreateserial",
                 "-out", f"{name}.pem", "-days", "2", *ext, cwd=d)
    return d


tls = client_tls  # a client trusting the test CA, with one of the pki's certificates


def tls_settings(settings_factory: Callable[..., Settings], pki: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = dict(tls_cert=pki / "server.pem", tls_key=pki / "server.key", tls_ca=pki / "ca.pem",
                                  tls_client_org=ORG, plain_port=0)
    values.update(overrides)
    return settings_factory(**values)


async def timed(work: Any) -> float:
    started = time.monotonic()
    await work
    return time.monotonic() - started


# -- failed logins: per charger id, never per address alone ---------------------------------------


async def test_a_charger_failing_its_login_does_not_delay_another_from_the_same_address(
    settings_factory: Callable[..., Settings],
) -> None:
    async with CentralSystem(settings_factory(security_profile=1)) as system:
        for cp_id in ("CP-BAD", "CP-GOOD"):
            await system.store.set_password(cp_id, hash_password(PASSWORD))
        base = f"ws://127.0.0.1:{system.port}"
        # Eight wrong attempts by one charger (the NAT address is the same for both)...
        codes = await asyncio.gather(*(refused(f"{base}/CP-BAD", basic("CP-BAD", WRONG)) for _ in range(8)))
        assert codes == [401] * 8
        # ...and the other charger's correct login is not slowed down (it was 5 s, per address).
        assert await timed(boots(f"{base}/CP-GOOD", basic("CP-GOOD", PASSWORD))) < 2.0
        # The failing charger itself is slowed down.
        assert await timed(refused(f"{base}/CP-BAD", basic("CP-BAD", WRONG))) >= 2.0


async def test_parallel_guesses_for_one_charger_are_slowed_down(settings_factory: Callable[..., Settings]) -> None:
    async with CentralSystem(settings_factory(security_profile=1)) as system:
        await system.store.set_password("CP-G", hash_password(PASSWORD))
        uri = f"ws://127.0.0.1:{system.port}/CP-G"
        # All at once: counted when they start, so they do not each get the free attempts.
        timings = sorted(await asyncio.gather(
            *(timed(refused(uri, basic("CP-G", f"guess-number-{i:06d}"))) for i in range(10))
        ))
        assert timings[-1] >= 3.0, timings
        assert sum(t >= 0.9 for t in timings) >= 4, timings


async def test_a_good_login_does_not_reset_the_count_of_another_charger(
    settings_factory: Callable[..., Settings],
) -> None:
    async with CentralSystem(settings_factory(security_profile=1)) as system:
        for cp_id in ("CP-A", "CP-B"):
            await system.store.set_password(cp_id, hash_password(PASSWORD))
        base = f"ws://127.0.0.1:{system.port}"
        for _ in range(5):
            assert await refused(f"{base}/CP-A", basic("CP-A", WRONG)) == 401
        assert await boots(f"{base}/CP-B", basic("CP-B", PASSWORD))  # same address, another id
        assert await timed(refused(f"{base}/CP-A", basic("CP-A", WRONG))) >= 0.8  # CP-A still slowed down
        # CP-A's own good login clears its count: the next attempt is not delayed.
        assert await boots(f"{base}/CP-A", basic("CP-A", PASSWORD))
        assert system._throttle.delay("CP-A", "127.0.0.1") == 0


def test_the_throttle_is_bounded_and_keyed_by_charger_and_address() -> None:
    throttle = FailureThrottle(max_ids=100)
    for i in range(1000):
        throttle.attempt(f"SCAN-{i}", "10.0.0.1")
    assert len(throttle._attempts) == 100
    for _ in range(4):
        throttle.attempt("CP-X", "10.0.0.1")
    assert throttle.delay("CP-X", "10.0.0.1") > 0
    assert throttle.delay("CP-X", "10.0.0.2") == 0  # another address: only the per-id count, below its limit
    assert throttle.delay("CP-Y", "10.0.0.1") == 0
    for address in range(12):  # guessing one id from many addresses is slowed too
        throttle.attempt("CP-X", f"10.1.0.{address}")
    assert throttle.delay("CP-X", "10.9.9.9") > 0


async def test_a_storm_of_wrong_logins_does_not_delay_a_connected_chargers_heartbeat(
    settings_factory: Callable[..., Settings],
) -> None:
    """The storm and the connected charger each run in a thread of their own with their own event
    loop, as on other machines: the 40 logins arrive at once, and the Heartbeat's round trip is
    timed by a clock the server's event loop cannot hold up."""
    async with CentralSystem(settings_factory()) as system:
        stored = hash_password(PASSWORD)
        for i in range(40):
            await system.store.set_password(f"CP-S{i}", stored)
        base = f"ws://127.0.0.1:{system.port}"
        connected, storm_over = threading.Event(), threading.Event()

        async def storm() -> list[int]:
            try:
                return await asyncio.gather(*(refused(f"{base}/CP-S{i}", basic(f"CP-S{i}", WRONG)) for i in range(40)))
            finally:
                storm_over.set()

        async def heartbeats() -> list[float]:
            async with connect(f"{base}/CP-HB", subprotocols=["ocpp1.6"]) as ws:
                await ws.send(json.dumps([2, "b", "BootNotification", {"chargePointVendor": "V", "chargePointModel": "M"}]))
                assert json.loads(await ws.recv())[2]["status"] == "Accepted"
                connected.set()
                latencies = []
                while not storm_over.is_set():
                    started = time.monotonic()
                    await ws.send(json.dumps([2, f"h{len(latencies)}", "Heartbeat", {}]))
                    assert "currentTime" in json.loads(await ws.recv())[2]
                    latencies.append(time.monotonic() - started)
                    await asyncio.sleep(0.01)
                return latencies

        charger_thread = asyncio.ensure_future(asyncio.to_thread(asyncio.run, heartbeats()))
        assert await asyncio.to_thread(connected.wait, 10)
        assert await asyncio.to_thread(asyncio.run, storm()) == [401] * 40
        latencies = await charger_thread
        assert len(latencies) >= 5  # measured while the storm lasted
        assert max(latencies) < 0.5, latencies  # was 2.2 s with scrypt on the event loop


# -- malformed requests and certificates ---------------------------------------------------------


async def test_two_authorization_headers_are_a_bad_request(settings_factory: Callable[..., Settings]) -> None:
    async with CentralSystem(settings_factory(security_profile=1)) as system:
        await system.store.set_password("CP-H", hash_password(PASSWORD))
        header = basic("CP-H", PASSWORD)["Authorization"]
        headers = [("Authorization", header), ("Authorization", header)]
        assert await refused(f"ws://127.0.0.1:{system.port}/CP-H", headers) == 400  # was 500
        assert await boots(f"ws://127.0.0.1:{system.port}/CP-H", basic("CP-H", PASSWORD))


async def test_debug_log_masks_the_basic_header(settings_factory: Callable[..., Settings], caplog: Any) -> None:
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="ocpp_console.websockets")  # as --log-level DEBUG leaves it
    async with CentralSystem(settings_factory(security_profile=1)) as system:
        await system.store.set_password("CP-D", hash_password(PASSWORD))
        header = basic("CP-D", PASSWORD)
        assert await boots(f"ws://127.0.0.1:{system.port}/CP-D", header)
        assert await refused(f"ws://127.0.0.1:{system.port}/CP-D", basic("CP-D", WRONG)) == 401
    server_lines = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("ocpp_console"))
    assert "< Authorization: Basic ********" in server_lines  # the header is logged, masked
    encoded = header["Authorization"].split()[1]
    for secret in (PASSWORD, WRONG, encoded, basic("CP-D", WRONG)["Authorization"].split()[1]):
        assert secret not in server_lines


# -- profiles per charger --------------------------------------------------------------------------


async def test_the_listeners_are_logged_and_plain_port_needs_tls(
    settings_factory: Callable[..., Settings], pki: Path, caplog: Any
) -> None:
    caplog.set_level(logging.INFO, logger="ocpp_console.server")
    async with CentralSystem(tls_settings(settings_factory, pki)) as system:
        assert system.port == system.tls_port and system.plain_port not in (None, system.port)
    assert f"listening on wss://127.0.0.1:{system.tls_port}/<chargePointId>" in caplog.text
    assert "client certificates from" in caplog.text
    assert f"also listening on ws://127.0.0.1:{system.plain_port}/<chargePointId> (profiles 0-1 only)" in caplog.text
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="--plain-port goes with --tls-cert"):
        settings_factory(plain_port=0)
    with pytest.raises(ValidationError, match="refuses them all"):
        tls_settings(settings_factory, pki, security_profile=2)


async def test_a_charger_raised_to_profile_2_by_change_configuration(
    settings_factory: Callable[..., Settings], pki: Path, caplog: Any
) -> None:
    async with CentralSystem(tls_settings(settings_factory, pki, security_profile=1)) as system:
        plain, secure = f"ws://127.0.0.1:{system.plain_port}", f"wss://127.0.0.1:{system.tls_port}"
        for cp_id in ("CP-UP", "CP-CI", "CP-NO"):
            await system.store.set_password(cp_id, hash_password(PASSWORD))
        for cp_id, key, readonly in (("CP-UP", "SecurityProfile", False), ("CP-CI", "securityprofile", False),
                                     ("CP-NO", "SecurityProfile", True)):
            async with connect(f"{plain}/{cp_id}", subprotocols=["ocpp1.6"], additional_headers=basic(cp_id, PASSWORD)) as ws:
                cp = TestCharger(cp_id, ws)
                cp.config[key] = ("1", readonly)
                reader = asyncio.create_task(cp.start())
                await cp.boot()
                assert system.sessions[cp_id].security_profile == 1
                result = await system.commands.change_configuration(cp_id, key, "2")
                assert result.status == ("Rejected" if readonly else "Accepted")
                reader.cancel()
        for cp_id in ("CP-UP", "CP-CI"):  # raised: refused over ws:// even with its password, in over wss://
            assert (await system.store.charger(cp_id))["security_profile"] == 2
            assert await refused(f"{plain}/{cp_id}", basic(cp_id, PASSWORD)) == 403
            assert await refused(f"{secure}/{cp_id}", basic(cp_id, WRONG), ssl=tls(pki)) == 401
            assert await boots(f"{secure}/{cp_id}", basic(cp_id, PASSWORD), ssl=tls(pki))
        # Rejected: the stored profile stays, the charger still comes in the way it came.
        assert (await system.store.charger("CP-NO"))["security_profile"] == 0
        assert await boots(f"{plain}/CP-NO", basic("CP-NO", PASSWORD))
        assert "refused CP-UP (127.0.0.1" in caplog.text and "security profile 2 required" in caplog.text


async def test_security_profile_changes_this_system_could_not_serve_are_not_sent(csms: CentralSystem) -> None:
    async with charger(csms, "CP-PLAIN") as cp:
        cp.config["SecurityProfile"] = ("0", False)
        await cp.boot()
        for value, why in (("2", "has no TLS port"), ("4", "0, 1, 2 or 3"), ("two", "0, 1, 2 or 3")):
            with pytest.raises(InvalidCommand, match=why):
                await csms.commands.change_configuration("CP-PLAIN", "SecurityProfile", value)
        assert not [r for r in cp.received if r[0] == "ChangeConfiguration"]
        assert (await csms.commands.change_configuration("CP-PLAIN", "SecurityProfile", "1")).status == "Accepted"
        assert (await csms.store.charger("CP-PLAIN"))["security_profile"] == 1


async def test_a_provisioned_profile_2_is_refused_over_ws_until_lowered(
    settings_factory: Callable[..., Settings], pki: Path,
) -> None:
    async with CentralSystem(tls_settings(settings_factory, pki)) as system:
        plain, secure = f"ws://127.0.0.1:{system.plain_port}", f"wss://127.0.0.1:{system.tls_port}"
        await provision.add_charger(system.store, "CP-P2", PASSWORD, security_profile=2)
        assert await refused(f"{plain}/CP-P2", basic("CP-P2", PASSWORD)) == 403
        assert await refused(f"{secure}/CP-P2", ssl=tls(pki)) == 401  # TLS, but no password given
        assert await boots(f"{secure}/CP-P2", basic("CP-P2", PASSWORD), ssl=tls(pki))
        # The way back from a lock-out: the operator lowers the stored profile.
        await provision.add_charger(system.store, "CP-P2", security_profile=1)
        assert await boots(f"{plain}/CP-P2", basic("CP-P2", PASSWORD))


async def test_profile_2_and_3_chargers_share_one_tls_port(
    settings_factory: Callable[..., Settings], pki: Path,
) -> None:
    async with CentralSystem(tls_settings(settings_factory, pki, security_profile=1)) as system:
        secure = f"wss://127.0.0.1:{system.port}"
        await provision.add_charger(system.store, "CP-2", PASSWORD, security_profile=2)
        await provision.add_charger(system.store, "CP-3", security_profile=3)
        await provision.add_charger(system.store, "CP-TWO", PASSWORD)
        assert await boots(f"{secure}/CP-2", basic("CP-2", PASSWORD), ssl=tls(pki))  # no certificate: Basic
        async with connect(f"{secure}/CP-3", subprotocols=["ocpp1.6"], ssl=tls(pki, "cp3")):
            assert system.sessions["CP-3"].security_profile == 3
        assert await boots(f"{secure}/CP-3", ssl=tls(pki, "cp3"))
        assert await refused(f"{secure}/CP-3", ssl=tls(pki)) == 403  # profile 3: a password is not enough
        # A verified certificate for someone else is refused, never downgraded to Basic.
        assert await refused(f"{secure}/CP-2", basic("CP-2", PASSWORD), ssl=tls(pki, "cp-other")) == 403
        assert await refused(f"{secure}/CP-TWO", basic("CP-TWO", PASSWORD), ssl=tls(pki, "two-cns")) == 403
        assert await refused(f"{secure}/CP-NO-ORG", ssl=tls(pki, "no-org")) == 403  # O must be the operator's
        with pytest.raises(Exception):  # a certificate from another CA fails the TLS handshake
            async with connect(f"{secure}/CP-3", subprotocols=["ocpp1.6"], ssl=tls(pki, "rogue"), open_timeout=5) as ws:
                await ws.recv()
        assert "CP-3" not in system.sessions


# -- provisioning the profile: import files and the HTTP API --------------------------------------


async def test_security_profile_from_import_files_and_the_api(
    settings_factory: Callable[..., Settings], tmp_path: Path,
) -> None:
    from tests.test_api import api_for

    (tmp_path / "site.toml").write_text('[[chargers]]\nid = "T-1"\nsecurity_profile = 2\n')
    (tmp_path / "site.csv").write_text("kind,id,security_profile\ncharger,C-1,3\ncharger,C-0,\n")
    (tmp_path / "bad.toml").write_text('[[chargers]]\nid = "T-9"\nsecurity_profile = 4\n')
    async with CentralSystem(settings_factory(api_port=0)) as system:
        await provision.import_file(system.store, tmp_path / "site.toml", currency="EUR")
        await provision.import_file(system.store, tmp_path / "site.csv", currency="EUR")
        with pytest.raises(provision.ProvisionError, match="security profile 4: 0, 1, 2 or 3"):
            await provision.import_file(system.store, tmp_path / "bad.toml", currency="EUR")
        profiles = {c.id: c.security_profile for c in await provision.list_chargers(system.store)}
        assert profiles == {"T-1": 2, "C-1": 3, "C-0": 0}
        async with api_for(system) as (_, http):
            async with http.put("/api/chargers/T-1", json={"security_profile": 1}) as response:
                assert response.status == 200
                assert (await response.json())["security_profile"] == 1
            async with http.put("/api/chargers/T-1", json={"security_profile": 5}) as response:
                assert response.status == 400
            async with http.get("/api/chargers/C-1") as response:
                assert (await response.json())["security_profile"] == 3
        assert (await system.store.charger("T-1"))["security_profile"] == 1
        # A raised profile takes effect at the next login: T-1 (profile 1) needs its password now.
        assert await refused(f"ws://127.0.0.1:{system.port}/T-1") == 401


async def test_the_console_confirms_a_security_profile_change_first(csms: CentralSystem, console: Console) -> None:
    from textual.widgets import Input

    from ocpp_console.ui.screens.modals import ActionForm, ConfirmScreen
    from tests.test_ui import SIZE, cells, until

    async with charger(csms, "CP-UI") as cp:
        cp.config["securityprofile"] = ("0", False)
        await cp.boot()
        app = await console(csms)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("2")
            await until(pilot, lambda: "CP-UI" in cells(app))
            for answer in ("escape", "y"):
                app.start_action("CP-UI", "change_config", {})
                form = await until(pilot, lambda: isinstance(app.screen, ActionForm) and app.screen)
                form.query_one("#f-key", Input).value = "securityprofile"  # any letter case is the same key
                form.query_one("#f-value", Input).value = "1"
                await pilot.press("enter")
                confirm = await until(pilot, lambda: isinstance(app.screen, ConfirmScreen) and app.screen)
                assert "refused below profile 1" in confirm.message and "--security-profile" in confirm.message
                await pilot.press(answer)
                if answer == "escape":
                    await until(pilot, lambda: any("nothing was sent" in str(n.message) for n in app._notifications))
                    assert not [r for r in cp.received if r[0] == "ChangeConfiguration"]
            await eventually(lambda: any(str(n.message) == "CP-UI set securityprofile to 1: from now on it is refused "
                                         "below security profile 1." for n in app._notifications))
        assert [r for r in cp.received if r[0] == "ChangeConfiguration"] == [
            ("ChangeConfiguration", {"key": "securityprofile", "value": "1"})]
        assert (await csms.store.charger("CP-UI"))["security_profile"] == 1


async def test_the_simulators_debug_log_masks_its_own_basic_header(
    settings_factory: Callable[..., Settings], caplog: Any
) -> None:
    from tests.test_sim import running

    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="ocpp_console.sim.websockets")
    async with CentralSystem(settings_factory(security_profile=1)) as system:
        await system.store.set_password("SIM-D", hash_password(PASSWORD))
        async with running(f"ws://127.0.0.1:{system.port}", "SIM-D", password=PASSWORD):
            pass
    sim_lines = "\n".join(r.getMessage() for r in caplog.records if r.name == "ocpp_console.sim.websockets")
    assert "> Authorization: Basic ********" in sim_lines
    assert basic("SIM-D", PASSWORD)["Authorization"].split()[1] not in sim_lines and PASSWORD not in sim_lines
