"""The operator CA: made once beside the database, or the site's own; which CSRs it signs."""

from __future__ import annotations

import ssl
import stat
import subprocess
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ocpp_console.csms.ca import CAError, CSRRejected, OperatorCA
from ocpp_console.settings import Settings


def make_csr(
    cn: str | list[str] = "CP-1",
    org: str | None = "Test Operator",
    key: Any = None,
    digest: Any = None,
) -> str:
    key = key or ec.generate_private_key(ec.SECP256R1())
    names = [x509.NameAttribute(NameOID.COMMON_NAME, c) for c in ([cn] if isinstance(cn, str) else cn)]
    if org is not None:
        names.insert(0, x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
    csr = x509.CertificateSigningRequestBuilder().subject_name(x509.Name(names)).sign(key, digest or hashes.SHA256())
    return csr.public_bytes(serialization.Encoding.PEM).decode()


@pytest.fixture
def ca(settings_factory: Callable[..., Settings]) -> OperatorCA:
    return OperatorCA.load_or_create(settings_factory(tls_client_org="Test Operator"))


def test_builtin_ca_is_made_once_beside_the_database(settings_factory: Callable[..., Settings], tmp_path: Path) -> None:
    settings = settings_factory()
    first = OperatorCA.load_or_create(settings)
    assert first.builtin and first.cert_path == tmp_path / "ca" / "operator-ca.pem"
    key_file = tmp_path / "ca" / "operator-ca.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "ca").stat().st_mode) == 0o700
    again = OperatorCA.load_or_create(settings)
    assert again.certificate_pem == first.certificate_pem  # loaded, not made anew
    cert = x509.load_pem_x509_certificate(first.cert_path.read_bytes())
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "ocpp-console"
    # openssl agrees it is a CA certificate and prints the same fingerprint
    out = subprocess.run(["openssl", "x509", "-in", str(first.cert_path), "-noout", "-fingerprint", "-sha256"],
                         capture_output=True, text=True, check=True).stdout
    assert first.fingerprint in out


def test_signs_a_good_csr_for_client_authentication(ca: OperatorCA) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    signed = ca.sign_csr(make_csr("CP-1", key=key), "CP-1")
    certs = x509.load_pem_x509_certificates(signed.chain_pem.encode())
    assert len(certs) == 2 and certs[1] == ca.certificate
    cert = certs[0]
    assert cert.public_key() == key.public_key()
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "CP-1"
    assert cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "Test Operator"
    assert cert.issuer == ca.certificate.subject
    cert.verify_directly_issued_by(ca.certificate)
    assert list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert format(cert.serial_number, "x") == signed.serial_hex and cert.serial_number > 2**64
    days = (cert.not_valid_after_utc - datetime.now(timezone.utc)) / timedelta(days=1)
    assert 364 < days <= 365 and signed.not_after == cert.not_valid_after_utc
    # two requests, two serial numbers
    assert ca.sign_csr(make_csr("CP-1"), "CP-1").serial_hex != signed.serial_hex


@pytest.mark.parametrize(
    ("csr", "reason"),
    [
        (lambda: make_csr("CP-2"), "its CN is 'CP-2', not the charger id 'CP-1'"),
        (lambda: make_csr("CP-1", org="Someone Else"), "its O is 'Someone Else'"),
        (lambda: make_csr("CP-1", org=None), "names no O"),
        (lambda: make_csr(["CP-1", "CP-9"]), "names 2 CNs"),
        (lambda: make_csr(["CP-9", "CP-1"]), "names 2 CNs"),
        (lambda: make_csr(key=rsa.generate_private_key(65537, 1024)), "RSA key has 1024 bits"),
        (lambda: make_csr(key=ec.generate_private_key(ec.SECP256K1())), "curve secp256k1"),
        (lambda: make_csr(digest=hashes.SHA224()), "signed with sha224"),
        (lambda: "not a CSR at all", "not a PEM certificate signing request"),
        (lambda: _tampered(make_csr("CP-1")), "signature does not verify"),
    ],
    ids=["wrong-cn", "wrong-o", "no-o", "two-cns", "two-cns-last", "weak-rsa", "odd-curve", "weak-hash", "not-pem",
         "bad-signature"],
)
def test_refuses_a_bad_csr_with_the_reason(ca: OperatorCA, csr: Callable[[], str], reason: str) -> None:
    with pytest.raises(CSRRejected) as refused:
        ca.sign_csr(csr(), "CP-1")
    assert reason in refused.value.reason


def _tampered(pem: str) -> str:
    """The same CSR with its subject's CN changed after signing: the signature no longer matches."""
    der = x509.load_pem_x509_csr(pem.encode()).public_bytes(serialization.Encoding.DER)
    assert der.count(b"CP-1") == 1
    changed = der.replace(b"CP-1", b"CP-7")
    csr = x509.load_der_x509_csr(changed)
    return csr.public_bytes(serialization.Encoding.PEM).decode()


def test_rsa_csr_is_signed_and_any_o_when_no_organisation_is_configured(settings_factory: Callable[..., Settings]) -> None:
    ca = OperatorCA.load_or_create(settings_factory(certificate_days=30))
    signed = ca.sign_csr(make_csr("CP-1", org="Whoever", key=rsa.generate_private_key(65537, 2048)), "CP-1")
    cert = x509.load_pem_x509_certificates(signed.chain_pem.encode())[0]
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature and usage.key_encipherment
    assert 29 < (cert.not_valid_after_utc - datetime.now(timezone.utc)) / timedelta(days=1) <= 30


def test_site_ca_from_settings(settings_factory: Callable[..., Settings], tmp_path: Path) -> None:
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "site.key", "-out",
                    "site.pem", "-days", "30", "-subj", "/O=Site/CN=Site CA"], cwd=tmp_path, check=True, capture_output=True)
    ca = OperatorCA.load_or_create(settings_factory(ca_cert=tmp_path / "site.pem", ca_key=tmp_path / "site.key"))
    assert not ca.builtin and ca.cert_path == tmp_path / "site.pem"
    assert not (tmp_path / "ca").exists()  # no built-in CA made beside it
    signed = ca.sign_csr(make_csr("CP-1"), "CP-1")
    # openssl verifies the signed certificate against the site's CA, for client authentication
    (tmp_path / "cp.pem").write_text(signed.chain_pem)
    subprocess.run(["openssl", "verify", "-CAfile", "site.pem", "-purpose", "sslclient", "cp.pem"],
                   cwd=tmp_path, check=True, capture_output=True)
    # the site CA's certificate with another key is refused clearly
    subprocess.run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", "other.key"],
                   cwd=tmp_path, check=True, capture_output=True)
    with pytest.raises(CAError, match="is not the key of"):
        OperatorCA.load_or_create(settings_factory(ca_cert=tmp_path / "site.pem", ca_key=tmp_path / "other.key"))
    with pytest.raises(CAError, match="cannot read"):
        OperatorCA.load_or_create(settings_factory(ca_cert=tmp_path / "missing.pem", ca_key=tmp_path / "site.key"))


def test_server_certificate_for_wss(ca: OperatorCA, tmp_path: Path) -> None:
    chain, key = ca.issue_server_certificate(["localhost", "127.0.0.1"])
    (tmp_path / "server.pem").write_text(chain)
    (tmp_path / "server.key").write_text(key)
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(tmp_path / "server.pem", tmp_path / "server.key")  # the pair belongs together
    cert = x509.load_pem_x509_certificates(chain.encode())[0]
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["localhost"]
    assert [str(a) for a in names.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    subprocess.run(["openssl", "verify", "-CAfile", str(ca.cert_path), "-purpose", "sslserver", "server.pem"],
                   cwd=tmp_path, check=True, capture_output=True)


# -- `ocpp-console ca ...` -------------------------------------------------------------------------------


async def test_ca_commands_show_the_ca_and_make_a_server_certificate_that_serves_wss(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], settings_factory: Callable[..., Settings]
) -> None:
    from websockets.asyncio.client import connect

    from ocpp_console.cli import main
    from ocpp_console.csms import CentralSystem

    db = ["--db", str(tmp_path / "site.sqlite"), "--config", str(tmp_path / "none.toml")]
    assert main(["ca", "show", *db]) == 0
    shown = capsys.readouterr().out
    assert f"certificate:  {tmp_path / 'ca' / 'operator-ca.pem'}" in shown
    assert f"key:          {tmp_path / 'ca' / 'operator-ca.key'}" in shown
    ca = OperatorCA.load_or_create(settings_factory(db=tmp_path / "site.sqlite"))
    assert ca.fingerprint in shown and shown.endswith(ca.certificate_pem)
    assert main(["ca", "show", "--pem", *db]) == 0
    assert capsys.readouterr().out == ca.certificate_pem

    assert main(["ca", "server-cert", "--host", "localhost", "--host", "127.0.0.1", *db]) == 0
    cert, key = tmp_path / "tls" / "server.pem", tmp_path / "tls" / "server.key"
    assert f"--tls-cert {cert} --tls-key {key}" in capsys.readouterr().out
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert main(["ca", "server-cert", "--host", "localhost", *db]) == 1  # never overwritten by accident
    assert "exists (--force replaces it)" in capsys.readouterr().err

    # The files serve wss:// to a client that trusts only the operator CA, by name and by address.
    settings = settings_factory(db=tmp_path / "site.sqlite", tls_cert=cert, tls_key=key)
    async with CentralSystem(settings) as system:
        trusting = ssl.create_default_context(cafile=str(ca.cert_path))
        for host in ("localhost", "127.0.0.1"):
            async with connect(f"wss://{host}:{system.port}/CP-1", subprotocols=["ocpp1.6"], ssl=trusting) as ws:
                assert ws.subprotocol == "ocpp1.6"


def test_ca_show_says_clearly_when_the_sites_ca_is_missing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from ocpp_console.cli import main

    code = main(["--ca-cert", str(tmp_path / "no.pem"), "--ca-key", str(tmp_path / "no.key"), "--config",
                 str(tmp_path / "none.toml"), "ca", "show", "--db", str(tmp_path / "site.sqlite")])
    assert code == 1
    assert f"cannot read the CA certificate {tmp_path / 'no.pem'}" in capsys.readouterr().err
