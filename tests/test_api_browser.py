"""The local API is safe from the operator's own browser (issue 12).

Reproduced against the main of before: without a token, `POST /api/chargers/{id}/reset` with
`Content-Type: text/plain` was accepted (a "simple" request any web page sends cross-origin
without asking), a foreign `Origin` and a foreign `Host` (DNS rebinding) were not looked at, and
a loopback API needed no token at all. Real server, real sockets, aiohttp as the client, and the
real `ocpp-console serve` / `ocpp-console call` processes for the token file.
"""

from __future__ import annotations

import asyncio
import os
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from ocpp_console.api import ApiServer
from ocpp_console.api.token import TOKEN_FILE, token_path
from ocpp_console.csms import CentralSystem
from ocpp_console.settings import Settings
from tests.conftest import charger
from tests.test_api import api_for
from tests.test_cli import free_port


@pytest.fixture
def settings(settings_factory: Callable[..., Settings]) -> Settings:
    return settings_factory(api_port=0, call_timeout=3.0)


async def test_a_text_plain_write_is_refused_with_415(csms: CentralSystem) -> None:
    async with api_for(csms) as (api, http), charger(csms, "CP-B") as cp:
        await cp.boot()
        # what a web page's <form enctype="text/plain"> or fetch(no-cors) sends: no preflight
        async with http.post("/api/chargers/CP-B/reset", data='{"type": "Hard"}',
                             headers={"Content-Type": "text/plain"}) as response:
            assert response.status == 415 and (await response.json())["error"] == "unsupported_media_type"
        async with http.put("/api/id-tags/T1", data="status=Blocked",
                            headers={"Content-Type": "application/x-www-form-urlencoded"}) as response:
            assert response.status == 415
        assert ("Reset", {"type": "Hard"}) not in cp.received and await csms.store.id_tag("T1") is None
        async with http.post("/api/chargers/CP-B/reset", json={"type": "Soft"}) as response:
            assert response.status == 200  # the same call as JSON goes through
        async with http.put("/api/id-tags/T1", json={}) as response:
            assert response.status == 200
        async with http.delete("/api/id-tags/T1") as response:  # no body: no type needed
            assert response.status == 204


async def test_a_foreign_origin_is_refused_with_403(csms: CentralSystem) -> None:
    async with api_for(csms) as (api, http):
        for origin in ("http://evil.example", "null", f"http://localhost:{api.port + 1}"):
            async with http.put("/api/id-tags/T2", json={}, headers={"Origin": origin}) as response:
                assert response.status == 403 and (await response.json())["error"] == "forbidden_origin", origin
            async with http.get("/api/chargers", headers={"Origin": origin}) as response:
                assert response.status == 403
        async with http.get("/api/chargers", headers={"Sec-Fetch-Site": "cross-site"}) as response:
            assert response.status == 403
        assert await csms.store.id_tag("T2") is None
        # the API's own origin (a page it served itself, which it never does) would be allowed
        async with http.put("/api/id-tags/T2", json={}, headers={"Origin": api.url}) as response:
            assert response.status == 200


async def test_a_foreign_host_is_refused_with_403(csms: CentralSystem) -> None:
    """DNS rebinding: evil.example resolves to 127.0.0.1 after the page loaded; the browser then
    sends Host: evil.example:PORT and the request is same-origin to it."""
    async with api_for(csms) as (api, http):
        for host in (f"evil.example:{api.port}", f"127.0.0.1:{api.port + 1}", "127.0.0.1", ""):
            async with http.get("/api/chargers", headers={"Host": host}) as response:
                assert response.status == 403 and (await response.json())["error"] == "forbidden_host", host
        for host in (f"127.0.0.1:{api.port}", f"localhost:{api.port}", f"LOCALHOST:{api.port}", f"[::1]:{api.port}"):
            async with http.get("/api/chargers", headers={"Host": host}) as response:
                assert response.status == 200, host


async def test_no_token_is_401_and_the_token_file_is_owner_only(csms: CentralSystem) -> None:
    path = token_path(csms.settings)
    assert not path.exists()
    async with api_for(csms, authorized=False) as (api, http):
        assert path == csms.settings.db.parent / TOKEN_FILE and api.token_source == str(path)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600 and path.stat().st_uid == os.getuid()
        assert path.read_text().strip() == api.token and len(api.token or "") >= 32
        async with http.get("/api/chargers") as response:
            assert response.status == 401 and str(path) in (await response.json())["message"]
        async with http.post("/api/chargers/X/reset", json={"type": "Soft"},
                             headers={"Authorization": "Bearer nope"}) as response:
            assert response.status == 401
        async with http.get("/api/chargers", headers={"Authorization": f"Bearer {api.token}"}) as response:
            assert response.status == 200
    first = api.token
    path.chmod(0o644)  # someone loosened it: narrowed again, and the same token is kept
    again = ApiServer(csms)
    await again.start()
    try:
        assert again.token == first and stat.S_IMODE(path.stat().st_mode) == 0o600
    finally:
        await again.stop()


async def test_an_explicit_token_wins_over_the_file(settings_factory: Callable[..., Settings]) -> None:
    csms = CentralSystem(settings_factory(api_port=0, api_token="given-token-123"))
    await csms.start()
    try:
        async with api_for(csms, authorized=False) as (api, http):
            assert api.token == "given-token-123" and not token_path(csms.settings).exists()
            async with http.get("/api/chargers", headers={"Authorization": "Bearer given-token-123"}) as response:
                assert response.status == 200
    finally:
        await csms.stop()


def test_call_needs_no_flags_with_the_default_token_file(tmp_path: Path) -> None:
    """`ocpp-console serve` and `ocpp-console call` as real processes of one user, with the
    default data and config directories: the token is made by serve and found by call."""
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OCPP_CONSOLE_", "XDG_"))}
    env.update(HOME=str(home), XDG_DATA_HOME=str(home / "data"), XDG_CONFIG_HOME=str(home / "config"),
               XDG_STATE_HOME=str(home / "state"))
    ws_port, api_port = free_port(), free_port()
    config = home / "config" / "ocpp-console" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text(f'host = "127.0.0.1"\nport = {ws_port}\napi_port = {api_port}\nunknown_chargers = "accept"\n')
    proc = subprocess.Popen([sys.executable, "-m", "ocpp_console", "serve"], stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stderr is not None
        for line in proc.stderr:
            if "HTTP API on" in line:
                break
        else:
            pytest.fail("serve did not start its API")
        token_file = home / "data" / "ocpp-console" / TOKEN_FILE
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600

        async def with_a_charger() -> subprocess.CompletedProcess[str]:
            from websockets.asyncio.client import connect

            from tests.clients import TestCharger

            async with connect(f"ws://127.0.0.1:{ws_port}/CP-SHELL", subprotocols=["ocpp1.6"]) as ws:
                cp = TestCharger("CP-SHELL", ws)
                task = asyncio.create_task(cp.start())
                await cp.boot()
                done = await asyncio.to_thread(
                    subprocess.run,
                    [sys.executable, "-m", "ocpp_console", "call", "CP-SHELL", "reset", "--json", '{"type": "Soft"}'],
                    capture_output=True, text=True, env=env, timeout=30,
                )
                assert ("Reset", {"type": "Soft"}) in cp.received
                task.cancel()
                return done

        done = asyncio.run(with_a_charger())
        assert done.returncode == 0, done.stderr
        assert '"status": "Accepted"' in done.stdout
        # another user's shell (no token file where it looks) is refused
        other = {**env, "XDG_DATA_HOME": str(tmp_path / "elsewhere")}
        refused = subprocess.run([sys.executable, "-m", "ocpp_console", "call", "CP-SHELL", "reset", "--json",
                                  '{"type": "Soft"}'], capture_output=True, text=True, env=other, timeout=30)
        assert refused.returncode == 1 and "401 unauthorized" in refused.stderr
    finally:
        proc.terminate()
        proc.wait(timeout=15)
