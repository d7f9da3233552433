"""Provisioning chargers, id tags and tariffs before a commissioning day, from the shell or a file.

Headless: the command line and the HTTP API call these functions; they never print. They work on
the database whether or not the central system runs: a running one notices another process's
commit within a second (it polls SQLite's data_version), reloads its tariffs and refreshes the
console, and it reads chargers, passwords and id tags from the database at every login,
BootNotification and Authorize anyway.

Bad input raises ProvisionError with a message fit for an operator; an import file is checked
whole before anything is written, and then written in one database transaction.
"""

from __future__ import annotations

import asyncio
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ocpp.v16.enums import AuthorizationStatus

from ocpp_console.csms.billing import (
    SITE_SCOPE,
    TARIFF_KEYS,
    Tariff,
    Window,
    from_minor,
    minor_units,
    tariff_for,
    to_minor,
)
from ocpp_console.csms.security import PasswordError, check_password, hash_password
from ocpp_console.store import Store, StoreError
from ocpp_console.store.models import Row

if TYPE_CHECKING:
    from ocpp_console.provision_files import ImportReport
from ocpp_console.store.provisioning import ChargerSpec, Clearable, ProvisionCounts, TagSpec, TariffSpec
from ocpp_console.timeutil import iso

MAX_CHARGER_ID = 48  # the central system refuses longer ids in the URL (csms.server.MAX_ID_LENGTH)
MAX_ID_TAG = 20  # OCPP 1.6 IdToken is a CiString20
# ConcurrentTx is an answer about a running session, never a tag's provisioned state.
TAG_STATUSES = tuple(s.value for s in AuthorizationStatus if s != AuthorizationStatus.concurrent_tx)
DECIMAL_KEYS = ("price_per_kwh", "price_per_minute", "idle_price_per_minute", "idle_grace_minutes", "session_fee")
CHARGER_KEYS = ("id", "password", "security_profile", "max_kw", "priority", "note")
TAG_KEYS = ("id_tag", "status", "expiry", "parent", "balance", "priority", "note")
CSV_COLUMNS = ("kind", "id", "password", "security_profile", "max_kw", "status", "expiry", "parent", "balance",
               "priority", "note", *TARIFF_KEYS)
CSV_KINDS = {"charger": ("password", "security_profile", "max_kw", "priority", "note"),
             "tag": ("status", "expiry", "parent", "balance", "priority", "note"), "tariff": TARIFF_KEYS}
MIN_KW = 0.1  # a charger's maximum below this is a typo, or "off" (block the charger instead)
MAX_KW = 1_000.0  # a charger's maximum above this is a typo (W for kW), not a charger
PRIORITIES = (-100, 100)


class ProvisionError(ValueError):
    """Input an operator must correct; the message says what and where."""


# -- what the functions hand back ------------------------------------------------------------


@dataclass(frozen=True)
class ChargerInfo:
    id: str
    registration: str
    password: bool
    connected: bool
    vendor: str | None
    model: str | None
    last_seen: str | None
    note: str | None
    security_profile: int = 0
    max_kw: float | None = None  # its provisioned maximum (None: the setting charger_max_kw)
    priority: int | None = None  # under load_policy "priority" (None: 0)

    @classmethod
    def from_row(cls, row: Row) -> ChargerInfo:
        return cls(row["id"], row["registration"], row["password_hash"] is not None, bool(row["connected"]),
                   row["vendor"], row["model"], row["last_seen"], row["note"], row["security_profile"],
                   kw(row["max_power_w"]), row["priority"])

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "registration": self.registration, "password": self.password,
                "security_profile": self.security_profile, "max_kw": self.max_kw, "priority": self.priority,
                "connected": self.connected, "vendor": self.vendor, "model": self.model, "last_seen": self.last_seen,
                "note": self.note}


@dataclass(frozen=True)
class TagInfo:
    id_tag: str
    status: str
    expiry: str | None
    parent: str | None
    balance: Decimal  # the tag's own wallet, in the major unit of `currency`
    currency: str
    note: str | None
    priority: int | None = None  # under load_policy "priority" (None: its charger's)

    @classmethod
    def from_row(cls, row: Row, currency: str) -> TagInfo:
        return cls(row["id_tag"], row["status"], row["expiry_date"], row["parent_id_tag"],
                   from_minor(row["balance"], currency), currency, row["note"], row["priority"])

    def to_json(self) -> dict[str, Any]:
        return {"id_tag": self.id_tag, "status": self.status, "expiry": self.expiry, "parent": self.parent,
                "balance": str(self.balance), "currency": self.currency, "priority": self.priority,
                "note": self.note}


@dataclass(frozen=True)
class TariffInfo:
    """The tariff in force for a scope ('*' the site, or a charger with its own), and where its
    values come from: settings (flags, environment, TOML), stored (imported), or both."""

    scope: str
    tariff: Tariff
    source: str

    def to_json(self) -> dict[str, Any]:
        t = self.tariff
        return {
            "scope": self.scope, "source": self.source, "currency": t.currency,
            "price_per_kwh": str(t.price_per_kwh), "price_per_minute": str(t.price_per_minute),
            "idle_price_per_minute": str(t.idle_price_per_minute), "idle_grace_minutes": str(t.idle_grace_minutes),
            "session_fee": str(t.session_fee), "tou_windows": ",".join(str(w) for w in t.windows),
            "timezone": t.timezone,
        }


# -- checking single values --------------------------------------------------------------------


def _check_identifier(value: Any, what: str, limit: int, why: str = "") -> str:
    """Ids typed by operators: text, no spaces around it, no control characters, at most `limit`."""
    if not isinstance(value, str) or not value.strip():
        raise ProvisionError(f"{'an' if what[0] in 'aeiou' else 'a'} {what} is text that is not empty")
    if value != value.strip() or any(unicodedata.category(ch) == "Cc" for ch in value):  # C0 and C1 controls
        raise ProvisionError(f"{what} {value!r}: no spaces around it and no control characters")
    if len(value) > limit:
        raise ProvisionError(f"{what} {value!r}: at most {limit} characters{why}")
    return value


def check_charger_id(value: Any) -> str:
    return _check_identifier(value, "charger id", MAX_CHARGER_ID)


def check_id_tag(value: Any) -> str:
    return _check_identifier(value, "id tag", MAX_ID_TAG, " (OCPP 1.6 IdToken)")


def check_charger_password(value: Any) -> str:
    if not isinstance(value, str):
        raise ProvisionError("a password is text")
    try:
        check_password(value)
    except PasswordError as exc:
        raise ProvisionError(str(exc)) from None
    return value


def check_security_profile(value: Any) -> int:
    """A charger's own security profile, 0-3 (as a number or its text)."""
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 3:
        raise ProvisionError(f"security profile {value!r}: 0, 1, 2 or 3")
    return value


def parse_max_kw(value: Any) -> int | str:
    """A charger's maximum in kW (11, "7.4", "7,4") -> whole watts; "" clears it (the setting
    charger_max_kw applies again)."""
    if isinstance(value, str) and not value.strip():
        return ""
    number = _decimal(value, "maximum (kW)")
    if not Decimal(str(MIN_KW)) <= number <= Decimal(str(MAX_KW)):
        raise ProvisionError(f"maximum {value!r} kW: at least {MIN_KW}, at most {MAX_KW:.0f}")
    return int(number * 1000)


def check_max_kw(value: str) -> str:
    """A maximum as typed (`--max-kw 7.4`), checked and kept as typed."""
    parse_max_kw(value)
    return value


def parse_priority(value: Any) -> int | str:
    """A load-management priority, a whole number (higher is served first); "" clears it."""
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return ""
        if text.lstrip("+-").isdigit():
            value = int(text)
    low, high = PRIORITIES
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ProvisionError(f"priority {value!r}: a whole number from {low} to {high} (higher first)")
    return value


def kw(watts: int | float | None) -> float | None:
    return None if watts is None else watts / 1000


def parse_status(value: Any) -> str:
    """An AuthorizationStatus a tag can be given, in any letter case."""
    wanted = str(value).strip().lower()
    for status in TAG_STATUSES:
        if status.lower() == wanted:
            return status
    raise ProvisionError(f"status {value!r}: one of {', '.join(TAG_STATUSES)}")


def parse_expiry(value: Any) -> str:
    """ISO UTC. A date means through the end of that day, local time; a time without a zone is
    local time, as in the console. "" clears the expiry."""
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return ""
        try:
            value = date.fromisoformat(text) if len(text) == 10 else datetime.fromisoformat(text)
        except ValueError:
            raise ProvisionError(f"expiry {text!r}: a date (2026-12-31) or a date and time (2026-12-31T18:00)") from None
    if isinstance(value, datetime):  # before date: a datetime is a date too
        return iso(value if value.tzinfo else value.astimezone())
    if isinstance(value, date):
        return iso(datetime.combine(value + timedelta(days=1), time()).astimezone())
    raise ProvisionError(f"expiry {value!r}: a date (2026-12-31) or a date and time (2026-12-31T18:00)")


def _decimal(value: Any, what: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (str, int, float, Decimal)):
        raise ProvisionError(f"{what} {value!r}: not a number")
    try:
        # str() first: a TOML 0.35 is the float nearest 0.35, whose shortest text is exact again.
        number = Decimal(str(value).strip().replace(",", "."))
    except InvalidOperation:
        raise ProvisionError(f"{what} {value!r}: not a number") from None
    if not number.is_finite():
        raise ProvisionError(f"{what} {value!r}: not a number")
    return number


def check_amount(value: Any) -> str:
    """An amount as typed (`--balance 25.00`): a number, kept as text until the currency is known."""
    _decimal(value, "amount")
    return str(value)


def parse_amount(value: Any, currency: str) -> int:
    """An amount like "25.00" in the site currency -> integer minor units."""
    amount = _decimal(value, "amount")
    exponent = minor_units(currency)
    if amount != amount.quantize(Decimal(1).scaleb(-exponent)):
        raise ProvisionError(f"amount {value!r}: {currency} has {exponent} decimals")
    return to_minor(amount, currency)


def parse_tariff(values: Mapping[str, Any]) -> dict[str, str]:
    """Tariff keys as the settings name them, checked and stored as exact text."""
    tariff: dict[str, str] = {}
    for key, value in values.items():
        if key not in TARIFF_KEYS:
            raise ProvisionError(f"{key!r} is not a tariff key ({', '.join(TARIFF_KEYS)})")
        if value is None or value == "":
            continue
        if key in DECIMAL_KEYS:
            number = _decimal(value, key)
            if number < 0:
                raise ProvisionError(f"{key} {value!r}: not negative")
            tariff[key] = str(number)
        elif key == "tou_windows":
            parts = value if isinstance(value, list) else str(value).split(",")
            try:
                windows = [Window.parse(str(p).strip()) for p in parts if str(p).strip()]
            except ValueError as exc:
                raise ProvisionError(str(exc)) from None
            if any(w.price_per_kwh < 0 for w in windows):
                raise ProvisionError(f"tou_windows {value!r}: prices are not negative")
            tariff[key] = ",".join(str(w) for w in windows)
        elif key == "currency":
            code = str(value).strip().upper()
            if len(code) != 3 or not code.isalpha() or not code.isascii():
                raise ProvisionError(f"currency {value!r}: an ISO 4217 code such as EUR")
            tariff[key] = code
        elif key == "timezone":
            try:
                ZoneInfo(str(value))
            except (ZoneInfoNotFoundError, ValueError):
                raise ProvisionError(f"timezone {value!r}: an IANA name such as Europe/Berlin") from None
            tariff[key] = str(value)
    return tariff


def _optional_text(value: Any, what: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ProvisionError(f"{what} {value!r}: text, in quotes")
    return value.strip()


# -- chargers ----------------------------------------------------------------------------------


async def add_charger(
    store: Store, charger_id: str, password: str | None = None, note: str | None = None,
    security_profile: int | str | None = None, max_kw: Any = None, priority: Any = None,
) -> ChargerInfo:
    """Provision a charger (registration Accepted); an existing one is updated and keeps what is
    not given. The password is stored as a salted hash only. The security profile is the lowest
    the charger is let in with, set as given: lowering it is how an operator lets a charger back
    in whose profile was raised beyond what it can do. `max_kw` (a charger or its cable weaker
    than its rating) and `priority` are for load management; "" clears either."""
    spec = charger_spec(charger_id, note, security_profile, max_kw, priority)
    if password is not None:
        spec = replace(spec, password_hash=await _hash(check_charger_password(password)))
    await provision_specs(store, chargers=[spec])
    return await _charger_info(store, spec.id)


def charger_spec(charger_id: Any, note: Any = None, security_profile: Any = None, max_kw: Any = None,
                 priority: Any = None) -> ChargerSpec:
    """A charger's values checked (its password is hashed apart: scrypt is slow on purpose)."""
    return ChargerSpec(
        check_charger_id(charger_id),
        None,
        _optional_text(note, "note"),
        check_security_profile(security_profile) if security_profile is not None else None,
        _clearable(parse_max_kw(max_kw)) if max_kw is not None else None,
        _clearable(parse_priority(priority)) if priority is not None else None,
    )


def _clearable(value: int | str) -> Clearable:
    return "" if value == "" else int(value)


async def list_chargers(store: Store) -> list[ChargerInfo]:
    return [ChargerInfo.from_row(row) for row in await store.chargers()]


async def remove_charger(store: Store, charger_id: str) -> None:
    """Forget a charger: its row, connectors, configuration and charging profiles. Its transactions,
    meter values, status history and message log stay for the record. Connected, it is let go."""
    if not await store.remove_charger(charger_id):
        raise ProvisionError(f"unknown charger {charger_id}")


async def set_password(store: Store, charger_id: str, password: str | None) -> None:
    """Set a charger's password (provisioning it if it is new); None removes the password."""
    check_charger_id(charger_id)
    if password is None:
        if await store.charger(charger_id) is None:
            raise ProvisionError(f"unknown charger {charger_id}")
        await store.set_password(charger_id, None)
        return
    await store.set_password(charger_id, await _hash(check_charger_password(password)))


async def _hash(password: str) -> str:
    # scrypt takes ~50 ms on purpose: off the event loop, which chargers share in a running server.
    return await asyncio.to_thread(hash_password, password)


async def _charger_info(store: Store, charger_id: str) -> ChargerInfo:
    row = await store.charger(charger_id)
    if row is None:  # removed by someone else in between
        raise ProvisionError(f"unknown charger {charger_id}")
    return ChargerInfo.from_row(row)


async def list_tariffs(store: Store, settings: Any) -> list[TariffInfo]:
    """The site's tariff, then every charger that has one of its own, as billing applies them."""
    stored = await store.tariffs()
    scopes = sorted((set(stored) | set(settings.charger_tariffs)) - {SITE_SCOPE})

    def source(*layers: bool) -> str:
        return " + ".join(name for name, present in zip(("settings", "stored"), layers) if present) or "settings"

    # A scope no charger can have stands for "no charger override": the site's tariff.
    site = TariffInfo(SITE_SCOPE, tariff_for(settings, "\0site", tariffs=stored), source(True, SITE_SCOPE in stored))
    return [site] + [
        TariffInfo(scope, tariff_for(settings, scope, tariffs=stored),
                   source(scope in settings.charger_tariffs, scope in stored))
        for scope in scopes
    ]


async def billing_view(store: Store, settings: Any, own: Any = None) -> list[dict[str, Any]]:
    """`tariffs list` and `GET /api/tariffs`: the tariffs as the running instance bills them (its
    recorded settings; `own`: the instance asking, the API's), else as this shell's settings would,
    each saying which, with the site's wallet rules."""
    from ocpp_console.csms.instance import billing_settings, running_instance

    instance = own if own is not None else await running_instance(store)
    billing = billing_settings(settings, instance) if own is None else settings
    extra = {
        "settings_from": "running instance" if instance is not None else "this shell",
        "instance": instance.to_json() if instance is not None else None,
        "min_balance": str(from_minor(to_minor(billing.min_balance, billing.currency), billing.currency)),
        "wallet": billing.wallet,
        "stop_on_empty_wallet": billing.stop_on_empty_wallet,
    }
    return [{**t.to_json(), **extra} for t in await list_tariffs(store, billing)]


# -- id tags -----------------------------------------------------------------------------------


async def add_or_update_tag(
    store: Store,
    tag: str,
    status: str | None = None,
    expiry: str | date | None = None,
    parent: str | None = None,
    balance: str | Decimal | None = None,
    note: str | None = None,
    *,
    currency: str,
    priority: Any = None,
) -> TagInfo:
    """Add an id tag (Accepted unless told otherwise) or update the values given; "" clears expiry,
    parent, note or priority. A balance sets the tag's wallet to that amount with one ledger
    movement of the difference. A priority (load management) wins over its charger's."""
    spec = tag_spec(tag, status, expiry, parent, balance, note, currency, priority)
    await check_tag_against_store(store, spec, set())
    await provision_specs(store, tags=[spec], currency=currency)
    row = await store.id_tag(spec.id_tag)
    assert row is not None
    return TagInfo.from_row(row, currency)


async def list_tags(store: Store, currency: str) -> list[TagInfo]:
    return [TagInfo.from_row(row, currency) for row in await store.id_tags()]


async def remove_tag(store: Store, tag: str) -> None:
    """Forget an id tag; refused while its wallet holds money, it has child tags or a running session.
    Its transactions and ledger rows stay for the record."""
    try:
        removed = await store.remove_id_tag(tag)
    except StoreError as exc:
        raise ProvisionError(str(exc)) from None
    if not removed:
        raise ProvisionError(f"unknown id tag {tag}")


def tag_spec(
    tag: Any, status: Any, expiry: Any, parent: Any, balance: Any, note: Any, currency: str, priority: Any = None
) -> TagSpec:
    tag = check_id_tag(tag)
    parent_text = _optional_text(parent, "parent")
    if parent_text:
        check_id_tag(parent_text)
        if parent_text == tag:
            raise ProvisionError(f"id tag {tag} cannot be its own parent")
    return TagSpec(
        tag,
        parse_status(status) if status is not None else None,
        parse_expiry(expiry) if expiry is not None else None,
        parent_text,
        parse_amount(balance, currency) if balance is not None else None,
        _optional_text(note, "note"),
        _clearable(parse_priority(priority)) if priority is not None else None,
    )


async def check_tag_against_store(store: Store, spec: TagSpec, coming: set[str]) -> None:
    """What only the database can tell: the parent exists (or comes in the same import), and a
    balance is given to a tag that pays for itself."""
    if spec.parent_id_tag and spec.parent_id_tag not in coming and await store.id_tag(spec.parent_id_tag) is None:
        raise ProvisionError(f"parent tag {spec.parent_id_tag} of {spec.id_tag} does not exist")
    if spec.balance is not None:
        parent = spec.parent_id_tag
        if parent is None:
            row = await store.id_tag(spec.id_tag)
            parent = row["parent_id_tag"] if row else None
        if parent:
            raise ProvisionError(
                f"id tag {spec.id_tag} spends the wallet of its parent {parent}: give the balance to {parent}"
            )


async def import_file(store: Store, path: str | Path, *, currency: str) -> ImportReport:
    """Chargers, id tags and tariffs from a TOML or CSV file (ocpp_console/provision_files.py)."""
    from ocpp_console.provision_files import import_file as run

    return await run(store, path, currency=currency)


async def provision_specs(
    store: Store,
    chargers: Sequence[ChargerSpec] = (),
    tags: Sequence[TagSpec] = (),
    tariffs: Sequence[TariffSpec] = (),
    *,
    currency: str | None = None,
    reason: str = "provisioning",
) -> ProvisionCounts:
    try:
        return await store.provision(chargers, tags, tariffs, currency=currency, reason=reason)
    except StoreError as exc:  # what changed in the database since it was checked
        raise ProvisionError(str(exc)) from None
