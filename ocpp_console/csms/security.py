"""Charger authentication (OCPP 1.6 security whitepaper profiles 1-3) and TLS.

Passwords (AuthorizationKey) are kept only as salted scrypt hashes. The Basic header is parsed
as bytes, since an AuthorizationKey may be binary. Repeated failures for one charger id are
slowed down; the client certificate of profile 3 is read with `cryptography`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import ssl
import time
from collections import OrderedDict, deque
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.x509.oid import NameOID

MIN_PASSWORD, MAX_PASSWORD = 16, 40
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}


class PasswordError(ValueError):
    pass


def check_password(password: str) -> None:
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise PasswordError(
            f"a charger password (AuthorizationKey) has {MIN_PASSWORD} to {MAX_PASSWORD} characters, not {len(password)}"
        )


def hash_password(password: str | bytes) -> str:
    raw = password.encode() if isinstance(password, str) else password
    salt = os.urandom(16)
    digest = hashlib.scrypt(raw, salt=salt, dklen=32, **_SCRYPT)
    return "scrypt${n}${r}${p}${salt}${digest}".format(
        **_SCRYPT, salt=base64.b64encode(salt).decode(), digest=base64.b64encode(digest).decode()
    )


def verify_password(password: bytes, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        actual = hashlib.scrypt(password, salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p), dklen=len(expected))
    except (ValueError, binascii.Error):
        return False
    return hmac.compare_digest(actual, expected)


def parse_basic(header: str | None) -> tuple[bytes, bytes] | None:
    """(user, password) from an Authorization: Basic header, as bytes; None if absent or malformed."""
    if not header:
        return None
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    user, sep, password = decoded.partition(b":")
    return (user, password) if sep else None


class FailureThrottle:
    """Slows down failed logins per charger id, never per address alone: a site's chargers share
    one NAT address, and one charger with a wrong key retries for ever without locking the others
    out. Each attempt counts when it starts, so parallel guesses for one id do not each get the
    free attempts; a good login forgets only the failures of its own id from its own address.

    Two counts, both over `window_s`: one (address, id) (a misconfigured charger, a guesser), and
    one id from all addresses (guessing spread over many addresses), which gets more free attempts
    so that a stranger can slow a charger's login by at most `max_delay_s`, never refuse it."""

    def __init__(
        self,
        free_attempts: int = 3,
        window_s: float = 600.0,
        max_delay_s: float = 5.0,
        free_per_id: int = 10,
        max_ids: int = 10_000,
    ) -> None:
        self.free_attempts = free_attempts
        self.free_per_id = free_per_id
        self.window_s = window_s
        self.max_delay_s = max_delay_s
        self.max_ids = max_ids
        # charger id -> (time, address) of recent attempts that did not succeed (yet), oldest first;
        # bounded per id: past this many the delay is at its maximum anyway.
        self._attempts: OrderedDict[str, deque[tuple[float, str]]] = OrderedDict()

    def _delay(self, count: int, free: int) -> float:
        excess = count - free
        return 0.0 if excess < 0 else min(self.max_delay_s, 0.25 * 2**excess)

    def _recent(self, charger_id: str) -> deque[tuple[float, str]]:
        attempts = self._attempts.get(charger_id)
        if attempts is None:
            attempts = self._attempts[charger_id] = deque(maxlen=64)
            self._bound()
        else:
            self._attempts.move_to_end(charger_id)
        cutoff = time.monotonic() - self.window_s
        while attempts and attempts[0][0] < cutoff:
            attempts.popleft()
        return attempts

    def _bound(self) -> None:
        """Never grow without bound under a scan of ids: forget the ids least recently tried."""
        while len(self._attempts) > self.max_ids:
            self._attempts.popitem(last=False)

    def delay(self, charger_id: str, address: str) -> float:
        attempts = self._recent(charger_id)
        from_here = sum(1 for _, where in attempts if where == address)
        return max(self._delay(from_here, self.free_attempts), self._delay(len(attempts), self.free_per_id))

    def attempt(self, charger_id: str, address: str) -> float:
        """An attempt starts: the seconds to wait before checking it (counted from now on, as a
        failure until `succeeded` says otherwise)."""
        delay = self.delay(charger_id, address)
        self._recent(charger_id).append((time.monotonic(), address))
        return delay

    def succeeded(self, charger_id: str, address: str) -> None:
        """A good login forgets this id's failures from this address, and nothing else."""
        attempts = self._attempts.get(charger_id)
        if attempts is None:
            return
        kept = [a for a in attempts if a[1] != address]
        attempts.clear()
        attempts.extend(kept)
        if not attempts:
            del self._attempts[charger_id]


def server_ssl_context(cert: Path, key: Path, client_ca: Path | None = None) -> ssl.SSLContext:
    """TLS 1.2+ (profile 2). With `client_ca`, a client certificate is asked for but optional at
    the TLS level, so that one port serves profiles 2 and 3: one that is sent must verify against
    `client_ca` (or the handshake fails); whether one is required is decided per charger."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    # The whitepaper's suites include two RSA key-exchange ones Python's defaults leave out.
    context.set_ciphers("ECDHE+AESGCM:ECDHE+CHACHA20:DHE+AESGCM:AES128-GCM-SHA256:AES256-GCM-SHA384")
    context.load_cert_chain(cert, key)
    if client_ca is not None:
        context.verify_mode = ssl.CERT_OPTIONAL
        context.load_verify_locations(client_ca)
    return context


@dataclass(frozen=True)
class PeerCertificate:
    """The subject of the client certificate the TLS layer verified: every CN and O it names."""

    common_names: tuple[str, ...]
    organizations: tuple[str, ...]

    def names(self, charger_id: str, organization: str | None) -> str | None:
        """None when the certificate names exactly this charger (and organisation), else why not.
        Two CNs are refused rather than one of them chosen: which one counts is not defined."""
        if len(self.common_names) != 1:
            return f"the certificate has {len(self.common_names)} CNs {list(self.common_names)}, not one"
        if self.common_names[0] != charger_id:
            return f"the certificate is for {self.common_names[0]!r}"
        if organization is not None and self.organizations != (organization,):
            return f"the certificate's O is {list(self.organizations)}, not [{organization!r}]"
        return None


def peer_certificate(ssl_object: ssl.SSLObject | None) -> PeerCertificate | None:
    """The subject of the verified client certificate, if the client sent one; read from the DER
    with `cryptography`, not from the ssl module's dict (which keeps only the last of repeated
    names)."""
    if ssl_object is None:
        return None
    der = ssl_object.getpeercert(binary_form=True)
    if not der:
        return None
    subject = x509.load_der_x509_certificate(der).subject

    def values(oid: x509.ObjectIdentifier) -> tuple[str, ...]:
        return tuple(str(a.value) for a in subject.get_attributes_for_oid(oid))

    return PeerCertificate(values(NameOID.COMMON_NAME), values(NameOID.ORGANIZATION_NAME))
