"""Prepaid wallets that stop a session (`stop_on_empty_wallet`).

A running session whose cost so far, priced by settlement's own code (billing.running_settlement
on the samples settlement will use), reaches the spendable balance of its wallet (the balance
above `min_balance`, less what the wallet's other running sessions have cost so far) is stopped
with RemoteStopTransaction. The order says why (`stop_note`, flag `wallet_empty`), whatever reason
the charger's StopTransaction then gives.

Checked after a transaction's meter values (at most every `check_every` seconds each) and for
every open transaction every `sweep_every` seconds (a session priced by the minute costs more
without sending anything). The stop is asked once; if the charger is offline, refuses, fails to
answer or accepts but keeps the session going, it is asked again after `retry_first` seconds,
doubling up to `retry_max`: never more often, whatever the meter values say meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ocpp_console.csms import billing
from ocpp_console.csms import events as ev
from ocpp_console.csms.errors import CommandError
from ocpp_console.timeutil import now_iso

if TYPE_CHECKING:
    from ocpp_console.csms.server import CentralSystem
    from ocpp_console.store.wallets import WalletSessions

log = logging.getLogger("ocpp_console.wallet")

WALLET_EMPTY = "wallet_empty"  # the flag on the order


@dataclass
class StopRequest:
    attempts: int = 0
    next_at: float = 0.0  # time.monotonic() before which it is not asked again


class WalletGuard:
    def __init__(self, csms: CentralSystem) -> None:
        self.csms = csms
        self.check_every = 5.0
        self.sweep_every = 30.0
        self.retry_first = 30.0
        self.retry_max = 600.0
        self.requests: dict[int, StopRequest] = {}  # transaction id -> its stop request
        self._last_check: dict[int, float] = {}
        self._checking: set[int] = set()
        self._deferred: dict[int, asyncio.TimerHandle] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._sweeper: asyncio.Task[None] | None = None
        self._unsubscribe: object = None

    @property
    def enabled(self) -> bool:
        return self.csms.settings.stop_on_empty_wallet and self.csms.settings.wallet

    def start(self) -> None:
        if self.csms.settings.stop_on_empty_wallet and not self.csms.settings.wallet:
            log.warning("stop_on_empty_wallet has no effect with --no-wallet (wallets are not checked)")
        if not self.enabled:
            return
        self._unsubscribe = self.csms.events.subscribe(self._on_event, (ev.MeterSample, ev.TransactionStopped))
        self._sweeper = asyncio.create_task(self._sweep(), name="wallet-guard")
        log.info("sessions stop when their cost reaches the wallet's spendable balance (stop_on_empty_wallet)")

    async def stop(self) -> None:
        if callable(self._unsubscribe):
            self._unsubscribe()
        for handle in self._deferred.values():
            handle.cancel()
        tasks = [t for t in (self._sweeper, *self._tasks) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._sweeper = None

    # -- when to look ----------------------------------------------------------------------

    def _on_event(self, event: ev.Event) -> None:
        if isinstance(event, ev.MeterSample) and event.transaction_id:
            self.soon(event.transaction_id)
        elif isinstance(event, ev.TransactionStopped):
            self.requests.pop(event.transaction_id, None)
            self._last_check.pop(event.transaction_id, None)
            if (handle := self._deferred.pop(event.transaction_id, None)) is not None:
                handle.cancel()

    def soon(self, transaction_id: int) -> None:
        """Check a transaction now, or when its last check is `check_every` old (never dropped)."""
        if transaction_id in self._checking or transaction_id in self._deferred:
            return
        wait = self._last_check.get(transaction_id, -math.inf) + self.check_every - time.monotonic()
        if wait > 0:
            self._deferred[transaction_id] = asyncio.get_running_loop().call_later(wait, self._due, transaction_id)
            return
        task = asyncio.create_task(self._check_logged(transaction_id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _due(self, transaction_id: int) -> None:
        self._deferred.pop(transaction_id, None)
        self.soon(transaction_id)

    async def _sweep(self) -> None:
        while True:
            try:
                for transaction_id in await self.csms.store.open_transaction_ids():
                    self.soon(transaction_id)
            except asyncio.CancelledError:
                raise
            except Exception:  # a busy database now is no reason to stop guarding
                log.exception("checking running sessions against their wallets failed")
            await asyncio.sleep(self.sweep_every)

    async def _check_logged(self, transaction_id: int) -> None:
        try:
            await self.check(transaction_id)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("transaction %d: checking its wallet failed", transaction_id)

    # -- the check ---------------------------------------------------------------------------

    def _cost(self, wallet: WalletSessions, now: str) -> list[int]:
        """Each session's cost so far, as settlement would price a stop now."""
        costs = []
        for tx, samples in wallet.sessions:
            fallback = billing.tariff_for(self.csms.settings, tx["charger_id"], tariffs=self.csms.tariffs)
            tariff = billing.Tariff.from_json(tx["tariff"]) if tx["tariff"] else fallback
            costs.append(billing.running_settlement(tariff, tx["start_timestamp"], tx["meter_start"], samples, now).total)
        return costs

    async def check(self, transaction_id: int) -> bool:
        """Ask the charger to stop the transaction if its wallet is spent; True if asked now."""
        self._checking.add(transaction_id)
        self._last_check[transaction_id] = time.monotonic()
        try:
            request = self.requests.get(transaction_id)
            if request is not None and time.monotonic() < request.next_at:
                return False
            wallet = await self.csms.store.wallet_sessions(transaction_id)
            if wallet is None:
                return False  # stopped meanwhile, or a tag without a wallet
            settings = self.csms.settings
            costs = self._cost(wallet, now_iso())
            spendable = wallet.balance - billing.to_minor(settings.min_balance, settings.currency)
            # Nothing to pay (a free tariff, a session that has not drawn yet) is never a reason to stop.
            if costs[0] <= 0 or sum(costs) < spendable:
                return False
            await self._ask_to_stop(wallet, costs, spendable)
            return True
        finally:
            self._checking.discard(transaction_id)

    async def _ask_to_stop(self, wallet: WalletSessions, costs: list[int], spendable: int) -> None:
        tx = wallet.sessions[0][0]
        transaction_id, charger_id = tx["id"], tx["charger_id"]
        currency = self.csms.settings.currency
        others = f", with {len(costs) - 1} other running session(s) of the wallet" if len(costs) > 1 else ""
        note = (f"wallet empty: cost so far {billing.format_money(costs[0], currency)}{others} reached the "
                f"spendable balance {billing.format_money(spendable, currency)} of {wallet.owner}")
        if await self.csms.store.note_stop_request(transaction_id, note, WALLET_EMPTY):
            log.warning("%s: transaction %d: %s; asking the charger to stop it", charger_id, transaction_id, note)
        request = self.requests.setdefault(transaction_id, StopRequest())
        request.attempts += 1
        request.next_at = time.monotonic() + min(self.retry_max, self.retry_first * 2 ** (request.attempts - 1))
        try:
            answer = await self.csms.commands.remote_stop_transaction(charger_id, transaction_id)
        except CommandError as exc:
            outcome = f"{exc.outcome} ({exc})"
        else:
            outcome = str(getattr(answer, "status", answer))
        log.info("%s: transaction %d: RemoteStopTransaction (wallet empty, attempt %d): %s; asked again in %.0f s "
                 "if it still runs", charger_id, transaction_id, request.attempts, outcome,
                 request.next_at - time.monotonic())
