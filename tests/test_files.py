"""The files the central system hosts (files/): the firmware library, the HTTP file server and the
URLs chargers are given, over real sockets with the built-in simulator as the charger."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from yarl import URL

from ocpp_console.api import ApiServer
from ocpp_console.cli import main
from ocpp_console.csms import CentralSystem, operations
from ocpp_console.csms import events as ev
from ocpp_console.files.library import add_image
from ocpp_console.files.urls import http_url
from ocpp_console.settings import Settings
from tests.conftest import EventWaiter
from tests.test_sim import fast_options, fresh, running, until

IMAGE = bytes(range(256)) * 1200  # 300 KiB: several progress events


@pytest.fixture
def settings(settings_factory: Callable[..., Settings]) -> Settings:
    return settings_factory(files_port=0, api_port=0)


@pytest.fixture
async def image(csms: CentralSystem, tmp_path: Path) -> dict[str, Any]:
    source = tmp_path / "sim-2.0.0.bin"
    source.write_bytes(IMAGE)
    return await add_image(csms.store, csms.files.grants.firmware_dir, source)


def base(csms: CentralSystem) -> str:
    return f"ws://127.0.0.1:{csms.port}"


async def fetch(url: str | URL, method: str = "GET", data: bytes | None = None) -> tuple[int, bytes]:
    async with aiohttp.ClientSession() as http, http.request(method, url, data=data) as response:
        return response.status, await response.read()


def files_url(csms: CentralSystem, path: str) -> URL:
    return URL(f"http://127.0.0.1:{csms.files.http_port}{path}", encoded=True)  # sent as written, `..` included


async def test_the_simulator_fetches_a_library_image_and_reboots_with_it(
    csms: CentralSystem, waiter: EventWaiter, image: dict[str, Any]
) -> None:
    assert image["sha256"] == hashlib.sha256(IMAGE).hexdigest() and image["size"] == len(IMAGE)
    assert (csms.files.grants.firmware_dir / "sim-2.0.0.bin").read_bytes() == IMAGE
    async with running(base(csms), "SIM-HF", options=fast_options(fetch_firmware=True)) as charger:
        booted = fresh(waiter)
        op = operations.find("update-firmware")
        assert op is not None
        await operations.execute(csms.commands, "SIM-HF", op, {"firmware": "sim-2.0.0.bin",
                                                                "retrieveDate": "2020-01-01T00:00:00Z"})
        boot = await booted(lambda e: isinstance(e, ev.ChargerBooted))
        assert boot.firmware_version == "2.0.0"
        await charger.wait_ready(10)
        # what the charger received is the library's image, byte for byte
        assert charger.firmware_image is not None
        assert (charger.firmware_image.size, charger.firmware_image.sha256) == (len(IMAGE), image["sha256"])
    transfers = [e for e in waiter.events if isinstance(e, ev.FileTransfer)]
    assert transfers[-1] == ev.FileTransfer("SIM-HF", "firmware", "sim-2.0.0.bin", "http", len(IMAGE), len(IMAGE), True)
    assert len(transfers) >= 3 and [e.bytes for e in transfers] == sorted(e.bytes for e in transfers)
    sent = [m for m in await csms.store.message_log(limit=100) if m["action"] == "UpdateFirmware"]
    location = sent[-1]["raw"].split('"location":"')[1].split('"')[0]
    assert location.startswith(f"http://127.0.0.1:{csms.files.http_port}/t/") and location.endswith("/sim-2.0.0.bin")
    assert await fetch(location) == (404, b"")  # its request completed: the URL is spent


async def test_a_grant_serves_its_image_once_whole_and_nothing_else(csms: CentralSystem, image: dict[str, Any]) -> None:
    grants = csms.files.grants
    grant = grants.issue("CP-A", "firmware", "sim-2.0.0.bin")
    port = csms.files.http_port
    assert port is not None
    other_name = files_url(csms, f"/t/{grant.token}/other.bin")
    assert await fetch(other_name) == (404, b"")
    for path in (f"/t/{grant.token}/..%2F..%2Fcsms.sqlite", f"/t/{grant.token}/../../csms.sqlite",
                 f"/t/{grant.token}/%2Fetc%2Fpasswd", "/firmware/sim-2.0.0.bin", "/t/", "/",
                 f"/t/{grant.token}/.hidden", f"/t/{grant.token[:-1]}x/sim-2.0.0.bin"):
        assert (await fetch(files_url(csms, path)))[0] == 404, path
    assert (await fetch(http_url("127.0.0.1", port, grant), "PUT", b"x"))[0] == 404  # a download grant takes nothing
    status, body = await fetch(http_url("127.0.0.1", port, grant))
    assert status == 200 and hashlib.sha256(body).hexdigest() == image["sha256"]
    assert (await fetch(http_url("127.0.0.1", port, grant)))[0] == 404  # used
    # An upload grant is another charger's: what is sent with it lands in that charger's folder only.
    upload = grants.issue("CP-B", "diagnostics")
    assert (await fetch(http_url("127.0.0.1", port, upload) + "sim-2.0.0.bin"))[0] == 404  # no download with it
    assert (await fetch(http_url("127.0.0.1", port, upload) + "d.log", "PUT", b"hello"))[0] == 201
    assert [f.name for f in csms.files.received("CP-B")] == ["d.log"] and csms.files.received("CP-A") == []
    assert (await fetch(http_url("127.0.0.1", port, upload) + "e.log", "PUT", b"again"))[0] == 404  # used


async def test_an_upload_over_the_limit_is_cut_and_reported(csms: CentralSystem, waiter: EventWaiter) -> None:
    grant = csms.files.grants.issue("CP-L", "log", max_bytes=100_000)
    assert csms.files.http_port is not None
    status, _ = await fetch(http_url("127.0.0.1", csms.files.http_port, grant) + "big.log", "POST", b"x" * 300_000)
    assert status == 413
    assert csms.files.received("CP-L") == [] and not list(csms.files.grants.upload_dir("CP-L").iterdir())
    last = await waiter.wait_for(lambda e: isinstance(e, ev.FileTransfer) and e.done)
    assert isinstance(last, ev.FileTransfer) and last.error and "limit" in last.error and last.bytes <= 100_000


async def api_call(api: ApiServer, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {api.token}"}
    async with aiohttp.ClientSession() as http, http.request(method, api.url + path, json=body, headers=headers) as r:
        return r.status, (await r.json() if r.content_type == "application/json" else await r.read())


async def test_the_simulator_uploads_diagnostics_listed_by_the_api(csms: CentralSystem, api: ApiServer) -> None:
    async with running(base(csms), "SIM-HD", options=fast_options(upload_diagnostics=True)):
        status, answer = await api_call(api, "POST", "/api/chargers/SIM-HD/get-diagnostics", {})
        assert status == 200, answer
        name = answer["fileName"]
        await until(lambda: csms.files.received("SIM-HD"), what="the upload")
    status, listed = await api_call(api, "GET", "/api/chargers/SIM-HD/diagnostics")
    assert status == 200 and [f["name"] for f in listed] == [name] and listed[0]["size"] > 0
    status, body = await api_call(api, "GET", f"/api/chargers/SIM-HD/diagnostics/{name}")
    assert status == 200 and b"SIM-HD" in body and len(body) == listed[0]["size"]
    assert (await api_call(api, "GET", "/api/chargers/SIM-HD/diagnostics/nope.log"))[0] == 404
    assert (await api_call(api, "GET", "/api/chargers/SIM-HD/diagnostics/..%2Fx"))[0] == 404


async def test_the_api_lists_adds_and_sends_library_images(
    csms: CentralSystem, api: ApiServer, waiter: EventWaiter, tmp_path: Path
) -> None:
    source = tmp_path / "fw-3.1.0.bin"
    source.write_bytes(b"image" * 1000)
    status, row = await api_call(api, "POST", "/api/firmware", {"path": str(source)})
    assert status == 201 and row["size"] == 5000 and row["sha256"] == hashlib.sha256(b"image" * 1000).hexdigest()
    assert (await api_call(api, "POST", "/api/firmware", {"path": str(tmp_path / "missing")}))[0] == 404
    status, listed = await api_call(api, "GET", "/api/firmware")
    assert status == 200 and [r["name"] for r in listed] == ["fw-3.1.0.bin"]
    async with running(base(csms), "SIM-AF", options=fast_options(fetch_firmware=True)):
        booted = fresh(waiter)
        assert (await api_call(api, "POST", "/api/chargers/SIM-AF/update-firmware", {"firmware": "nope.bin"}))[0] == 404
        status, answer = await api_call(api, "POST", "/api/chargers/SIM-AF/update-firmware",
                                        {"firmware": "fw-3.1.0.bin", "retrieveDate": "2020-01-01T00:00:00Z"})
        assert status == 200, answer
        boot = await booted(lambda e: isinstance(e, ev.ChargerBooted))
        assert boot.firmware_version == "3.1.0"


def test_firmware_add_and_list_commands(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "image.bin"
    source.write_bytes(IMAGE)
    db = tmp_path / "site.sqlite"
    assert main(["firmware", "add", str(source), "--name", "sim-4.0.0.bin", "--db", str(db)]) == 0
    assert (tmp_path / "files" / "firmware" / "sim-4.0.0.bin").read_bytes() == IMAGE
    assert main(["firmware", "list", "--db", str(db)]) == 0
    out = capsys.readouterr().out
    assert f"sim-4.0.0.bin\t{len(IMAGE)}\t{hashlib.sha256(IMAGE).hexdigest()}" in out
    assert main(["firmware", "add", str(tmp_path / "missing.bin"), "--db", str(db)]) == 1
    assert main(["firmware", "add", str(source), "--name", "../x.bin", "--db", str(db)]) == 1
    assert "not a plain file name" in capsys.readouterr().err


def test_urls_name_the_address_the_charger_used_ipv6_in_brackets(tmp_path: Path) -> None:
    from ocpp_console.files.grants import Grants
    from ocpp_console.files.urls import ftp_url

    grants = Grants(tmp_path)
    image = grants.issue("CP-6", "firmware", "fw 1.bin")
    upload = grants.issue("CP-6", "diagnostics")
    assert http_url("fe80::1", 8081, image) == f"http://[fe80::1]:8081/t/{image.token}/fw%201.bin"
    assert http_url("10.0.0.5", 8081, upload) == f"http://10.0.0.5:8081/t/{upload.token}/"
    assert ftp_url("::1", 2121, upload) == f"ftp://{upload.user}:{upload.token}@[::1]:2121/"


async def test_a_url_for_one_charger_is_no_good_from_another_address(csms: CentralSystem, image: dict[str, Any]) -> None:
    """A grant is issued for the address its charger connects from; a request from any other
    (here 127.0.0.2, another loopback address) is refused as if the URL did not exist."""
    grant = csms.files.grants.issue("CP-A", "firmware", "sim-2.0.0.bin", address="127.0.0.1")
    url = http_url("127.0.0.1", csms.files.http_port or 0, grant)
    connector = aiohttp.TCPConnector(local_addr=("127.0.0.2", 0))
    async with aiohttp.ClientSession(connector=connector) as http, http.get(url) as response:
        assert response.status == 404
    assert (await fetch(url))[0] == 200  # from the charger's own address


async def test_an_upload_of_a_name_already_there_keeps_both(csms: CentralSystem) -> None:
    """Chargers often call every diagnostics file the same: the second is stored beside the first."""
    assert csms.files.http_port is not None
    for body in (b"first", b"second", b"third"):
        grant = csms.files.grants.issue("CP-SAME", "diagnostics")
        status, _ = await fetch(http_url("127.0.0.1", csms.files.http_port, grant) + "diagnostics.tar.gz", "PUT", body)
        assert status == 201
    folder = csms.files.grants.upload_dir("CP-SAME")
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == {
        "diagnostics.tar.gz": b"first", "diagnostics-2.tar.gz": b"second", "diagnostics-3.tar.gz": b"third"}


def test_unused_path_numbers_before_the_extensions(tmp_path: Path) -> None:
    from ocpp_console.files.grants import unused_path

    assert unused_path(tmp_path, "a.log") == tmp_path / "a.log"
    for name in ("a.log", "noext", ".hidden"):
        (tmp_path / name).write_text("x")
    assert unused_path(tmp_path, "a.log") == tmp_path / "a-2.log"
    assert unused_path(tmp_path, "noext") == tmp_path / "noext-2"
    assert unused_path(tmp_path, ".hidden") == tmp_path / ".hidden-2"
