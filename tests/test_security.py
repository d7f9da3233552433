"""Charger authentication: security profiles 1-3 with good and bad credentials, TLS with a test CA."""

from __future__ import annotations

import asyncio
import base64
import json
import ssl
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from ocpp_console.csms import CentralSystem
from ocpp_console.csms.security import check_password, hash_password, parse_basic, PasswordError
from tests.conftest import Console

PASSWORD = "correct-horse-battery"


def basic(user: str, password: bytes | str) -> dict[str, str]:
    raw = user.encode() + b":" + (password if isinstance(password, bytes) else password.encode())
    return {"Authorization": "Basic " + base64.b64encode(raw).decode()}


async def boots(uri: str, headers: dict[str, str] | None = None, **kwargs: Any) -> bool:
    async with connect(uri, subprotocols=["ocpp1.6"], additional_headers=headers, **kwargs) as ws:
        await ws.send(json.dumps([2, "1", "BootNotification", {"chargePointVendor": "V", "chargePointModel": "M"}]))
        return json.loads(await ws.recv())[2]["status"] == "Accepted"


async def refused(uri: str, headers: dict[str, str] | None = None, **kwargs: Any) -> int:
    with pytest.raises(InvalidStatus) as info:
        async with connect(uri, subprotocols=["ocpp1.6"], additional_headers=headers, **kwargs):
            pass
    return info.value.response.status_code


def test_password_rules_and_hashing() -> None:
    with pytest.raises(PasswordError):
        check_password("short")
    with pytest.raises(PasswordError):
        check_password("x" * 41)
    check_password("a" * 16)
    stored = hash_password(PASSWORD)
    assert PASSWORD not in stored and stored.startswith("scrypt$")
    assert hash_password(PASSWORD) != stored  # salted
    assert parse_basic("Basic " + base64.b64encode(b"CP1:\xff\xfe binary").decode()) == (b"CP1", b"\xff\xfe binary")
    assert parse_basic("Bearer x") is None and parse_basic("Basic !!!") is None


async def test_profile_0_asks_only_chargers_that_have_a_password(csms: CentralSystem, caplog: Any) -> None:
    await csms.store.set_password("LOCKED", hash_password(PASSWORD))
    base = f"ws://127.0.0.1:{csms.port}"
    assert await boots(f"{base}/OPEN")
    assert await refused(f"{base}/LOCKED") == 401
    assert await refused(f"{base}/LOCKED", basic("LOCKED", "wrong-password-123")) == 401
    assert await boots(f"{base}/LOCKED", basic("LOCKED", PASSWORD))
    assert "authentication failed for LOCKED from 127.0.0.1" in caplog.text
    assert PASSWORD not in caplog.text and "wrong-password-123" not in caplog.text


async def test_profile_1_requires_basic_auth_for_everyone(settings_factory: Any) -> None:
    async with CentralSystem(settings_factory(security_profile=1)) as system:
        base = f"ws://127.0.0.1:{system.port}"
        await system.store.set_password("CP1", hash_password(PASSWORD))
        binary_key = bytes(range(200, 220))  # a 20-byte AuthorizationKey that is not UTF-8
        await system.store.set_password("CP2", hash_password(binary_key))
        assert await refused(f"{base}/NOPASS") == 401
        assert await refused(f"{base}/CP1", basic("CP2", PASSWORD)) == 401  # someone else's id
        assert await boots(f"{base}/CP1", basic("CP1", PASSWORD))
        assert await boots(f"{base}/CP2", basic("CP2", binary_key))
        assert await refused(f"{base}/CP2", basic("CP2", binary_key[:-1])) == 401


async def test_repeated_failures_from_one_address_are_slowed_down(settings_factory: Any) -> None:
    async with CentralSystem(settings_factory(security_profile=1)) as system:
        uri = f"ws://127.0.0.1:{system.port}/CP1"
        timings = []
        for _ in range(6):
            started = time.monotonic()
            assert await refused(uri, basic("CP1", "guess-guess-guess")) == 401
            timings.append(time.monotonic() - started)
        assert max(timings[:3]) < 0.2 and timings[-1] >= 0.4


def test_set_password_from_the_cli(tmp_path: Path) -> None:
    db = tmp_path / "cli.sqlite"
    run = [sys.executable, "-m", "ocpp_console", "chargers", "set-password", "CP9", "--config", str(tmp_path / "no.toml"),
           "--db", str(db)]
    short = subprocess.run([*run, "--password", "short"], capture_output=True, text=True, timeout=30)
    assert short.returncode == 2 and "16 to 40" in short.stderr
    ok = subprocess.run([*run, "--password", PASSWORD], capture_output=True, text=True, timeout=30)
    assert ok.returncode == 0, ok.stderr
    import sqlite3

    stored = sqlite3.connect(db).execute("SELECT password_hash, registration FROM chargers WHERE id='CP9'").fetchone()
    assert stored[0].startswith("scrypt$") and PASSWORD not in stored[0] and stored[1] == "Accepted"


# -- TLS: a CA, a server certificate and charger certificates made here --------------------------------


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("pki")
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
             "-subj", "/O=Test Operator/CN=Test CA", cwd=d)
    (d / "san.cnf").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    for name, subject, ext in (("server", "/CN=localhost", ["-extfile", "san.cnf"]),
                               ("cp-good", "/O=Test Operator/CN=CP-TLS", []),
                               ("cp-bad", "/O=Test Operator/CN=SOMEONE-ELSE", [])):
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", subject,
                 cwd=d)
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                 "-out", f"{name}.pem", "-days", "2", *ext, cwd=d)
    return d


def client_tls(pki: Path, cert: str | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(pki / "ca.pem"))
    if cert:
        context.load_cert_chain(pki / f"{cert}.pem", pki / f"{cert}.key")
    return context


async def test_profile_2_basic_auth_over_tls(settings_factory: Any, pki: Path) -> None:
    settings = settings_factory(security_profile=2, tls_cert=pki / "server.pem", tls_key=pki / "server.key")
    async with CentralSystem(settings) as system:
        await system.store.set_password("CP-TLS", hash_password(PASSWORD))
        base = f"wss://127.0.0.1:{system.port}"
        assert await boots(f"{base}/CP-TLS", basic("CP-TLS", PASSWORD), ssl=client_tls(pki))
        assert await refused(f"{base}/CP-TLS", basic("CP-TLS", "not-the-password-1"), ssl=client_tls(pki)) == 401
        with pytest.raises(Exception):  # plain ws:// to a TLS port does not get a WebSocket
            async with connect(f"ws://127.0.0.1:{system.port}/CP-TLS", subprotocols=["ocpp1.6"], open_timeout=3):
                pass
        untrusting = ssl.create_default_context()  # the system store does not know our test CA
        with pytest.raises(ssl.SSLCertVerificationError):
            async with connect(f"{base}/CP-TLS", subprotocols=["ocpp1.6"], ssl=untrusting):
                pass


async def test_profile_3_client_certificates(settings_factory: Any, pki: Path) -> None:
    settings = settings_factory(security_profile=3, tls_cert=pki / "server.pem", tls_key=pki / "server.key",
                                tls_ca=pki / "ca.pem", tls_client_org="Test Operator")
    async with CentralSystem(settings) as system:
        base = f"wss://127.0.0.1:{system.port}"
        assert await boots(f"{base}/CP-TLS", ssl=client_tls(pki, "cp-good"))
        assert await refused(f"{base}/CP-TLS", ssl=client_tls(pki, "cp-bad")) == 403  # certificate of another charger
        # No client certificate: the TLS port asks for one but lets the handshake finish (it also serves
        # profile 2), and the upgrade is refused since this listener's minimum is profile 3.
        assert await refused(f"{base}/CP-TLS", ssl=client_tls(pki)) == 403


def test_profiles_2_and_3_need_certificates(tmp_path: Path) -> None:
    from pydantic import ValidationError

    from ocpp_console.settings import load_settings

    with pytest.raises(ValidationError, match="needs --tls-cert"):
        load_settings(tmp_path / "none.toml", security_profile=2)
    # Profile 3 needs no --tls-ca: the TLS port then trusts the operator CA.
    settings = load_settings(tmp_path / "none.toml", security_profile=3, tls_cert=tmp_path / "c", tls_key=tmp_path / "k")
    assert settings.tls_ca is None


async def test_password_set_from_the_console(settings_factory: Any, console: Console) -> None:
    from textual.widgets import Input

    from ocpp_console.ui.screens.modals import ActionForm
    from tests.test_ui import SIZE, cells, until

    async with CentralSystem(settings_factory(security_profile=1)) as system:
        await system.store.add_charger("CP-P")
        app = await console(system)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("2")
            await until(pilot, lambda: "CP-P" in cells(app))
            await pilot.press("p")
            form = await until(pilot, lambda: isinstance(app.screen, ActionForm) and app.screen)
            box = form.query_one("#f-password", Input)
            assert box.password  # never shown on screen
            box.value = "too-short"
            await pilot.press("enter")
            await until(pilot, lambda: any("16 to 40" in str(n.message) for n in app._notifications))
            await pilot.press("p")
            form = await until(pilot, lambda: isinstance(app.screen, ActionForm) and app.screen)
            form.query_one("#f-password", Input).value = PASSWORD
            await pilot.press("enter")
            await until(pilot, lambda: any("password set" in str(n.message) for n in app._notifications))
        base = f"ws://127.0.0.1:{system.port}"
        assert await boots(f"{base}/CP-P", basic("CP-P", PASSWORD))
        assert await refused(f"{base}/CP-P", basic("CP-P", "x" * 20)) == 401


async def test_new_authorization_key_replaces_the_old_once_used(settings_factory: Any) -> None:
    from tests.clients import TestCharger

    old, new = "old-key-0123456789", "new-key-9876543210"
    async with CentralSystem(settings_factory(security_profile=1)) as system:
        await system.store.set_password("CP-K", hash_password(old))
        uri = f"ws://127.0.0.1:{system.port}/CP-K"
        async with connect(uri, subprotocols=["ocpp1.6"], additional_headers=basic("CP-K", old)) as ws:
            cp = TestCharger("CP-K", ws)
            cp.config["AuthorizationKey"] = ("", False)
            reader = asyncio.create_task(cp.start())
            await cp.boot()
            with pytest.raises(Exception, match="16 to 40"):
                await system.commands.change_configuration("CP-K", "AuthorizationKey", "short")
            assert (await system.commands.change_configuration("CP-K", "AuthorizationKey", new)).status == "Accepted"
            reader.cancel()
        assert await boots(uri, basic("CP-K", old))  # reconnecting with the old key first: not locked out
        assert await boots(uri, basic("CP-K", new))  # the new key works, and from now on only it
        assert await refused(uri, basic("CP-K", old)) == 401
        assert await boots(uri, basic("CP-K", new))
