"""The one boundary between the console and the site it shows.

The console (ocpp_console/ui) reads the site, acts on it and follows its events only through a
`Site`. Two implementations: `LocalSite` (site/local.py: the central system in this process, the
single-process console) and `RemoteSite` (site/remote.py: over the HTTP API and its event stream, `attach`).
So everything here is JSON-shaped: read models are dicts of plain values (str, int, float, bool,
None, lists and dicts of them), commands take and give OCPP JSON payloads, and the events are the
domain event dataclasses (site/events.py) the API's stream encodes.

Row shapes. Where the HTTP API already has the read model, the row is the API's (`chargers`,
`message_log`). Elsewhere rows carry the database's column names (the store method of the same
name: `charger`, `connectors`, `configuration`, `transactions`, ...), money in minor units, times
as ISO 8601 UTC strings; secrets (password hashes) never leave the site, only `has_password`.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from ocpp_console.site.events import Event

Row = dict[str, Any]
Unsubscribe = Callable[[], None]


class SiteError(Exception):
    """A site that could not start (a port taken) or an operator change it refused, with the
    message to show (no traceback)."""


@dataclass(frozen=True)
class SiteInfo:
    """The effective settings the console shows or decides by."""

    currency: str  # ISO 4217; the site's own (orders carry theirs)
    wallet: bool  # wallets are checked at Authorize and StartTransaction
    min_balance: str  # decimal text in `currency`: a tag's wallet below it is answered Blocked
    charger_url: str  # where chargers connect: ws://HOST:PORT/<chargePointId>
    api_url: str | None = None  # the HTTP API's base URL when one runs beside it


class Site(abc.ABC):
    """Everything the console needs from a site, and nothing else."""

    #: Quitting a console that owns its site disconnects the chargers (it asks first).
    owns_chargers: bool = False

    # -- lifecycle -----------------------------------------------------------------

    async def start(self) -> None:
        """Make the site reachable (listen, or connect); SiteError saying why not."""

    async def stop(self) -> None:
        """Let go of it (stop the central system, or disconnect)."""

    @abc.abstractmethod
    def info(self) -> SiteInfo: ...

    def link_text(self) -> str | None:
        """How the console reaches the site, for its header, when that can change (attached over
        the API: "attached to URL" or "reconnecting…"); None for a site in this process."""
        return None

    def watch_link(self, callback: Callable[[], None]) -> None:
        """`callback` is called when `link_text` changes (a site in this process: never)."""

    # -- events --------------------------------------------------------------------

    @abc.abstractmethod
    def subscribe(self, callback: Callable[[Event], None]) -> Unsubscribe:
        """Every domain event from now on, in order; the callback must be quick (only record)."""

    # -- read models: chargers -----------------------------------------------------

    @abc.abstractmethod
    async def chargers(self) -> list[Row]:
        """Every charger as GET /api/chargers gives it (with `connected` and its `connectors`)."""

    @abc.abstractmethod
    async def connected(self) -> set[str]:
        """The ids of chargers connected now (one not booted yet has no row in `chargers`)."""

    @abc.abstractmethod
    async def charger(self, charger_id: str) -> Row | None:
        """One charger's detail: identity, firmware and diagnostics progress, certificate, local
        list version, `has_password` (the chargers table's columns, without password hashes)."""

    @abc.abstractmethod
    async def connectors(self, charger_id: str | None = None) -> list[Row]: ...

    @abc.abstractmethod
    async def configuration(self, charger_id: str) -> list[Row]:
        """The keys last fetched: key, value, readonly, known."""

    @abc.abstractmethod
    async def reservations(self, charger_id: str) -> list[Row]: ...

    @abc.abstractmethod
    async def charging_profiles(self, charger_id: str) -> list[Row]:
        """connector_id, profile_id, purpose, stack_level, status, profile (its OCPP JSON text)."""

    @abc.abstractmethod
    async def charger_samples_since(self, charger_id: str, since: str, measurands: Sequence[str]) -> list[Row]:
        """Meter samples of one charger: connector_id, measurand, timestamp, value_num."""

    # -- read models: transactions, orders, money ----------------------------------

    @abc.abstractmethod
    async def running(self) -> list[Row]:
        """The open transactions with their newest meter values, as RunningTx.to_row() gives
        them (site/models.py): a console keeps them up to date from MeterSample events."""

    @abc.abstractmethod
    async def transaction(self, transaction_id: int) -> Row | None:
        """One transaction (running or an order): the transactions table's columns."""

    @abc.abstractmethod
    async def transactions(self, running: bool | None = None, limit: int = 500) -> list[Row]: ...

    @abc.abstractmethod
    async def meter_values_for(self, transaction_id: int) -> list[Row]:
        """measurand, phase, timestamp, value_num of every sample of the transaction."""

    @abc.abstractmethod
    async def ledger_for_transaction(self, transaction_id: int) -> list[Row]:
        """Its wallet moves: id_tag, amount, balance_after, currency (minor units)."""

    @abc.abstractmethod
    async def energy_stopped_since(self, since: str) -> float:
        """Wh of the transactions stopped since `since`."""

    @abc.abstractmethod
    async def revenue_since(self, since: str) -> dict[str, int]:
        """currency -> minor units settled since `since`."""

    @abc.abstractmethod
    async def power_samples_since(self, since: str) -> list[Row]:
        """Site power samples: charger_id, connector_id, timestamp, value_num (W)."""

    # -- read models: load management ----------------------------------------------

    @abc.abstractmethod
    async def site_load(self, history_since: str | None = None) -> Row:
        """The site limit and each running session's share, as GET /api/site/load gives it
        (limit_kw None: load management off); with `history_since` (an ISO time, "" for every
        point kept) also `history`: the site's power and limit at each decision after it."""

    # -- read models: id tags, messages --------------------------------------------

    @abc.abstractmethod
    async def id_tags(self) -> list[Row]:
        """Every id tag: status, expiry_date, parent_id_tag, note, balance (minor units, its own
        wallet) and its last refusal (refused_status, refused_reason, refused_action,
        refused_charger, refused_at)."""

    @abc.abstractmethod
    async def message_log(self, limit: int = 1000) -> list[Row]:
        """The newest frames first, as GET /api/messages gives them."""

    # -- commands ------------------------------------------------------------------

    @abc.abstractmethod
    async def operate(self, charger_id: str, action: str, payload: dict[str, Any]) -> dict[str, Any]:
        """Send one OCPP operation (`action` its OCPP name, `payload` its OCPP JSON) and answer
        the charger's answer as OCPP JSON; CommandError when there is none. A ReserveNow without
        `reservationId` gets the next free one, and the answer carries it."""

    # -- hosted files (the firmware library, what chargers uploaded) --

    @abc.abstractmethod
    async def firmware_images(self) -> list[Row]:
        """The firmware library: name, size, sha256, added_at."""

    @abc.abstractmethod
    async def add_firmware(self, path: str, name: str | None = None) -> Row:
        """Copy an image on the central system's machine into the library; SiteError says why not."""

    @abc.abstractmethod
    async def received_files(self, charger_id: str) -> list[Row]:
        """What the charger uploaded to our file server (diagnostics, logs): name, size, receivedAt; newest first."""

    @abc.abstractmethod
    async def received_file(self, charger_id: str, name: str) -> bytes:
        """One uploaded file's content; SiteError if there is none by that name."""

    @abc.abstractmethod
    async def install_operator_ca(self, charger_id: str) -> dict[str, Any]:
        """InstallCertificate of the site's operator CA as CentralSystemRootCertificate."""

    @abc.abstractmethod
    async def approve(self, charger_id: str) -> None:
        """Accept a charger (a connected one is asked to boot again); CommandError if unknown."""

    @abc.abstractmethod
    async def reject(self, charger_id: str) -> None: ...

    @abc.abstractmethod
    async def set_password(self, charger_id: str, password: str | None) -> None:
        """The charger's HTTP Basic password (None: remove it); SiteError saying why not."""

    @abc.abstractmethod
    async def save_id_tag(self, id_tag: str, status: str, expiry_date: str | None, parent_id_tag: str | None,
                          note: str | None) -> None:
        """Create or replace an id tag (every field as given), by the rules the CLI and the API
        keep (its parent exists, ...); SiteError saying why not."""

    @abc.abstractmethod
    async def wallet_movement(self, id_tag: str, amount: int, kind: str, reason: str) -> tuple[str, int]:
        """A top-up, refund or adjustment (minor units of the site's currency) of the wallet the
        tag spends: (that wallet's id tag, its balance after); SiteError saying why not."""

    @abc.abstractmethod
    async def close_transaction(self, transaction_id: int) -> Row:
        """Close a stuck transaction with its last meter value and settle it: transaction_id,
        charger_id, connector_id, energy_wh, cost_total, currency. SiteError if it is not running."""

    @abc.abstractmethod
    async def set_site_limit(self, limit_kw: float | None) -> Row:
        """A new site limit in kW (None: load management off), in force at once: the load with the
        shares decided for it (already sent to the chargers); SiteError saying why a limit is refused."""

    @abc.abstractmethod
    async def export_csv(self, kind: str, first: date | None, last: date | None) -> tuple[str, int]:
        """`orders` or `ledger` as CSV text, days in local time: (text, rows)."""
