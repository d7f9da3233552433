"""One-time grants for file transfers (files/grants.py): for one charger and one request, until
used or expired; file names that cannot leave their folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from ocpp_console.files.grants import Grants


def test_a_grant_is_for_its_request_until_used_or_expired(tmp_path: Path) -> None:
    now = [1000.0]
    grants = Grants(tmp_path, clock=lambda: now[0])
    firmware = grants.issue("CP-1", "firmware", "fw-2.0.bin", ttl_s=60)
    upload = grants.issue("CP-1", "diagnostics")
    assert firmware.token != upload.token and firmware.user != upload.user
    assert grants.check_token(firmware.token) == firmware and grants.check_ftp(upload.user, upload.token) == upload
    assert firmware.max_bytes is None and upload.max_bytes and upload.upload and not firmware.upload
    assert grants.check_ftp(upload.user, firmware.token) is None  # another grant's password
    assert grants.check_token("guess") is None and grants.check_ftp("nobody", "x") is None
    grants.consume(upload)
    assert grants.check_ftp(upload.user, upload.token) is None and grants.check_token(upload.token) is None
    now[0] += 61
    assert grants.check_token(firmware.token) is None  # expired


def test_file_names_stay_in_their_folder(tmp_path: Path) -> None:
    grants = Grants(tmp_path)
    assert grants.firmware_path("fw.bin") == tmp_path / "firmware" / "fw.bin"
    assert grants.firmware_path("../../etc/passwd") == tmp_path / "firmware" / "passwd"  # the name only
    for bad in ("", "..", ".hidden", "dir/.."):
        with pytest.raises(ValueError):
            grants.firmware_path(bad)
    assert grants.upload_dir("CP/1").parent == tmp_path / "uploads" and grants.upload_dir("CP/1").name == "CP_1"


def test_a_grant_works_only_from_its_chargers_address(tmp_path: Path) -> None:
    grants = Grants(tmp_path)
    grant = grants.issue("CP-1", "diagnostics", address="::ffff:10.0.0.5")  # as an IPv6 socket sees IPv4
    assert grant.address == "10.0.0.5"
    assert grants.check_token(grant.token, "10.0.0.5") == grant == grants.check_ftp(grant.user, grant.token, "10.0.0.5")
    assert grants.check_token(grant.token, "10.0.0.6") is None and grants.check_ftp(grant.user, grant.token, "10.0.0.6") is None
    anywhere = grants.issue("CP-1", "firmware", "fw.bin")  # files_any_address: no address kept
    assert grants.check_token(anywhere.token, "192.0.2.1") == anywhere
