"""The site in this process: a `Site` over the CentralSystem and its Store (the single-process console)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import asdict
from datetime import date, datetime
from pathlib import Path
from typing import Any


from ocpp_console.api import resources
from ocpp_console.csms import CentralSystem, operations, protocol
from ocpp_console.csms.errors import InvalidCommand
from ocpp_console.csms.running import load_running
from ocpp_console.csms.security import PasswordError, check_password, hash_password
from ocpp_console.csms.transactions import TransactionError, close_by_operator
from ocpp_console.export import export_to_text
from ocpp_console.site.events import Event
from ocpp_console.site.interface import Row, Site, SiteError, SiteInfo, Unsubscribe
from ocpp_console.site.models import running_row
from ocpp_console.store import StoreError

SECRET_COLUMNS = ("password_hash", "pending_password_hash")


_answer = operations.answer_payload  # a charger's answer as OCPP JSON, as the HTTP API answers it


class LocalSite(Site):
    owns_chargers = True  # its central system is this process: quitting disconnects the chargers

    def __init__(self, csms: CentralSystem) -> None:
        self.csms = csms

    @property
    def store(self) -> Any:
        return self.csms.store

    # -- lifecycle -----------------------------------------------------------------

    async def start(self) -> None:
        try:
            await self.csms.start()
        except OSError as exc:
            raise SiteError(f"cannot listen on port {self.csms.settings.port}: {exc}") from exc

    async def stop(self) -> None:
        if self.csms.port is not None:
            await self.csms.stop()

    def info(self) -> SiteInfo:
        settings = self.csms.settings
        return SiteInfo(
            currency=settings.currency, wallet=settings.wallet, min_balance=str(settings.min_balance),
            charger_url=f"ws://{settings.host}:{self.csms.port}/<chargePointId>",
        )

    def subscribe(self, callback: Callable[[Event], None]) -> Unsubscribe:
        return self.csms.events.subscribe(callback)

    # -- read models ---------------------------------------------------------------

    async def chargers(self) -> list[Row]:
        return await resources.chargers(self.csms)

    async def connected(self) -> set[str]:
        return {c for c, session in self.csms.sessions.items() if not session.closing}

    async def charger(self, charger_id: str) -> Row | None:
        row = await self.store.charger(charger_id)
        if row is None:
            return None
        detail = {k: v for k, v in row.items() if k not in SECRET_COLUMNS}
        detail["has_password"] = row["password_hash"] is not None
        return detail

    async def connectors(self, charger_id: str | None = None) -> list[Row]:
        return await self.store.connectors(charger_id)

    async def configuration(self, charger_id: str) -> list[Row]:
        return await self.store.configuration(charger_id)

    async def reservations(self, charger_id: str) -> list[Row]:
        return await self.store.reservations(charger_id)

    async def charging_profiles(self, charger_id: str) -> list[Row]:
        return await self.store.charging_profiles(charger_id)

    async def charger_samples_since(self, charger_id: str, since: str, measurands: Sequence[str]) -> list[Row]:
        return await self.store.charger_samples_since(charger_id, since, measurands)

    async def running(self) -> list[Row]:
        return [running_row(tx) for tx in (await load_running(self.store)).values()]

    async def transaction(self, transaction_id: int) -> Row | None:
        return await self.store.transaction(transaction_id)

    async def transactions(self, running: bool | None = None, limit: int = 500) -> list[Row]:
        return await self.store.transactions(running=running, limit=limit)

    async def meter_values_for(self, transaction_id: int) -> list[Row]:
        return await self.store.meter_values_for(transaction_id)

    async def ledger_for_transaction(self, transaction_id: int) -> list[Row]:
        return await self.store.ledger_for_transaction(transaction_id)

    async def energy_stopped_since(self, since: str) -> float:
        return await self.store.energy_stopped_since(since)

    async def revenue_since(self, since: str) -> dict[str, int]:
        return await self.store.revenue_since(since)

    async def power_samples_since(self, since: str) -> list[Row]:
        return await self.store.power_samples_since(since)

    async def site_load(self, history_since: str | None = None) -> Row:
        since = None
        if history_since is not None:
            try:
                since = datetime.fromisoformat(history_since.replace("Z", "+00:00")).timestamp() if history_since else 0.0
            except ValueError:
                raise SiteError(f"not a time: {history_since!r}") from None
        return self.csms.load.snapshot(since)

    async def id_tags(self) -> list[Row]:
        return await self.store.id_tags()

    async def message_log(self, limit: int = 1000) -> list[Row]:
        return [resources.message(row) for row in await self.store.message_log(limit=limit)]

    # -- commands ------------------------------------------------------------------

    async def operate(self, charger_id: str, action: str, payload: dict[str, Any]) -> dict[str, Any]:
        operation = operations.find(action)
        if operation is None:
            raise InvalidCommand(f"no operation {action!r}; one of: {', '.join(operations.OPERATIONS)}")
        payload = await self.csms.hosted_payload(charger_id, operation.name, dict(payload))
        reserve = operations.needs_reservation_id(operation, payload)
        if reserve:
            payload["reservationId"] = await self.store.next_reservation_id()
        # As operations.execute (the HTTP API) calls Commands, but the payload is checked where the
        # console's commands always were: in the session, so that a refused one is logged too.
        renamed = operations._RENAMED.get(operation.action, {})
        kwargs = {renamed.get(k, protocol.snake_key(k)): v for k, v in payload.items()}
        answer = _answer(await getattr(self.csms.commands, operation.method)(charger_id, **kwargs))
        if reserve:
            answer["reservationId"] = payload["reservationId"]
        return answer

    async def firmware_images(self) -> list[Row]:
        return await self.store.firmware_images()

    async def add_firmware(self, path: str, name: str | None = None) -> Row:
        from ocpp_console.files.library import LibraryError, add_image

        try:
            return await add_image(self.store, self.csms.files.grants.firmware_dir, Path(path), name or None)
        except LibraryError as exc:
            raise SiteError(str(exc)) from None

    async def received_files(self, charger_id: str) -> list[Row]:
        return [f.to_json() for f in self.csms.files.received(charger_id)]

    async def received_file(self, charger_id: str, name: str) -> bytes:
        path = self.csms.files.received_path(charger_id, name)
        if path is None:
            raise SiteError(f"{charger_id} uploaded no file {name!r}")
        return await asyncio.to_thread(path.read_bytes)

    async def install_operator_ca(self, charger_id: str) -> dict[str, Any]:
        return _answer(await self.csms.commands.install_operator_ca(charger_id))

    async def approve(self, charger_id: str) -> None:
        await self.csms.commands.approve(charger_id)

    async def reject(self, charger_id: str) -> None:
        await self.csms.commands.reject(charger_id)

    async def set_password(self, charger_id: str, password: str | None) -> None:
        if password is not None:
            try:
                check_password(password)
            except PasswordError as exc:
                raise SiteError(str(exc)) from None
        await self.store.set_password(charger_id, hash_password(password) if password else None)
        await self.csms.reload()  # sessions and attached consoles see it (our writes do not move data_version)

    async def save_id_tag(self, id_tag: str, status: str, expiry_date: str | None, parent_id_tag: str | None,
                          note: str | None) -> None:
        # As the HTTP API and the CLI save it (a parent must exist, ...): the same rules in both consoles.
        body = {"status": status, "expiry_date": expiry_date, "parent_id_tag": parent_id_tag, "note": note}
        try:
            await resources.put_id_tag(self.csms, id_tag, body)
        except ValueError as exc:
            raise SiteError(str(exc)) from None
        await self.csms.reload()

    async def wallet_movement(self, id_tag: str, amount: int, kind: str, reason: str) -> tuple[str, int]:
        try:
            wallet, balance = await self.store.wallet_movement(id_tag, amount, self.csms.settings.currency, kind, reason)
        except StoreError as exc:
            raise SiteError(str(exc)) from None
        await self.csms.reload()
        return wallet, balance

    async def close_transaction(self, transaction_id: int) -> Row:
        try:
            closed = await close_by_operator(self.csms, transaction_id)
        except TransactionError as exc:
            raise SiteError(str(exc)) from None
        return asdict(closed)

    async def set_site_limit(self, limit_kw: float | None) -> Row:
        try:
            return await self.csms.load.change_limit(limit_kw)
        except ValueError as exc:  # the API refuses the same (its schema): the same words here
            raise SiteError(str(exc)) from None

    async def export_csv(self, kind: str, first: date | None, last: date | None) -> tuple[str, int]:
        return await export_to_text(self.store, kind, first, last, self.csms.settings.currency)
