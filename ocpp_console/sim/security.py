"""The charger's side of the OCPP 1.6 security extension: installed root certificates and how
they are identified (CertificateHashData), without a crypto library.

A certificate is identified as in OCSP: the hash of its issuer's DER-encoded name, the hash of
its issuer's public key and its serial number. Those three are read from the certificate's DER
with the few lines of ASN.1 below; hashlib does the rest.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass

from ocpp.v16.enums import CertificateStatus, CertificateUse, DeleteCertificateStatus, HashAlgorithm

_PEM_BLOCK = re.compile(r"-----BEGIN CERTIFICATE-----(.*?)-----END CERTIFICATE-----", re.S)
_HASHES = {HashAlgorithm.sha256: "sha256", HashAlgorithm.sha384: "sha384", HashAlgorithm.sha512: "sha512"}
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


# -- just enough DER to find a certificate's issuer, serial number and key --------------------------


def _tlv(data: bytes, pos: int) -> tuple[int, int, int]:
    """(tag, where the value starts, where it ends) of the element at `pos`."""
    if pos + 2 > len(data):
        raise ValueError("truncated DER")
    tag, length = data[pos], data[pos + 1]
    pos += 2
    if length & 0x80:
        size = length & 0x7F
        if not 1 <= size <= 4 or pos + size > len(data):
            raise ValueError("unsupported DER length")
        length = int.from_bytes(data[pos : pos + size], "big")
        pos += size
    if pos + length > len(data):
        raise ValueError("truncated DER")
    return tag, pos, pos + length


def _children(data: bytes, start: int, end: int) -> list[tuple[int, int, int, int]]:
    """(tag, element start, value start, value end) of each element in data[start:end]."""
    items = []
    pos = start
    while pos < end:
        tag, value_start, value_end = _tlv(data, pos)
        items.append((tag, pos, value_start, value_end))
        pos = value_end
    return items


_SEQUENCE, _INTEGER, _BIT_STRING, _VERSION = 0x30, 0x02, 0x03, 0xA0


@dataclass(frozen=True, slots=True)
class X509Ids:
    issuer_name: bytes  # the issuer Name, DER-encoded (tag and length included)
    issuer_key: bytes  # the issuer's subjectPublicKey bits (without the unused-bits octet)
    serial: str  # hex, lowercase, no leading zeros


def x509_ids(der: bytes) -> X509Ids:
    """Certificate ::= SEQUENCE { tbsCertificate SEQUENCE { [0] version OPTIONAL, serialNumber,
    signature, issuer, validity, subject, subjectPublicKeyInfo, ... }, ... }; ValueError if not so."""
    tag, start, end = _tlv(der, 0)
    if tag != _SEQUENCE:
        raise ValueError("not a certificate")
    tag, start, end = _tlv(der, start)
    if tag != _SEQUENCE:
        raise ValueError("no tbsCertificate")
    fields = _children(der, start, end)
    if fields and fields[0][0] == _VERSION:
        fields = fields[1:]
    if len(fields) < 6 or fields[0][0] != _INTEGER or any(f[0] != _SEQUENCE for f in fields[1:6]):
        raise ValueError("not an X.509 tbsCertificate")
    serial_field, issuer, key_info = fields[0], fields[2], fields[5]
    key_parts = _children(der, key_info[2], key_info[3])
    if len(key_parts) != 2 or key_parts[1][0] != _BIT_STRING or key_parts[1][3] - key_parts[1][2] < 2:
        raise ValueError("no subjectPublicKey")
    # Root certificates (all InstallCertificate installs) are self-signed: the issuer's key is
    # their own. For one that is not, the simulator has no issuer key and uses the certificate's
    # own too: the identifiers stay unique and the same every time.
    issuer_key = der[key_parts[1][2] + 1 : key_parts[1][3]]
    serial = der[serial_field[2] : serial_field[3]].hex().lstrip("0") or "0"
    # A serial longer than RFC 5280's 20 octets would break the schema: keep its last 40 digits.
    return X509Ids(der[issuer[1] : issuer[3]], issuer_key, serial[-MAX_SERIAL_HEX:])


def certificate_hash_data(der: bytes, algorithm: HashAlgorithm = HashAlgorithm.sha256) -> dict[str, str]:
    """CertificateHashData (snake_case, as handlers return it) of one DER certificate."""
    digest = _HASHES[algorithm]
    try:
        ids = x509_ids(der)
    except ValueError:
        # Valid PEM, but not an X.509 certificate these few lines can read (a test blob): still a
        # stable identity, from the content's hashes.
        ids = X509Ids(b"name:" + der, b"key:" + der, hashlib.sha1(der).hexdigest())
    return {
        "hash_algorithm": algorithm.value,
        "issuer_name_hash": hashlib.new(digest, ids.issuer_name).hexdigest(),
        "issuer_key_hash": hashlib.new(digest, ids.issuer_key).hexdigest(),
        "serial_number": ids.serial,
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
        self.charge_point_chain: str | None = None

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

    def signed(self, chain: str) -> bool:
        """CertificateSigned: True (Accepted) when the chain is PEM certificates, kept for the next
        TLS connection; False (Rejected) otherwise."""
        try:
            pem_certificates(chain)
        except CertificateError:
            return False
        self.charge_point_chain = chain
        return True
