"""The site as the console sees it: one interface (`Site`), its read models, commands and events.

The console imports only this package (and neutral helpers): `LocalSite` runs the central system
in this process; `RemoteSite` (site/remote.py) reads another over its HTTP API (`attach`).
"""

from __future__ import annotations

from typing import Any

from ocpp_console.site import events
from ocpp_console.site.interface import Row, Site, SiteError, SiteInfo
from ocpp_console.site.models import (
    LINE_ITEMS,
    WALLET_EMPTY,
    CommandError,
    PasswordError,
    RunningTx,
    Tariff,
    check_password,
    format_money,
    from_minor,
    is_stale,
    offline_message,
    running_row,
    running_tx,
    to_minor,
    unknown_message,
)

__all__ = [
    "LINE_ITEMS",
    "WALLET_EMPTY",
    "CommandError",
    "PasswordError",
    "Row",
    "RunningTx",
    "Site",
    "SiteError",
    "SiteInfo",
    "Tariff",
    "as_site",
    "check_password",
    "events",
    "format_money",
    "from_minor",
    "is_stale",
    "offline_message",
    "running_row",
    "running_tx",
    "to_minor",
    "unknown_message",
]


def as_site(target: Any) -> Site:
    """A Site as given, or a central system wrapped in a LocalSite (tests and tools that hold a
    CentralSystem hand it to the console as they always did)."""
    if isinstance(target, Site):
        return target
    from ocpp_console.site.local import LocalSite

    return LocalSite(target)
