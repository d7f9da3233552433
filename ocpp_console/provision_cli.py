"""Command line of provisioning: `chargers`, `tags`, `tariffs`, `import` (ocpp_console.provision does the work)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from ocpp_console.settings import Settings

# -- provisioning: chargers, id tags, import (ocpp_console.provision does the work) ----------------

PROVISION_COMMANDS = ("chargers", "tags", "tariffs", "import")
# Commands that may create the database: provisioning often comes before the first start.
CREATING_ACTIONS = ("chargers add", "chargers set-password", "tags add", "import")


def _provision_arg(check_name: str) -> Callable[[str], Any]:
    """An argparse type from a provision check: a malformed value is a usage error (exit 2)."""

    def parse(text: str) -> Any:
        from ocpp_console import provision

        try:
            return getattr(provision, check_name)(text)
        except provision.ProvisionError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    parse.__name__ = check_name
    return parse


def add_db_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", type=Path, default=argparse.SUPPRESS, metavar="PATH", help="SQLite database")
    parser.add_argument("--config", type=Path, default=argparse.SUPPRESS, metavar="PATH", help="TOML settings file")


LIVE_NOTE = "Works whether or not the console or serve is running; a running one shows and honours it within a second."


def add_provision_parsers(sub: Any) -> None:
    chargers = sub.add_parser("chargers", help="provision chargers", description="Provision chargers in the database.")
    actions = chargers.add_subparsers(dest="chargers_command", metavar="ACTION", required=True)
    add = actions.add_parser(
        "add", help="add a charger (registration Accepted) or update one",
        description=f"Add a charger, registration Accepted, or update an existing one (values not given stay). "
        f"{LIVE_NOTE}",
    )
    add.add_argument("charger_id", metavar="ID", help="the charge point id, as in ws://host:port/ID")
    add.add_argument("--password", type=_provision_arg("check_charger_password"), default=None,
                     help="its password for HTTP Basic (AuthorizationKey, 16-40 characters), stored hashed")
    add.add_argument("--security-profile", type=_provision_arg("check_security_profile"), default=None, metavar="N",
                     dest="profile",  # not the setting security_profile (the listener minimum)
                     help="the lowest security profile (0-3) it is let in with, whatever the listener allows; "
                     "lower it to let back in a charger whose profile was raised beyond what it can do")
    add.add_argument("--max-kw", type=_provision_arg("check_max_kw"), default=None, metavar="KW",
                     help="the most it (or its cable) can give, e.g. 11: load management never gives its sessions "
                     "more (default: the setting charger_max_kw; \"\" clears it)")
    add.add_argument("--priority", type=_provision_arg("parse_priority"), default=None, metavar="N",
                     help="its sessions' priority under load_policy = \"priority\", -100 to 100, higher first "
                     "(default 0; a tag's own priority wins; \"\" clears it)")
    add.add_argument("--note", default=None, help="a note for the operator (\"\" clears it)")
    add_db_arguments(add)
    listing = actions.add_parser("list", help="list the chargers", description="List the chargers in the database.")
    listing.add_argument("--json", action="store_true", help="a JSON list of objects instead of a table")
    add_db_arguments(listing)
    remove = actions.add_parser(
        "remove", help="remove a charger (its transactions, meter values and message log are kept)",
        description="Remove a charger with its connectors, configuration and charging profiles. Its transactions, "
        "meter values, status history and message log are kept for the record. A connected charger is "
        f"disconnected and treated as a new one if it comes back. {LIVE_NOTE}",
    )
    remove.add_argument("charger_id", metavar="ID")
    add_db_arguments(remove)
    set_password = actions.add_parser(
        "set-password", help="set a charger's password (HTTP Basic, security profiles 1-2)",
        description="Store a charger's password (its AuthorizationKey, 16-40 characters) as a salted hash. "
        "A charger not yet known is added, registration Accepted. Works whether or not the console is running.",
    )
    set_password.add_argument("charger_id", metavar="ID")
    set_password.add_argument("--password", default=None, help="the password (default: asked for, not echoed)")
    add_db_arguments(set_password)

    tags = sub.add_parser("tags", help="provision id tags", description="Provision id tags (RFID cards, apps) "
                          "and their wallets in the database.")
    actions = tags.add_subparsers(dest="tags_command", metavar="ACTION", required=True)
    add = actions.add_parser(
        "add", help="add an id tag or update one",
        description=f"Add an id tag (status Accepted unless given) or update the values given. {LIVE_NOTE}",
    )
    add.add_argument("id_tag", metavar="TAG", help="the idTag, at most 20 characters")
    add.add_argument("--status", type=_provision_arg("parse_status"), default=None,
                     help="Accepted, Blocked, Expired or Invalid (default: Accepted for a new tag)")
    add.add_argument("--expiry", type=_provision_arg("parse_expiry"), default=None, metavar="DATE",
                     help="2026-12-31 (valid through that day, local time) or 2026-12-31T18:00 (local unless a "
                     "zone is given); \"\" clears it")
    add.add_argument("--parent", default=None, metavar="TAG",
                     help="the parent (fleet) tag, which must exist; the tag then spends its wallet; \"\" clears it")
    add.add_argument("--balance", type=_provision_arg("check_amount"), default=None, metavar="AMOUNT",
                     help="set the wallet to this amount in the site currency, e.g. 25.00 (a ledger movement "
                     "of the difference)")
    add.add_argument("--priority", type=_provision_arg("parse_priority"), default=None, metavar="N",
                     help="its sessions' priority under load_policy = \"priority\", -100 to 100, higher first "
                     "(default: the charger's; \"\" clears it)")
    add.add_argument("--note", default=None, help="a note for the operator (\"\" clears it)")
    add_db_arguments(add)
    listing = actions.add_parser("list", help="list the id tags", description="List the id tags and their wallets.")
    listing.add_argument("--json", action="store_true", help="a JSON list of objects instead of a table")
    add_db_arguments(listing)
    remove = actions.add_parser(
        "remove", help="remove an id tag (its transactions and ledger are kept)",
        description="Remove an id tag; refused while its wallet holds money, it is another tag's parent or it has "
        f"a session running (block it instead). Its transactions and ledger rows are kept. {LIVE_NOTE}",
    )
    remove.add_argument("id_tag", metavar="TAG")
    add_db_arguments(remove)

    imports = sub.add_parser(
        "import", help="provision chargers, id tags and tariffs from a TOML or CSV file",
        description="Provision chargers, id tags and tariffs from FILE.toml ([[chargers]], [[tags]], [tariff], "
        "[tariffs.\"CP-ID\"]) or FILE.csv (a kind column: charger, tag or tariff); see README, Provisioning. "
        f"Every entry is checked first; then all are written in one transaction, or none. {LIVE_NOTE}",
    )
    imports.add_argument("file", type=Path, metavar="FILE", help="a .toml or .csv file")
    add_db_arguments(imports)

    tariffs = sub.add_parser("tariffs", help="show the tariffs in force",
                             description="Show the tariffs billing applies: the site's, and every charger's own.")
    actions = tariffs.add_subparsers(dest="tariffs_command", metavar="ACTION", required=True)
    listing = actions.add_parser(
        "list", help="the site's tariff and every charger's own, with where the values come from",
        description="The tariff of the site and of every charger that has its own, as billing applies them: "
        "stored (imported) values over settings (flags, environment, TOML), a charger's over the site's. While "
        "the console or serve runs on the database, the settings are that instance's (recorded at its start), "
        "not this shell's; stderr says whose.",
    )
    listing.add_argument("--json", action="store_true", help="a JSON list of objects instead of a table")
    add_db_arguments(listing)


def provision_action(args: argparse.Namespace) -> str:
    if args.command == "import":
        return "import"
    return f"{args.command} {getattr(args, f'{args.command}_command')}"


async def run_provision(settings: Settings, args: argparse.Namespace, password: str | None = None) -> int:
    """Exit 0 done, 1 refused (bad input in a file, unknown id, the database), 2 a bad command line.
    `password`: for set-password, asked before the event loop runs (see main)."""
    import sqlite3

    from ocpp_console.provision import ProvisionError, parse_amount
    from ocpp_console.store import Store, StoreError

    action = provision_action(args)
    if action not in CREATING_ACTIONS and not settings.db.exists():
        print(f"ocpp-console: no database at {settings.db}", file=sys.stderr)
        return 1
    if action == "chargers set-password" and password is None:
        return 2
    if action == "tags add" and args.balance is not None:
        try:  # the currency's decimals: known only now, still a malformed command line
            parse_amount(args.balance, settings.currency)
        except ProvisionError as exc:
            print(f"ocpp-console tags add: error: argument --balance: {exc}", file=sys.stderr)
            return 2
    try:
        store = await Store(settings.db).open()
    except (StoreError, sqlite3.Error) as exc:
        print(f"ocpp-console: database {settings.db}: {exc}", file=sys.stderr)
        return 1
    try:
        if password is not None:
            return await _set_password(store, args, password)
        return await PROVISION_ACTIONS[action](store, settings, args)
    except ProvisionError as exc:
        print(f"ocpp-console: {exc}", file=sys.stderr)
        return 1
    except (StoreError, sqlite3.Error) as exc:
        print(f"ocpp-console: database {settings.db}: {exc}", file=sys.stderr)
        return 1
    finally:
        await store.close()


def ask_password(args: argparse.Namespace) -> str | None:
    """The password from --password or the terminal; None (after saying why) if it breaks the rules."""
    import getpass

    from ocpp_console.provision import ProvisionError, check_charger_password

    password = args.password if args.password is not None else getpass.getpass(f"password for {args.charger_id}: ")
    try:
        return check_charger_password(password)
    except ProvisionError as exc:
        print(f"ocpp-console: {exc}", file=sys.stderr)
        return None


async def _set_password(store: Any, args: argparse.Namespace, password: str) -> int:
    from ocpp_console import provision

    await provision.set_password(store, args.charger_id, password)
    print(f"password of {args.charger_id} set", file=sys.stderr)
    return 0


async def _chargers_add(store: Any, settings: Settings, args: argparse.Namespace) -> int:
    from ocpp_console import provision

    info = await provision.add_charger(store, args.charger_id, args.password, args.note, args.profile,
                                       max_kw=args.max_kw, priority=args.priority)
    print(f"charger {info.id}: {info.registration}, password {'set' if info.password else 'none'}, "
          f"security profile {info.security_profile}, maximum {_max_kw(info.max_kw, settings)}, "
          f"priority {info.priority or 0}", file=sys.stderr)
    return 0


async def _chargers_list(store: Any, settings: Settings, args: argparse.Namespace) -> int:
    from ocpp_console import provision

    chargers = await provision.list_chargers(store)
    if args.json:
        print(json.dumps([c.to_json() for c in chargers], indent=2))
        return 0
    rows = [
        (c.id, c.registration, "yes" if c.password else "no", str(c.security_profile), _max_kw(c.max_kw, settings),
         _number(c.priority), "yes" if c.connected else "no", " ".join(p for p in (c.vendor, c.model) if p) or "-",
         _local_time(c.last_seen) or "never", c.note or "")
        for c in chargers
    ]
    sys.stdout.write(_table(
        ("ID", "REGISTRATION", "PASSWORD", "PROFILE", "MAX KW", "PRIORITY", "CONNECTED", "VENDOR/MODEL", "LAST SEEN",
         "NOTE"), rows, right=(4, 5),
    ))
    return 0


async def _chargers_remove(store: Any, settings: Settings, args: argparse.Namespace) -> int:
    from ocpp_console import provision

    await provision.remove_charger(store, args.charger_id)
    print(f"charger {args.charger_id} removed; its transactions, meter values and message log are kept",
          file=sys.stderr)
    return 0


async def _tags_add(store: Any, settings: Settings, args: argparse.Namespace) -> int:
    from ocpp_console import provision
    from ocpp_console.csms.billing import format_money, to_minor

    tag = await provision.add_or_update_tag(
        store, args.id_tag, args.status, args.expiry, args.parent, args.balance, args.note, currency=settings.currency,
        priority=args.priority,
    )
    balance = format_money(to_minor(tag.balance, tag.currency), tag.currency)
    priority = "the charger's" if tag.priority is None else str(tag.priority)
    print(f"id tag {tag.id_tag}: {tag.status}, balance {balance}, priority {priority}", file=sys.stderr)
    return 0


async def _tags_list(store: Any, settings: Settings, args: argparse.Namespace) -> int:
    from ocpp_console import provision

    tags = await provision.list_tags(store, settings.currency)
    if args.json:
        print(json.dumps([t.to_json() for t in tags], indent=2))
        return 0
    rows = [
        (t.id_tag, t.status, _local_time(t.expiry) or "-", t.parent or "-", f"{t.balance} {t.currency}",
         _number(t.priority), t.note or "")
        for t in tags
    ]
    sys.stdout.write(_table(("ID TAG", "STATUS", "EXPIRY", "PARENT", "BALANCE", "PRIORITY", "NOTE"), rows,
                            right=(4, 5)))
    return 0


async def _tags_remove(store: Any, settings: Settings, args: argparse.Namespace) -> int:
    from ocpp_console import provision

    await provision.remove_tag(store, args.id_tag)
    print(f"id tag {args.id_tag} removed; its transactions and ledger are kept", file=sys.stderr)
    return 0


async def _import(store: Any, settings: Settings, args: argparse.Namespace) -> int:
    from ocpp_console import provision

    report = await provision.import_file(store, args.file, currency=settings.currency)
    print(report.summary(), file=sys.stderr)
    return 0


async def _tariffs_list(store: Any, settings: Settings, args: argparse.Namespace) -> int:
    from ocpp_console import provision

    tariffs = await provision.billing_view(store, settings)
    if args.json:
        print(json.dumps(tariffs, indent=2))
        return 0
    site = tariffs[0]
    instance = site["instance"]
    whose = (f"the running instance (pid {instance['pid']} on {instance['host']}, started {instance['started_at']})"
             if instance else f"this shell's settings (no instance is running on {settings.db})")
    print(f"billing of {whose}; min balance {site['min_balance']} {site['currency']}, wallets "
          f"{'checked' if site['wallet'] else 'not checked'}, stop on empty wallet "
          f"{'on' if site['stop_on_empty_wallet'] else 'off'}", file=sys.stderr)
    rows = [
        ("site" if t["scope"] == "*" else t["scope"], t["currency"], t["price_per_kwh"], t["price_per_minute"],
         t["idle_price_per_minute"], t["idle_grace_minutes"], t["session_fee"], t["tou_windows"] or "-",
         t["timezone"] or "local", t["source"])
        for t in tariffs
    ]
    headers = ("SCOPE", "CUR", "PER KWH", "PER MIN", "IDLE/MIN", "GRACE MIN", "SESSION FEE", "TIME OF USE", "ZONE",
               "FROM")
    sys.stdout.write(_table(headers, rows, right=(2, 3, 4, 5, 6)))
    return 0


PROVISION_ACTIONS: dict[str, Callable[[Any, Settings, argparse.Namespace], Awaitable[int]]] = {
    "chargers add": _chargers_add,
    "chargers list": _chargers_list,
    "chargers remove": _chargers_remove,
    "tags add": _tags_add,
    "tags list": _tags_list,
    "tags remove": _tags_remove,
    "tariffs list": _tariffs_list,
    "import": _import,
}


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], right: Sequence[int] = ()) -> str:
    widths = [max(len(str(r[i])) for r in (headers, *rows)) for i in range(len(headers))]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    return "".join(line(r) + "\n" for r in (headers, *rows))


def _max_kw(max_kw: float | None, settings: Settings) -> str:
    """A charger's provisioned maximum; else the setting's, marked so ("22 (setting)")."""
    if max_kw is None:
        return f"{settings.charger_max_kw:g} (setting)"
    return f"{max_kw:g}"


def _number(value: int | None) -> str:
    return "-" if value is None else str(value)


def _local_time(value: str | None) -> str | None:
    """Stored UTC shown in this machine's time, to the minute."""
    from datetime import datetime

    if not value:
        return None
    try:
        return datetime.fromisoformat(value).astimezone().strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return value
