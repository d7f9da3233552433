"""The FTP file server (files/ftp.py) over real sockets: the simulator and Python's ftplib as
clients, one-time grants as the only logins, the grant's one file or folder as the whole world."""

from __future__ import annotations

import asyncio
import ftplib
import hashlib
import io
import os
import re
import socket
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from ocpp_console.csms import CentralSystem
from ocpp_console.csms import events as evs
from ocpp_console.files.grants import Grant
from ocpp_console.settings import Settings
from ocpp_console.sim.transfer import Fetched
from tests.conftest import EventWaiter
from tests.test_sim import base_url, fast_options, fresh, running, until

IMAGE = "sim-2.0.0.bin"


@pytest.fixture
def settings(settings_factory: Callable[..., Settings]) -> Settings:
    return settings_factory(ftp_port=0)


def image_bytes(size: int = 300_000) -> bytes:
    return os.urandom(size)


def put_image(csms: CentralSystem, name: str, body: bytes) -> Path:
    path = csms.grants.firmware_path(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(body)
    return path


def ftp_url(csms: CentralSystem, grant: Grant, path: str = "/") -> str:
    assert csms.ftp is not None and csms.ftp.port
    return f"ftp://{grant.user}:{grant.token}@127.0.0.1:{csms.ftp.port}{path}"


def login(csms: CentralSystem, user: str, password: str) -> ftplib.FTP:
    """Blocking: call through asyncio.to_thread."""
    assert csms.ftp is not None
    client = ftplib.FTP(timeout=10)
    client.connect("127.0.0.1", csms.ftp.port)
    try:
        client.login(user, password)
    except BaseException:
        client.close()
        raise
    return client


def refused_login(csms: CentralSystem, user: str, password: str) -> str:
    try:
        login(csms, user, password).quit()
    except ftplib.error_perm as exc:
        return str(exc)
    return "accepted"


def transfers(waiter: EventWaiter, charger_id: str) -> list[evs.FileTransfer]:
    return [e for e in waiter.events if isinstance(e, evs.FileTransfer) and e.charger_id == charger_id]


def done(charger_id: str) -> Callable[[evs.Event], bool]:
    return lambda e: isinstance(e, evs.FileTransfer) and e.charger_id == charger_id and e.done


async def notes(csms: CentralSystem, cp_id: str, action: str) -> list[str]:
    return [n["status"] for n in await csms.store.notifications(cp_id) if n["action"] == action]


async def has_note(csms: CentralSystem, cp_id: str, action: str, status: str) -> bool:
    return status in await notes(csms, cp_id, action)


async def in_thread(fn: Callable[..., Any], *args: Any) -> Any:
    import asyncio

    return await asyncio.to_thread(fn, *args)


# -- the simulator as the charger ---------------------------------------------------------------


async def test_the_simulator_fetches_firmware_by_ftp_installs_it_and_reboots(
    csms: CentralSystem, waiter: EventWaiter
) -> None:
    body = image_bytes()
    put_image(csms, IMAGE, body)
    grant = csms.grants.issue("SIM-FTPF", "firmware", IMAGE)
    async with running(base_url(csms), "SIM-FTPF", options=fast_options(fetch_firmware=True)) as charger:
        booted = fresh(waiter)
        await csms.commands.update_firmware("SIM-FTPF", ftp_url(csms, grant, f"/{IMAGE}"))
        boot = await booted(lambda e: isinstance(e, evs.ChargerBooted))
        assert boot.firmware_version == "2.0.0"
        assert charger.firmware_image == Fetched(len(body), hashlib.sha256(body).hexdigest())
    assert await notes(csms, "SIM-FTPF", "FirmwareStatusNotification") == [
        "Downloading", "Downloaded", "Installing", "Installed"
    ]
    # The server saw the bytes go: progress on the way, the whole image at the end.
    seen = transfers(waiter, "SIM-FTPF")
    assert seen[-1] == evs.FileTransfer("SIM-FTPF", kind="firmware", name=IMAGE, protocol="ftp",
                                        bytes=len(body), total=len(body), done=True, error=None)
    counts = [e.bytes for e in seen]
    assert counts == sorted(counts) and len(seen) >= 2
    # Used: the credential is no good any more.
    assert (await in_thread(refused_login, csms, grant.user, grant.token)).startswith("530")


async def test_a_refused_ftp_login_is_download_failed(csms: CentralSystem) -> None:
    put_image(csms, IMAGE, image_bytes(1000))
    grant = csms.grants.issue("SIM-FTPX", "firmware", IMAGE)
    wrong = Grant(grant.token[::-1], grant.user, grant.charger_id, grant.kind, grant.name, grant.expires_at)
    async with running(base_url(csms), "SIM-FTPX", options=fast_options(fetch_firmware=True)) as charger:
        await csms.commands.update_firmware("SIM-FTPX", ftp_url(csms, wrong, f"/{IMAGE}"), retries=0)
        await until(lambda: has_note(csms, "SIM-FTPX", "FirmwareStatusNotification", "DownloadFailed"),
                    what="DownloadFailed")
        assert charger.firmware_version == "1.0.0" and charger.firmware_image is None
    assert await notes(csms, "SIM-FTPX", "FirmwareStatusNotification") == ["Downloading", "DownloadFailed"]


async def test_the_simulator_uploads_diagnostics_by_ftp(csms: CentralSystem, waiter: EventWaiter) -> None:
    grant = csms.grants.issue("SIM-FTPD", "diagnostics")
    async with running(base_url(csms), "SIM-FTPD", options=fast_options(upload_diagnostics=True)):
        uploaded = fresh(waiter)
        result = await csms.commands.get_diagnostics("SIM-FTPD", ftp_url(csms, grant))
        event = await uploaded(done("SIM-FTPD"))
        await until(lambda: has_note(csms, "SIM-FTPD", "DiagnosticsStatusNotification", "Uploaded"), what="Uploaded")
    landed = csms.grants.upload_dir("SIM-FTPD") / result.file_name
    assert landed.is_file() and b"SIM-FTPD" in landed.read_bytes()
    assert isinstance(event, evs.FileTransfer)
    assert (event.kind, event.name, event.bytes, event.error) == (
        "diagnostics", result.file_name, landed.stat().st_size, None
    )
    assert await notes(csms, "SIM-FTPD", "DiagnosticsStatusNotification") == ["Uploading", "Uploaded"]
    assert (await in_thread(refused_login, csms, grant.user, grant.token)).startswith("530")


async def test_the_simulator_uploads_its_log_by_ftp(csms: CentralSystem, waiter: EventWaiter) -> None:
    grant = csms.grants.issue("SIM-FTPL", "log")
    async with running(base_url(csms), "SIM-FTPL", options=fast_options(upload_diagnostics=True)):
        uploaded = fresh(waiter)
        result = await csms.commands.get_log("SIM-FTPL", "SecurityLog", 3, {"remoteLocation": ftp_url(csms, grant)})
        await uploaded(done("SIM-FTPL"))
        await until(lambda: has_note(csms, "SIM-FTPL", "LogStatusNotification", "Uploaded"), what="Uploaded")
    assert result.filename
    assert b"security log" in (csms.grants.upload_dir("SIM-FTPL") / result.filename).read_bytes()


async def test_an_upload_over_the_limit_is_cut_and_upload_failed(csms: CentralSystem, waiter: EventWaiter) -> None:
    grant = csms.grants.issue("SIM-FTPB", "diagnostics", max_bytes=40)  # the diagnostics text is longer
    async with running(base_url(csms), "SIM-FTPB", options=fast_options(upload_diagnostics=True)):
        cut = fresh(waiter)
        result = await csms.commands.get_diagnostics("SIM-FTPB", ftp_url(csms, grant), retries=0)
        event = await cut(done("SIM-FTPB"))
        await until(lambda: has_note(csms, "SIM-FTPB", "DiagnosticsStatusNotification", "UploadFailed"),
                    what="UploadFailed")
    assert isinstance(event, evs.FileTransfer) and event.error is not None and "larger than 40 bytes" in event.error
    assert event.bytes > 40
    assert not (csms.grants.upload_dir("SIM-FTPB") / result.file_name).exists()


# -- ftplib as the client -------------------------------------------------------------------------


async def test_only_a_live_grant_of_the_right_pair_logs_in(csms: CentralSystem) -> None:
    put_image(csms, IMAGE, image_bytes(1000))
    mine = csms.grants.issue("CP-A", "firmware", IMAGE)
    others = csms.grants.issue("CP-B", "firmware", IMAGE)
    expired = csms.grants.issue("CP-A", "firmware", IMAGE, ttl_s=0)

    assert (await in_thread(refused_login, csms, mine.user, "not-the-token")).startswith("530")
    assert (await in_thread(refused_login, csms, mine.user, others.token)).startswith("530")  # another charger's
    assert (await in_thread(refused_login, csms, expired.user, expired.token)).startswith("530")
    assert (await in_thread(refused_login, csms, "anonymous", "")).startswith("530")
    assert await in_thread(refused_login, csms, mine.user, mine.token) == "accepted"  # and it still works


def _firmware_session(csms: CentralSystem, grant: Grant) -> dict[str, str]:
    """Everything a firmware grant tries beyond its image, and what the server answered."""
    answers: dict[str, str] = {}
    client = login(csms, grant.user, grant.token)
    for command in ("RETR ../x", "RETR other-1.0.bin", "RETR /etc/passwd", "STOR new.bin", "DELE " + IMAGE,
                    "RNFR " + IMAGE, "MKD sub", "CWD ..", "CWD /etc", "CWD /", "PWD"):
        try:
            if command.startswith(("RETR", "STOR")):
                client.retrbinary(command, lambda _: None) if command.startswith("RETR") else \
                    client.storbinary(command, io.BytesIO(b"x"))
                answers[command] = "transferred"
            else:
                answers[command] = client.sendcmd(command)
        except ftplib.Error as exc:
            answers[command] = str(exc)
    answers["NLST"] = " ".join(client.nlst())
    got = io.BytesIO()
    client.retrbinary(f"RETR {IMAGE}", got.write)
    answers["image"] = hashlib.sha256(got.getvalue()).hexdigest()
    client.quit()
    return answers


async def test_a_firmware_grant_sees_its_one_image_read_only(csms: CentralSystem) -> None:
    body = image_bytes(5000)
    put_image(csms, IMAGE, body)
    put_image(csms, "other-1.0.bin", b"someone else's")
    grant = csms.grants.issue("CP-F", "firmware", IMAGE)
    answers = await in_thread(_firmware_session, csms, grant)

    for command in ("RETR ../x", "RETR other-1.0.bin", "RETR /etc/passwd", "STOR new.bin", "CWD /etc", "CWD .."):
        assert answers[command].startswith("550"), (command, answers[command])
    for command in ("DELE", "RNFR", "MKD"):  # not even understood
        assert answers[f"{command} {IMAGE}" if command != "MKD" else "MKD sub"].startswith("500")
    # "/" is the grant's own folder, not the machine's: going there changes nothing (a charger may
    # CWD to its URL's folder first).
    assert answers["CWD /"] == '250 "/" is the current directory.'
    assert answers["PWD"] == '257 "/" is the current directory.'
    assert answers["NLST"] == IMAGE
    assert answers["image"] == hashlib.sha256(body).hexdigest()
    assert not csms.grants.firmware_path("new.bin").exists()
    assert csms.grants.firmware_path(IMAGE).read_bytes() == body


def _upload_session(csms: CentralSystem, grant: Grant) -> dict[str, str]:
    answers: dict[str, str] = {}
    client = login(csms, grant.user, grant.token)
    for command in ("STOR ../../x", "STOR ../CP-OTHER/x", "STOR /etc/x", "NLST", "RETR old.log", "DELE old.log",
                    "RNFR old.log", "CWD ..", "REST 10"):
        try:
            if command.startswith("STOR"):
                client.storbinary(command, io.BytesIO(b"escape"))
                answers[command] = "transferred"
            elif command == "NLST":
                answers[command] = " ".join(client.nlst())
            elif command.startswith("RETR"):
                client.retrbinary(command, lambda _: None)
                answers[command] = "transferred"
            else:
                answers[command] = client.sendcmd(command)
        except ftplib.Error as exc:
            answers[command] = str(exc)
    try:  # a STOR after REST would resume an old file past the size count
        client.storbinary("STOR resumed.log", io.BytesIO(b"x"))
        answers["STOR after REST"] = "transferred"
    except ftplib.Error as exc:
        answers["STOR after REST"] = str(exc)
    answers["STOR"] = client.storbinary("STOR diag.log", io.BytesIO(b"diagnostics\n" * 1000))
    try:
        client.storbinary("STOR second.log", io.BytesIO(b"again"))
        answers["STOR again"] = "transferred"
    except ftplib.Error as exc:
        answers["STOR again"] = str(exc)
    client.quit()
    return answers


async def test_an_upload_grant_only_stores_into_its_chargers_folder(csms: CentralSystem, tmp_path: Path) -> None:
    folder = csms.grants.upload_dir("CP-U")
    folder.mkdir(parents=True)
    (folder / "old.log").write_text("an earlier upload")
    grant = csms.grants.issue("CP-U", "diagnostics")
    answers = await in_thread(_upload_session, csms, grant)

    for command in ("STOR ../../x", "STOR ../CP-OTHER/x", "STOR /etc/x", "NLST", "RETR old.log", "CWD .."):
        assert answers[command].startswith("550"), (command, answers[command])
    assert answers["DELE old.log"].startswith("500") and answers["RNFR old.log"].startswith("500")
    assert answers["STOR after REST"].startswith("554")
    assert answers["STOR"].startswith("226")
    assert answers["STOR again"].startswith("550")  # the grant was for one upload
    assert sorted(p.name for p in folder.iterdir()) == ["diag.log", "old.log"]
    assert (folder / "diag.log").read_bytes() == b"diagnostics\n" * 1000
    assert (folder / "old.log").read_text() == "an earlier upload"
    assert not any(p.name == "x" for p in csms.grants.files_dir.rglob("*")) and not (tmp_path / "x").exists()


def _store(csms: CentralSystem, grant: Grant, body: bytes) -> str:
    client = login(csms, grant.user, grant.token)
    try:
        return client.storbinary("STOR big.log", io.BytesIO(body))
    except (ftplib.Error, OSError) as exc:
        return str(exc) or type(exc).__name__
    finally:
        client.close()


async def test_an_ftplib_upload_over_the_limit_is_cut(csms: CentralSystem, waiter: EventWaiter) -> None:
    grant = csms.grants.issue("CP-BIG", "diagnostics", max_bytes=100_000)
    cut = fresh(waiter)
    answer = await in_thread(_store, csms, grant, b"z" * 1_000_000)
    event = await cut(done("CP-BIG"))
    assert not answer.startswith("226")
    assert not (csms.grants.upload_dir("CP-BIG") / "big.log").exists()
    assert isinstance(event, evs.FileTransfer) and event.error is not None and "cut" in event.error
    assert 100_000 < event.bytes < 1_000_000
    # Not completed, so not consumed: the charger may try again with a smaller file.
    retried = fresh(waiter)
    assert (await in_thread(_store, csms, grant, b"y" * 1000)).startswith("226")
    ok = await retried(done("CP-BIG"))
    assert isinstance(ok, evs.FileTransfer) and (ok.bytes, ok.error) == (1000, None)


# -- passive mode and the settings ----------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
async def passive_csms(settings_factory: Callable[..., Settings]) -> AsyncIterator[CentralSystem]:
    port = free_port()
    system = CentralSystem(settings_factory(ftp_port=0, ftp_passive_ports=f"{port}-{port}", ftp_nat_address="10.9.8.7"))
    await system.start()
    try:
        yield system
    finally:
        await system.stop()


def _passive_replies(csms: CentralSystem, grant: Grant) -> tuple[str, str]:
    client = login(csms, grant.user, grant.token)
    try:
        return client.sendcmd("PASV"), client.sendcmd("EPSV")
    finally:
        client.close()


def _fetch_via_epsv(csms: CentralSystem, grant: Grant) -> bytes:
    """EPSV names no address: the data connection goes where the control one did (what a charger
    behind NAT gets right whatever the server believes its address is)."""
    client = login(csms, grant.user, grant.token)
    client.af = socket.AF_INET6  # makes ftplib use EPSV on an IPv4 connection
    got = io.BytesIO()
    try:
        client.retrbinary(f"RETR {IMAGE}", got.write)
    finally:
        client.close()
    return got.getvalue()


async def test_passive_ports_and_the_nat_address_are_what_the_settings_say(passive_csms: CentralSystem) -> None:
    csms = passive_csms
    port = csms.settings.ftp_passive_range[0]  # type: ignore[index]
    body = image_bytes(2000)
    put_image(csms, IMAGE, body)
    grant = csms.grants.issue("CP-P", "firmware", IMAGE)
    pasv, epsv = await in_thread(_passive_replies, csms, grant)
    numbers = re.search(r"\((\d+),(\d+),(\d+),(\d+),(\d+),(\d+)\)", pasv)
    assert numbers is not None
    a, b, c, d, high, low = (int(n) for n in numbers.groups())
    assert (f"{a}.{b}.{c}.{d}", high * 256 + low) == ("10.9.8.7", port)  # --ftp-nat-address, --ftp-passive-ports
    assert f"(|||{port}|)" in epsv
    assert await in_thread(_fetch_via_epsv, csms, grant) == body


async def test_ftp_is_off_unless_a_port_is_given(settings_factory: Callable[..., Settings]) -> None:
    system = CentralSystem(settings_factory())
    await system.start()
    try:
        assert system.ftp is None and system.grants.files_dir == system.settings.files_path
    finally:
        await system.stop()
    assert system.ftp is None


def test_a_passive_port_range_is_checked() -> None:
    from pydantic import ValidationError

    assert Settings(ftp_passive_ports="60000-60009").ftp_passive_range == range(60000, 60010)
    for bad in ("60009-60000", "ports", "0-10", "1-70000"):
        with pytest.raises(ValidationError):
            Settings(ftp_passive_ports=bad)


async def test_an_ftp_login_for_one_charger_is_no_good_from_another_address(csms: CentralSystem) -> None:
    grant = csms.grants.issue("CP-A", "diagnostics", address="127.0.0.1")
    assert csms.ftp is not None

    def from_other_address() -> str:
        client = ftplib.FTP(timeout=10, source_address=("127.0.0.2", 0))
        client.connect("127.0.0.1", csms.ftp.port)
        try:
            client.login(grant.user, grant.token)
        except ftplib.error_perm as exc:
            return str(exc)
        finally:
            client.close()
        return "accepted"

    assert (await asyncio.to_thread(from_other_address)).startswith("530")
    assert (await asyncio.to_thread(login, csms, grant.user, grant.token)).quit()  # from its own address


def _store_named(csms: CentralSystem, grant: Grant, name: str, body: bytes) -> str:
    client = login(csms, grant.user, grant.token)
    try:
        return client.storbinary(f"STOR {name}", io.BytesIO(body))
    finally:
        client.close()


async def test_an_ftp_upload_of_a_name_already_there_keeps_both(csms: CentralSystem) -> None:
    for body in (b"first", b"second"):
        grant = csms.grants.issue("CP-FSAME", "diagnostics")
        assert (await in_thread(_store_named, csms, grant, "diag.log", body)).startswith("226")
    folder = csms.grants.upload_dir("CP-FSAME")
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == {"diag.log": b"first", "diag-2.log": b"second"}
