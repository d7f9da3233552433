"""Charger authentication (OCPP 1.6 security whitepaper profiles 1-3) and TLS.

Passwords (AuthorizationKey) are kept only as salted scrypt hashes. The Basic header is parsed
as bytes, since an AuthorizationKey may be binary. Repeated failures from one address are
slowed down.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import ssl
import time
from collections import defaultdict, deque
from pathlib import Path

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
    """Counts failed logins per address; after a few, every further attempt waits longer."""

    def __init__(self, free_attempts: int = 3, window_s: float = 600.0, max_delay_s: float = 5.0) -> None:
        self.free_attempts = free_attempts
        self.window_s = window_s
        self.max_delay_s = max_delay_s
        self._failures: dict[str, deque[float]] = defaultdict(deque)

    def _recent(self, address: str) -> deque[float]:
        now = time.monotonic()
        failures = self._failures[address]
        while failures and now - failures[0] > self.window_s:
            failures.popleft()
        return failures

    def delay(self, address: str) -> float:
        excess = len(self._recent(address)) - self.free_attempts
        return 0.0 if excess < 0 else min(self.max_delay_s, 0.25 * 2**excess)

    def failed(self, address: str) -> None:
        self._recent(address).append(time.monotonic())
        if len(self._failures) > 10_000:  # never grow without bound under a scan
            for key in [k for k, v in self._failures.items() if not v][:5000]:
                del self._failures[key]

    def succeeded(self, address: str) -> None:
        self._failures.pop(address, None)


def server_ssl_context(cert: Path, key: Path, ca: Path | None = None) -> ssl.SSLContext:
    """TLS 1.2+ (profile 2), with client certificates checked against `ca` (profile 3)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    # The whitepaper's suites include two RSA key-exchange ones Python's defaults leave out.
    context.set_ciphers("ECDHE+AESGCM:ECDHE+CHACHA20:DHE+AESGCM:AES128-GCM-SHA256:AES256-GCM-SHA384")
    context.load_cert_chain(cert, key)
    if ca is not None:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(ca)
    return context


def peer_common_name(ssl_object: ssl.SSLObject | None) -> tuple[str | None, str | None]:
    """(CN, O) of the verified client certificate, if any."""
    if ssl_object is None:
        return None, None
    cert = ssl_object.getpeercert() or {}
    fields = {key: value for rdn in cert.get("subject", ()) for key, value in rdn}
    return fields.get("commonName"), fields.get("organizationName")
