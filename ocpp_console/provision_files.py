"""Provisioning from a file: chargers, id tags and tariffs in TOML (.toml) or CSV (.csv), every
entry checked first, then all written in one database transaction, or nothing."""

from __future__ import annotations

import csv
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ocpp_console.csms.billing import SITE_SCOPE
from ocpp_console.provision import (
    CHARGER_KEYS,
    CSV_COLUMNS,
    CSV_KINDS,
    TAG_KEYS,
    ProvisionError,
    _hash,
    charger_spec,
    check_charger_id,
    check_charger_password,
    check_tag_against_store,
    parse_tariff,
    provision_specs,
    tag_spec,
)
from ocpp_console.store import Store
from ocpp_console.store.provisioning import ChargerSpec, ProvisionCounts, TagSpec, TariffSpec


@dataclass(frozen=True)
class ImportReport:
    path: Path
    counts: ProvisionCounts

    def summary(self) -> str:
        c = self.counts
        return (f"{self.path}: {c.chargers_added + c.chargers_updated} chargers ({c.chargers_added} new), "
                f"{c.tags_added + c.tags_updated} id tags ({c.tags_added} new, {c.wallet_movements} balances moved), "
                f"{c.tariffs} tariffs imported")


@dataclass
class _Plan:
    chargers: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # (where, entry)
    tags: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    tariffs: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)  # (where, scope, keys)


async def import_file(store: Store, path: str | Path, *, currency: str) -> ImportReport:
    """Chargers, id tags and tariffs from a TOML (.toml) or CSV (.csv) file: every entry is checked
    first, then all are written in one database transaction, or nothing is."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")  # a spreadsheet's CSV often starts with a BOM
    except (OSError, UnicodeDecodeError) as exc:
        raise ProvisionError(f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}") from None
    suffix = path.suffix.lower()
    if suffix == ".toml":
        plan = _read_toml(text, path.name)
    elif suffix == ".csv":
        plan = _read_csv(text, path.name)
    else:
        raise ProvisionError(f"{path}: an import file ends in .toml or .csv")
    chargers, tags, tariffs = await _check_plan(store, plan, currency)
    try:
        counts = await provision_specs(store, chargers, tags, tariffs, currency=currency, reason=f"import {path.name}")
    except ProvisionError as exc:
        raise ProvisionError(f"{path.name}: {exc}; nothing was imported") from None
    return ImportReport(path, counts)


def _read_toml(text: str, name: str) -> _Plan:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ProvisionError(f"{name}: not valid TOML: {exc}") from None
    unknown = set(data) - {"chargers", "tags", "tariff", "tariffs"}
    if unknown:
        raise ProvisionError(f"{name}: unknown section {sorted(unknown)[0]!r} (chargers, tags, tariff, tariffs)")
    plan = _Plan()
    for section, keys, target in (("chargers", CHARGER_KEYS, plan.chargers), ("tags", TAG_KEYS, plan.tags)):
        entries = data.get(section, [])
        if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
            raise ProvisionError(f"{name}: {section} is a list of tables: [[{section}]]")
        for number, entry in enumerate(entries, 1):
            where = f"{name}: [[{section}]] entry {number}"
            extra = set(entry) - set(keys)
            if extra:
                raise ProvisionError(f"{where}: unknown key {sorted(extra)[0]!r} ({', '.join(keys)})")
            target.append((where, entry))
    if "tariff" in data:
        if not isinstance(data["tariff"], dict):
            raise ProvisionError(f"{name}: tariff is a table: [tariff]")
        plan.tariffs.append((f"{name}: [tariff]", SITE_SCOPE, data["tariff"]))
    per_charger = data.get("tariffs", {})
    if not isinstance(per_charger, dict) or not all(isinstance(t, dict) for t in per_charger.values()):
        raise ProvisionError(f'{name}: tariffs are tables per charger: [tariffs."CP-ID"]')
    for scope, keys in per_charger.items():
        plan.tariffs.append((f'{name}: [tariffs."{scope}"]', scope, keys))
    return plan


def _read_csv(text: str, name: str) -> _Plan:
    reader = csv.DictReader(text.splitlines(keepends=True))
    header = [name.strip() for name in reader.fieldnames or []]
    reader.fieldnames = header
    missing = [c for c in ("kind", "id") if c not in header]
    if missing:
        raise ProvisionError(f"{name}: the header row needs the columns kind and id ({', '.join(CSV_COLUMNS)})")
    unknown = [c for c in header if c not in CSV_COLUMNS]
    if unknown:
        raise ProvisionError(f"{name}: unknown column {unknown[0]!r} ({', '.join(CSV_COLUMNS)})")
    plan = _Plan()
    for row in reader:
        where = f"{name} line {reader.line_num}"
        if None in row:
            raise ProvisionError(f"{where}: more cells than the header has columns")
        cells = {k: v.strip() for k, v in row.items() if v is not None and v.strip()}
        if not cells:
            continue  # a blank line
        kind = cells.pop("kind", "")
        if kind not in CSV_KINDS:
            raise ProvisionError(f"{where}: kind {kind!r}: one of {', '.join(CSV_KINDS)}")
        key = cells.pop("id", "")
        if not key:
            raise ProvisionError(f"{where}: the id column is empty")
        stray = [c for c in cells if c not in CSV_KINDS[kind]]
        if stray:
            raise ProvisionError(f"{where}: {stray[0]} does not apply to a {kind}")
        if kind == "charger":
            plan.chargers.append((where, {"id": key, **cells}))
        elif kind == "tag":
            plan.tags.append((where, {"id_tag": key, **cells}))
        else:
            plan.tariffs.append((where, key, cells))
    return plan


async def _check_plan(
    store: Store, plan: _Plan, currency: str
) -> tuple[list[ChargerSpec], list[TagSpec], list[TariffSpec]]:
    """Every entry checked before any is written; passwords hashed last (scrypt is slow on purpose)."""
    chargers: list[tuple[ChargerSpec, str | None]] = []  # and its password, hashed last
    seen: dict[tuple[str, str], str] = {}

    def once(kind: str, key: str, where: str) -> None:
        if (kind, key) in seen:
            raise ProvisionError(f"{where}: {kind} {key} is already in {seen[kind, key]}")
        seen[kind, key] = where

    for where, entry in plan.chargers:
        try:
            spec = charger_spec(entry.get("id"), entry.get("note"), entry.get("security_profile"),
                                entry.get("max_kw"), entry.get("priority"))
            password = entry.get("password")
            chargers.append((spec, check_charger_password(password) if password is not None else None))
        except ProvisionError as exc:
            raise ProvisionError(f"{where}: {exc}") from None
        once("charger", spec.id, where)
    tags: list[tuple[str, TagSpec]] = []
    for where, entry in plan.tags:
        try:
            tag = tag_spec(entry.get("id_tag"), entry.get("status"), entry.get("expiry"), entry.get("parent"),
                           entry.get("balance"), entry.get("note"), currency, entry.get("priority"))
        except ProvisionError as exc:
            raise ProvisionError(f"{where}: {exc}") from None
        once("id tag", tag.id_tag, where)
        tags.append((where, tag))
    coming = {tag.id_tag for _, tag in tags}
    for where, tag in tags:
        try:
            await check_tag_against_store(store, tag, coming)
        except ProvisionError as exc:
            raise ProvisionError(f"{where}: {exc}") from None
    tariffs: list[TariffSpec] = []
    for where, scope, keys in plan.tariffs:
        try:
            if scope != SITE_SCOPE:
                check_charger_id(scope)
            tariffs.append(TariffSpec(scope, parse_tariff(keys)))
        except ProvisionError as exc:
            raise ProvisionError(f"{where}: {exc}") from None
        once("tariff", scope, where)
    charger_specs = [
        replace(spec, password_hash=await _hash(password)) if password is not None else spec
        for spec, password in chargers
    ]
    return charger_specs, [tag for _, tag in tags], tariffs


