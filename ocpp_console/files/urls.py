"""The URLs a charger is given for a transfer: ours, on the address it reached us by."""

from __future__ import annotations

from urllib.parse import quote

from ocpp_console.files.grants import Grant


def url_host(host: str) -> str:
    """An address as it goes in a URL (IPv6 in brackets)."""
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def http_url(host: str, port: int, grant: Grant) -> str:
    """GET /t/<token>/<name> for an image; an upload's URL ends in / and the charger adds its file name."""
    name = "" if grant.upload else quote(grant.name)
    return f"http://{url_host(host)}:{port}/t/{grant.token}/{name}"


def ftp_url(host: str, port: int, grant: Grant) -> str:
    name = "" if grant.upload else quote(grant.name)
    return f"ftp://{grant.user}:{grant.token}@{url_host(host)}:{port}/{name}"
