"""The charger's side of the OCPP 1.6 security extension: installed root certificates and how
they are identified (CertificateHashData), and the charger's own key pair, certificate signing
request and the certificate the central system signed for it (security profile 3).

X.509 is read and written with `cryptography`; only the PEM framing is checked here.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import ssl
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp
from cryptography.x509.oid import NameOID
from ocpp.v16.enums import (
    CertificateStatus,
    CertificateUse,
    DeleteCertificateStatus,
    HashAlgorithm,
)

from ocpp_console.private_files import write_new_private

_PEM_BLOCK = re.compile(r"-----BEGIN CERTIFICATE-----(.*?)-----END CERTIFICATE-----", re.S)
_HASHES = {HashAlgorithm.sha256: "sha256", HashAlgorithm.sha384: "sha384", HashAlgorithm.sha512: "sha512"}
_OCSP_HASHES = {HashAlgorithm.sha256: hashes.SHA256, HashAlgorithm.sha384: hashes.SHA384, HashAlgorithm.sha512: hashes.SHA512}
MAX_SERIAL_HEX = 40  # the schema's limit (20 octets, RFC 5280's too)


class CertificateError(ValueError):
    """Not a PEM certificate (or chain) the charger can take."""


def pem_certificates(text: str) -> list[bytes]:
    """The DER of every CERTIFICATE block in PEM text; CertificateError when there is none or one is
    not base64. Nothing may come between or after the blocks but whitespace."""
    blocks = list(_PEM_BLOCK.finditer(text))
    if not blocks:
        raise CertificateError("no -----BEGIN CERTIFICATE----- ... -----END CERTIFICATE----- block")
    if _PEM_BLOCK.sub("", text).strip():
        raise CertificateError("text outside the certificate blocks")
    ders = []
    for block in blocks:
        body = "".join(block.group(1).split())
        try:
            der = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise CertificateError("a certificate block is not base64") from None
        if not der:
            raise CertificateError("an empty certificate block")
        ders.append(der)
    return ders


def _serial_hex(serial: int) -> str:
    """Hex, lowercase, no leading zeros; a (non-conforming) negative serial as its two's complement
    octets, as they stand in the certificate."""
    if serial < 0:
        raw = serial.to_bytes((serial.bit_length() + 8) // 8, "big", signed=True)
        return raw.hex().lstrip("0") or "0"
    return format(serial, "x")


def certificate_hash_data(der: bytes, algorithm: HashAlgorithm = HashAlgorithm.sha256) -> dict[str, str]:
    """CertificateHashData (snake_case, as handlers return it) of one DER certificate: as in OCSP,
    the hash of its issuer's DER-encoded Name, the hash of its issuer's public key (the
    subjectPublicKey bits) and its serial number."""
    digest = _HASHES[algorithm]
    try:
        cert = x509.load_der_x509_certificate(der)
        # Root certificates (all InstallCertificate installs) are self-signed: the issuer's key is
        # their own. For one that is not, the simulator has no issuer key and uses the certificate's
        # own too: the identifiers stay unique and the same every time. The OCSP request builder
        # hashes the key exactly as OCSP (and openssl ocsp) does.
        request = ocsp.OCSPRequestBuilder().add_certificate(cert, cert, _OCSP_HASHES[algorithm]()).build()
        issuer_name = cert.issuer.public_bytes()
        key_hash = request.issuer_key_hash.hex()
        # A serial longer than RFC 5280's 20 octets would break the schema: keep its last 40 digits.
        serial = _serial_hex(cert.serial_number)[-MAX_SERIAL_HEX:]
    except ValueError:
        # Valid PEM, but not an X.509 certificate (a test blob): still a stable identity, from the
        # content's hashes.
        issuer_name, serial = b"name:" + der, hashlib.sha1(der).hexdigest()
        key_hash = hashlib.new(digest, b"key:" + der).hexdigest()
    return {
        "hash_algorithm": algorithm.value,
        "issuer_name_hash": hashlib.new(digest, issuer_name).hexdigest(),
        "issuer_key_hash": key_hash,
        "serial_number": serial,
    }


def _same(wanted: Mapping[str, str], have: Mapping[str, str]) -> bool:
    # Hex compares without regard to case, serial numbers without regard to leading zeros.
    def norm(key: str, value: str) -> str:
        value = str(value).strip().lower()
        return (value.lstrip("0") or "0") if key == "serial_number" else value

    return all(norm(k, wanted.get(k, "")) == norm(k, have[k]) for k in have)


@dataclass(frozen=True, slots=True)
class InstalledCertificate:
    use: CertificateUse
    pem: str
    der: bytes

    def hash_data(self, algorithm: HashAlgorithm = HashAlgorithm.sha256) -> dict[str, str]:
        return certificate_hash_data(self.der, algorithm)


class Certificates:
    """The root certificates a charger holds (InstallCertificate, GetInstalledCertificateIds,
    DeleteCertificate) and the certificate chain the central system signed for it."""

    def __init__(self, max_installed: int = 20) -> None:
        self.installed: list[InstalledCertificate] = []
        self.max_installed = max_installed
        self.charge_point_chain: str | None = None  # what the central system signed, ours first
        self.key: ec.EllipticCurvePrivateKey | None = None  # the key of charge_point_chain
        # A new key pair for every request (as the whitepaper wants); the current one stays in use
        # until the certificate for the new one has come.
        self.pending_key: ec.EllipticCurvePrivateKey | None = None

    def install(self, use: CertificateUse | str, pem: str) -> CertificateStatus:
        try:
            ders = pem_certificates(pem)
        except CertificateError:
            return CertificateStatus.rejected
        if len(ders) != 1:
            return CertificateStatus.rejected  # one root certificate, not a chain
        cert = InstalledCertificate(CertificateUse(use), pem, ders[0])
        # The same certificate installed again replaces itself instead of appearing twice.
        kept = [c for c in self.installed if not (c.use == cert.use and c.der == cert.der)]
        if len(kept) >= self.max_installed:
            return CertificateStatus.failed
        self.installed = [*kept, cert]
        return CertificateStatus.accepted

    def hash_data(self, use: CertificateUse | str) -> list[dict[str, str]]:
        return [c.hash_data() for c in self.installed if c.use == use]

    def delete(self, hash_data: Mapping[str, str]) -> DeleteCertificateStatus:
        """`hash_data` in snake_case (as the ocpp library hands it over), in any of the three algorithms."""
        try:
            algorithm = HashAlgorithm(hash_data.get("hash_algorithm"))
        except ValueError:
            return DeleteCertificateStatus.not_found
        kept = [c for c in self.installed if not _same(hash_data, c.hash_data(algorithm))]
        if len(kept) == len(self.installed):
            return DeleteCertificateStatus.not_found
        self.installed = kept
        return DeleteCertificateStatus.accepted

    def csr(self, charger_id: str, organisation: str) -> str:
        """A certificate signing request (PEM) for a new EC P-256 key: CN = the charger id, O =
        the operator's organisation (CpoName)."""
        self.pending_key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation),
            x509.NameAttribute(NameOID.COMMON_NAME, charger_id),
        ])
        request = x509.CertificateSigningRequestBuilder().subject_name(subject).sign(self.pending_key, hashes.SHA256())
        return request.public_bytes(serialization.Encoding.PEM).decode()

    def signed(self, chain: str) -> str | None:
        """CertificateSigned: None (Accepted) when the chain's first certificate is for our key
        (the latest request's, or the one in use), valid now and issued by the next one if there
        is one: it is kept for the next TLS connection. Otherwise why it is Rejected."""
        try:
            certs = [x509.load_der_x509_certificate(der) for der in pem_certificates(chain)]
        except (CertificateError, ValueError) as exc:
            return f"not a PEM certificate chain ({exc})"
        ours = certs[0]
        key = next((k for k in (self.pending_key, self.key) if k is not None and k.public_key() == ours.public_key()), None)
        if key is None:
            return "the certificate is not for a key of this charger"
        now = datetime.now(timezone.utc)
        if not ours.not_valid_before_utc <= now <= ours.not_valid_after_utc:
            return f"the certificate is not valid now ({ours.not_valid_before_utc} to {ours.not_valid_after_utc})"
        if len(certs) > 1:
            try:
                ours.verify_directly_issued_by(certs[1])
            except (ValueError, TypeError, InvalidSignature):
                return "the certificate is not issued by the next one in the chain"
        self.charge_point_chain, self.key = chain, key
        if key is self.pending_key:
            self.pending_key = None
        return None

    def tls_context(self, server_ca: str | None = None) -> ssl.SSLContext:
        """How the charger connects over wss://: it trusts its installed CentralSystemRootCertificates
        and `server_ca` (else the system's trust store), and shows its own certificate, if it has one
        (security profile 3)."""
        roots = "".join(c.pem for c in self.installed if c.use == CertificateUse.central_system_root_certificate)
        if server_ca or roots:
            context = ssl.create_default_context(cafile=server_ca, cadata=roots or None)
        else:
            context = ssl.create_default_context()
        if self.charge_point_chain and self.key is not None:
            # ssl loads a certificate and key only from files: written for a moment, readable by us alone.
            with tempfile.TemporaryDirectory(prefix="ocpp-sim-") as directory:
                chain_file, key_file = Path(directory, "chain.pem"), Path(directory, "key.pem")
                chain_file.write_text(self.charge_point_chain)
                write_new_private(key_file, self.key.private_bytes(
                    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
                ))
                context.load_cert_chain(chain_file, key_file)
        return context
