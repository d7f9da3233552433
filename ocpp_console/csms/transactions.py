"""Transactions that end: no transaction stays open after its charger has moved on.

Chargers lose power, lose their offline queue or are replaced, and the StopTransaction of a
session may never come. The store closes such a transaction (store/transactions.py) when:

- a new StartTransaction arrives on its connector (`superseded`, in the StartTransaction itself);
- its charger rebooted, reports the connector Available or Preparing, and sent no StopTransaction
  within `stale_transaction_grace` seconds of the boot (`closed-after-reboot`, by `StaleSweeper`,
  which reads it all from the database, so a restart of this process loses nothing);
- the operator says so (`closed-by-operator`, `close_by_operator`: the console and the HTTP API).

Each is settled like any other stop, and a StopTransaction that comes later replaces our data.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from functools import partial
from typing import TYPE_CHECKING

from ocpp_console.csms import billing
from ocpp_console.csms import events as ev
from ocpp_console.store.models import ClosedTransaction
from ocpp_console.store.transactions import (
    CLOSED_AFTER_REBOOT,
    CLOSED_BY,
    CLOSED_BY_OPERATOR,
    IN_SESSION,
    SUPERSEDED,
    Settle,
)
from ocpp_console.timeutil import iso, utcnow

if TYPE_CHECKING:
    from ocpp_console.csms.server import CentralSystem

log = logging.getLogger("ocpp_console.transactions")

__all__ = [
    "CLOSED_AFTER_REBOOT", "CLOSED_BY", "CLOSED_BY_OPERATOR", "SUPERSEDED", "AlreadyStopped", "StaleSweeper",
    "TransactionError", "UnknownTransaction", "close_by_operator", "is_stale", "publish_closed", "settle_for",
]

# The sweep runs this often relative to the grace period (bounded below for tests with a grace
# of a fraction of a second, above so that a long grace is still kept to within a few per cent).
SWEEP_FRACTION = 0.1
SWEEP_MIN_SECONDS = 0.05
SWEEP_MAX_SECONDS = 15.0


class TransactionError(Exception):
    pass


class UnknownTransaction(TransactionError):
    pass


class AlreadyStopped(TransactionError):
    pass


def settle_for(csms: CentralSystem, charger_id: str) -> Settle:
    """Billing as a stop applies it: the transaction's own tariff snapshot, else the charger's tariff."""
    return partial(billing.settle_transaction,
                   fallback=billing.tariff_for(csms.settings, charger_id, tariffs=csms.tariffs))


def publish_closed(csms: CentralSystem, closed: ClosedTransaction) -> None:
    """A transaction we closed is stopped for everyone watching (the console, counters)."""
    csms.events.publish(ev.TransactionStopped(
        closed.charger_id, closed.transaction_id, closed.connector_id, closed.energy_wh, closed.closed_by, True,
        closed.cost_total, closed.currency, closed_by=closed.closed_by,
    ))


async def close_by_operator(csms: CentralSystem, transaction_id: int) -> ClosedTransaction:
    """Close a stuck transaction by hand, with its last meter value, and settle it. The charger is
    not asked anything: if it still runs the session, its StopTransaction later settles the rest."""
    row = await csms.store.transaction(transaction_id)
    if row is None:
        raise UnknownTransaction(f"no transaction {transaction_id}")
    outcome = await csms.store.close_transaction(transaction_id, CLOSED_BY_OPERATOR, settle_for(csms, row["charger_id"]))
    if outcome.outcome == "stopped" or outcome.closed is None:
        raise AlreadyStopped(f"transaction {transaction_id} is already stopped")
    log.info("transaction %d on %s connector %d closed by the operator", transaction_id, row["charger_id"],
             row["connector_id"])
    publish_closed(csms, outcome.closed)
    return outcome.closed


def is_stale(
    connected: bool,
    last_boot: str | None,
    started_at: str,
    connector_status: str | None,
    connector_updated_at: str | None,
) -> bool:
    """The console's copy of the store's STALE_SQL, on what it holds in memory: an open transaction
    is stale when its charger is offline, or rebooted since it started without reporting the
    connector in session since, or the connector reported Available since it started."""
    if not connected:
        return True
    updated = connector_updated_at or ""
    if last_boot and last_boot > started_at:
        if not (connector_status in IN_SESSION and updated >= last_boot):
            return True
    return connector_status == "Available" and updated > started_at


class StaleSweeper:
    """Closes the transactions of rebooted chargers whose StopTransaction did not come within the
    grace period; runs on start and then periodically, from what the database holds."""

    def __init__(self, csms: CentralSystem) -> None:
        self.csms = csms
        self._task: asyncio.Task[None] | None = None

    @property
    def grace(self) -> float:
        return self.csms.settings.stale_transaction_grace

    @property
    def interval(self) -> float:
        return min(SWEEP_MAX_SECONDS, max(SWEEP_MIN_SECONDS, self.grace * SWEEP_FRACTION))

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="stale-transaction-sweep")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _run(self) -> None:
        while True:
            try:
                await self.sweep()
            except asyncio.CancelledError:
                raise
            except Exception:  # a busy database now is no reason to stop sweeping
                log.exception("closing stale transactions failed")
            await asyncio.sleep(self.interval)

    async def sweep(self) -> list[ClosedTransaction]:
        cutoff = iso(utcnow() - timedelta(seconds=self.grace))
        closed: list[ClosedTransaction] = []
        for row in await self.csms.store.transactions_closable_after_reboot(cutoff):
            outcome = await self.csms.store.close_transaction(
                row["id"], CLOSED_AFTER_REBOOT, settle_for(self.csms, row["charger_id"]), reboot_cutoff=cutoff
            )
            if outcome.closed is not None:
                publish_closed(self.csms, outcome.closed)
                closed.append(outcome.closed)
        return closed
