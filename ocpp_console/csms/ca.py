"""The operator CA: it signs the client certificates chargers ask for with SignCertificate (OCPP
1.6 security whitepaper, profile 3) and, for a site without a PKI of its own, the central
system's server certificate.

Two sources, chosen by the settings:
- the built-in CA: an EC P-256 key and a self-signed certificate, made on first use in
  `<database dir>/ca/` (`operator-ca.key`, mode 0600, and `operator-ca.pem`);
- the site's own CA: `ca_cert` and `ca_key` (PEM, key unencrypted).

A CSR is signed only if its signature verifies, it names exactly one CN equal to the charger id
and exactly one O (equal to `tls_client_org` when that is set: the organisation the TLS listener
requires of charger certificates, so what we sign always passes it), its key is RSA of 2048 bits
or more or ECDSA on P-256/P-384/P-521, and it is signed with SHA-256 or stronger. Whatever
extensions the CSR asks for are ignored: the certificate gets ours (not a CA, clientAuth only).
"""

from __future__ import annotations

import contextlib
import ipaddress
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ocpp_console.private_files import write_new_private
from ocpp_console.timeutil import iso

if TYPE_CHECKING:
    from ocpp_console.settings import Settings

CA_DIR = "ca"
CERT_FILE = "operator-ca.pem"
KEY_FILE = "operator-ca.key"
DEFAULT_ORGANISATION = "ocpp-console"
CA_YEARS = 10
SERVER_CERT_DAYS = 825  # the longest server certificate validity clients still accept
CLOCK_SKEW = timedelta(minutes=5)  # a charger whose clock is a little behind still takes the certificate
MIN_RSA_BITS = 2048
CURVES = (ec.SECP256R1, ec.SECP384R1, ec.SECP521R1)  # the ones every TLS stack offers
STRONG_HASHES = ("sha256", "sha384", "sha512")

SigningKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


class CAError(Exception):
    """The operator CA could not be read or made (a missing file, a key that does not match)."""


class CSRRejected(ValueError):
    """A certificate signing request we will not sign; `reason` says why, in a sentence."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Signed:
    chain_pem: str  # the charger's certificate, then the CA's: what CertificateSigned delivers
    serial_hex: str  # lowercase, no leading zeros, as in CertificateHashData
    not_after: datetime


def serial_hex(serial: int) -> str:
    return format(serial, "x")


def certificate_summary(pem: str) -> tuple[str, str]:
    """(serial in hex, notAfter as UTC ISO 8601) of the first certificate in PEM text; ValueError
    if there is none."""
    cert = x509.load_pem_x509_certificate(pem.encode())
    return serial_hex(cert.serial_number), iso(cert.not_valid_after_utc)


def fingerprint(cert: x509.Certificate) -> str:
    """SHA-256 fingerprint as openssl prints it (AB:CD:...)."""
    return ":".join(f"{b:02X}" for b in cert.fingerprint(hashes.SHA256()))


def _pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def _now() -> datetime:
    # Real time, not the product clock (screenshots fix that one): TLS checks certificates against it.
    return datetime.now(timezone.utc)


def new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def key_pem(key: SigningKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def _one(name: x509.Name, oid: x509.ObjectIdentifier, label: str) -> str:
    values = name.get_attributes_for_oid(oid)
    if not values:
        raise CSRRejected(f"the request names no {label}")
    if len(values) > 1:
        raise CSRRejected(f"the request names {len(values)} {label}s; exactly one is allowed")
    value = values[0].value
    return value if isinstance(value, str) else value.decode(errors="replace")


def _check_key(key: object) -> None:
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < MIN_RSA_BITS:
            raise CSRRejected(f"its RSA key has {key.key_size} bits; at least {MIN_RSA_BITS} are required")
        return
    if isinstance(key, ec.EllipticCurvePublicKey):
        if not isinstance(key.curve, CURVES):
            raise CSRRejected(f"its EC key is on curve {key.curve.name}; P-256, P-384 or P-521 is required")
        return
    raise CSRRejected(f"its key type ({type(key).__name__}) is not supported; use RSA (2048+ bits) or ECDSA")


class OperatorCA:
    def __init__(
        self,
        certificate: x509.Certificate,
        key: SigningKey,
        cert_path: Path,
        *,
        organisation: str | None,
        validity_days: int,
        builtin: bool,
    ) -> None:
        self.certificate = certificate
        self.key = key
        self.cert_path = cert_path
        self.organisation = organisation  # None: any one O is signed (as the listener then accepts any)
        self.validity_days = validity_days
        self.builtin = builtin

    # -- loading ---------------------------------------------------------------------------

    @staticmethod
    def builtin_dir(settings: Settings) -> Path:
        return settings.db.expanduser().resolve().parent / CA_DIR

    @classmethod
    def load_or_create(cls, settings: Settings) -> OperatorCA:
        """The site's CA (`ca_cert` + `ca_key`) if set, else the built-in one, made now if it does
        not exist yet. CAError when the files cannot be read or do not belong together."""
        options = {"organisation": settings.tls_client_org, "validity_days": settings.certificate_days}
        if settings.ca_cert is not None and settings.ca_key is not None:
            cert, key = _read(settings.ca_cert, settings.ca_key)
            return cls(cert, key, settings.ca_cert, builtin=False, **options)
        directory = cls.builtin_dir(settings)
        cert_path, key_path = directory / CERT_FILE, directory / KEY_FILE
        if not (key_path.exists() and cert_path.exists()):
            _create(directory, settings.tls_client_org or DEFAULT_ORGANISATION)
        cert, key = _read(cert_path, key_path)
        return cls(cert, key, cert_path, builtin=True, **options)

    @property
    def certificate_pem(self) -> str:
        return _pem(self.certificate)

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.certificate)

    # -- signing -----------------------------------------------------------------------------

    def check_csr(self, csr_pem: str, charger_id: str) -> x509.CertificateSigningRequest:
        """The parsed CSR if we would sign it for `charger_id`; CSRRejected with the reason if not."""
        try:
            csr = x509.load_pem_x509_csr(csr_pem.encode())
        except (ValueError, TypeError, UnsupportedAlgorithm):
            raise CSRRejected("it is not a PEM certificate signing request (-----BEGIN CERTIFICATE REQUEST-----)") from None
        try:
            signed_ok = csr.is_signature_valid
            digest = csr.signature_hash_algorithm
        except (ValueError, UnsupportedAlgorithm):
            raise CSRRejected("its signature algorithm is not supported") from None
        if not signed_ok:
            raise CSRRejected("its signature does not verify with its own key")
        if digest is None or digest.name not in STRONG_HASHES:
            raise CSRRejected(f"it is signed with {digest.name if digest else 'no hash'}; SHA-256 or stronger is required")
        common_name = _one(csr.subject, NameOID.COMMON_NAME, "CN")
        if common_name != charger_id:
            raise CSRRejected(f"its CN is {common_name!r}, not the charger id {charger_id!r}")
        organisation = _one(csr.subject, NameOID.ORGANIZATION_NAME, "O")
        if self.organisation is not None and organisation != self.organisation:
            raise CSRRejected(f"its O is {organisation!r}, not the operator's organisation {self.organisation!r}")
        try:
            public_key = csr.public_key()
        except (ValueError, UnsupportedAlgorithm):
            raise CSRRejected("its public key cannot be read") from None
        _check_key(public_key)
        return csr

    def sign_csr(self, csr_pem: str, charger_id: str) -> Signed:
        """A client certificate (clientAuth) for the charger, valid `validity_days` (never beyond
        the CA itself); CSRRejected if the request is not one we sign."""
        csr = self.check_csr(csr_pem, charger_id)
        subject = x509.Name([
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, _one(csr.subject, NameOID.ORGANIZATION_NAME, "O")),
            x509.NameAttribute(NameOID.COMMON_NAME, charger_id),
        ])
        public_key = csr.public_key()
        now = _now()
        not_after = min(now + timedelta(days=self.validity_days), self.certificate.not_valid_after_utc)
        cert = (
            self._builder(subject, public_key, now, not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(rsa_key=isinstance(public_key, rsa.RSAPublicKey)), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .sign(self.key, hashes.SHA256())
        )
        return Signed(_pem(cert) + self.certificate_pem, serial_hex(cert.serial_number), cert.not_valid_after_utc)

    def issue_server_certificate(self, hosts: list[str], days: int = SERVER_CERT_DAYS) -> tuple[str, str]:
        """(certificate chain PEM, key PEM) of a new server certificate (serverAuth) for the host
        names and IP addresses in `hosts`, for --tls-cert and --tls-key."""
        if not hosts:
            raise ValueError("name at least one host (a DNS name or an IP address)")
        names: list[x509.GeneralName] = []
        for host in hosts:
            try:
                names.append(x509.IPAddress(ipaddress.ip_address(host)))
            except ValueError:
                names.append(x509.DNSName(host))
        key = new_key()
        now = _now()
        not_after = min(now + timedelta(days=days), self.certificate.not_valid_after_utc)
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])])
        cert = (
            self._builder(subject, key.public_key(), now, not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(rsa_key=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .sign(self.key, hashes.SHA256())
        )
        return _pem(cert) + self.certificate_pem, key_pem(key)

    def _builder(self, subject: x509.Name, public_key: object, now: datetime, not_after: datetime) -> x509.CertificateBuilder:
        return (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self.certificate.subject)
            .public_key(public_key)  # type: ignore[arg-type]
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - CLOCK_SKEW)
            .not_valid_after(not_after)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)  # type: ignore[arg-type]
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), critical=False  # type: ignore[arg-type]
            )
        )


def _key_usage(*, rsa_key: bool, ca: bool = False) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True, content_commitment=False, key_encipherment=rsa_key and not ca,
        data_encipherment=False, key_agreement=False, key_cert_sign=ca, crl_sign=ca,
        encipher_only=False, decipher_only=False,
    )


def _read(cert_path: Path, key_path: Path) -> tuple[x509.Certificate, SigningKey]:
    try:
        cert = x509.load_pem_x509_certificate(cert_path.expanduser().read_bytes())
    except OSError as exc:
        raise CAError(f"cannot read the CA certificate {cert_path}: {exc.strerror or exc}") from None
    except ValueError:
        raise CAError(f"{cert_path} is not a PEM certificate") from None
    try:
        key = serialization.load_pem_private_key(key_path.expanduser().read_bytes(), password=None)
    except OSError as exc:
        raise CAError(f"cannot read the CA key {key_path}: {exc.strerror or exc}") from None
    except TypeError:
        raise CAError(f"{key_path} is encrypted; give the CA key without a passphrase (and keep it mode 0600)") from None
    except (ValueError, UnsupportedAlgorithm):
        raise CAError(f"{key_path} is not a PEM private key") from None
    if not isinstance(key, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey)):
        raise CAError(f"{key_path}: the CA key must be RSA or EC, not {type(key).__name__}")
    if key.public_key() != cert.public_key():
        raise CAError(f"{key_path} is not the key of {cert_path}")
    with contextlib.suppress(x509.ExtensionNotFound):
        if not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca:
            raise CAError(f"{cert_path} is not a CA certificate (basicConstraints CA:FALSE)")
    return cert, key


def _create(directory: Path, organisation: str) -> None:
    """Make the built-in CA's key and certificate, once, even with two processes starting at the
    same moment (the key is created exclusively; the loser waits on the lock and finds it)."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    lock_path = directory / ".lock"
    with open(lock_path, "a+") as lock:
        _lock(lock)
        key_path, cert_path = directory / KEY_FILE, directory / CERT_FILE
        if key_path.exists() and cert_path.exists():
            return
        key = new_key()
        now = _now()
        name = x509.Name([
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation),
            x509.NameAttribute(NameOID.COMMON_NAME, f"{organisation} operator CA"),
        ])
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - CLOCK_SKEW)
            .not_valid_after(now + timedelta(days=365 * CA_YEARS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_key_usage(rsa_key=False, ca=True), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256())
        )
        with contextlib.suppress(FileNotFoundError):
            key_path.unlink()  # a key left without its certificate by a crash: start over
        write_new_private(key_path, key_pem(key))
        tmp = cert_path.with_suffix(".tmp")
        tmp.write_text(_pem(cert))
        tmp.replace(cert_path)


def _lock(file: object) -> None:
    try:
        import fcntl
    except ImportError:  # not POSIX: the exclusive key file is the only guard
        return
    fcntl.flock(file.fileno(), fcntl.LOCK_EX)  # type: ignore[attr-defined]
