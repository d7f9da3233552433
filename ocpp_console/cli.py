"""Command line: `ocpp-console` (the console), `serve` (headless), `simulate` (simulated chargers)."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
from datetime import date
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

from pydantic import ValidationError

from ocpp_console import __version__
from ocpp_console.runtime import settle_heap
from ocpp_console.settings import Settings, default_config_path, load_settings

log = logging.getLogger("ocpp_console")


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def add_settings_arguments(parser: argparse.ArgumentParser) -> None:
    """One flag per setting; unset flags stay out of the namespace so env and TOML still apply."""
    group = parser.add_argument_group("settings (also OCPP_CONSOLE_<NAME> or the TOML config file)")
    group.add_argument(
        "--config", type=Path, default=argparse.SUPPRESS, metavar="PATH",
        help=f"TOML settings file (default: {default_config_path()})",
    )
    for name, field in Settings.model_fields.items():
        annotation = field.annotation
        kwargs: dict[str, Any] = {"default": argparse.SUPPRESS, "dest": name}
        if get_origin(annotation) is Literal:
            kwargs["choices"] = list(get_args(annotation))
        elif annotation is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        elif get_origin(annotation) is dict:
            kwargs["type"] = _json_object
            kwargs["metavar"] = "JSON"
        elif annotation in (int, float):
            kwargs["type"] = annotation
        elif annotation is Path or Path in get_args(annotation):
            kwargs["type"] = Path
            kwargs["metavar"] = "PATH"
        default = field.get_default(call_default_factory=True)
        env = f"OCPP_CONSOLE_{name.upper()}"
        kwargs["help"] = f"{field.description} (default: {default}; env {env})"
        group.add_argument(_flag(name), **kwargs)


def add_demo_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("demo")
    group.add_argument(
        "--demo", action="store_true", default=argparse.SUPPRESS,
        help="also run simulated chargers in this process (own database demo.sqlite unless --db is given)",
    )
    group.add_argument(
        "--demo-chargers", type=int, default=argparse.SUPPRESS, metavar="N",
        help="how many simulated chargers the demo runs (default: 4)",
    )


def _json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not JSON: {text!r}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("expected a JSON object")
    return value


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


async def run_set_password(settings: Settings, args: argparse.Namespace) -> int:
    import getpass

    from ocpp_console.csms.security import PasswordError, check_password, hash_password
    from ocpp_console.store import Store

    password = args.password if args.password is not None else getpass.getpass(f"password for {args.charger_id}: ")
    try:
        check_password(password)
    except PasswordError as exc:
        print(f"ocpp-console: {exc}", file=sys.stderr)
        return 2
    store = await Store(settings.db).open()
    try:
        await store.set_password(args.charger_id, hash_password(password))
    finally:
        await store.close()
    print(f"password of {args.charger_id} set", file=sys.stderr)
    return 0


async def run_export(settings: Settings, args: argparse.Namespace) -> int:
    from ocpp_console.export import export_to_text
    from ocpp_console.store import Store

    if not settings.db.exists():
        print(f"ocpp-console export: no database at {settings.db}", file=sys.stderr)
        return 1
    store = await Store(settings.db).open()
    try:
        text, count = await export_to_text(store, args.what, args.first, args.last, settings.currency)
    finally:
        await store.close()
    if str(args.out) == "-":
        sys.stdout.write(text)
    else:
        args.out.write_text(text, encoding="utf-8", newline="")
        print(f"{count} {args.what} rows written to {args.out}", file=sys.stderr)
    return 0


def add_call_parser(sub: Any) -> None:
    from ocpp_console.csms.operations import OPERATIONS

    parser = sub.add_parser(
        "call", help="send one OCPP operation to a charger through the running instance's HTTP API",
        description="Send one OCPP 1.6 operation to a connected charger through the HTTP API of the "
        "running console or serve (started with --api-port), and print the charger's answer as JSON. "
        f"Operations: {', '.join(OPERATIONS)}.",
    )
    parser.add_argument("charger_id", metavar="ID", help="the charger")
    parser.add_argument("action", metavar="ACTION", help="the operation, e.g. reset or RemoteStartTransaction")
    parser.add_argument("--json", dest="payload", type=_json_object, default={}, metavar="JSON",
                        help="the OCPP payload, e.g. '{\"type\": \"Soft\"}' (default: {})")
    parser.add_argument("--url", default=None, help="the API's base URL (default: from --api-host/--api-port)")
    parser.add_argument("--timeout", type=float, default=None, metavar="S",
                        help="seconds to wait (default: the call timeout setting plus 5)")
    for name in ("api_port", "api_host", "api_token", "call_timeout"):
        field = Settings.model_fields[name]
        parser.add_argument(_flag(name), dest=name, default=argparse.SUPPRESS,
                            type=int if name == "api_port" else float if name == "call_timeout" else str,
                            help=f"{field.description} (env OCPP_CONSOLE_{name.upper()})")
    parser.add_argument("--config", type=Path, default=argparse.SUPPRESS, metavar="PATH", help="TOML settings file")


def run_call(settings: Settings, args: argparse.Namespace) -> int:
    from ocpp_console.api.client import CallError, api_url, call

    token = settings.api_token.get_secret_value() if settings.api_token else None
    try:
        base = args.url or api_url(settings)
        answer = call(base, token, args.charger_id, args.action, args.payload,
                      args.timeout or settings.call_timeout + 5)
    except CallError as exc:
        print(f"ocpp-console call: {exc}", file=sys.stderr)
        return 2
    if answer.status == 200:
        print(json.dumps(answer.body, indent=2))
        return 0
    body = answer.body if isinstance(answer.body, dict) else {"message": str(answer.body)}
    code = f" {body['code']}" if body.get("code") else ""
    print(f"ocpp-console call: {answer.status} {body.get('error', 'error')}{code}: {body.get('message', '')}",
          file=sys.stderr)
    return 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ocpp-console",
        description="An OCPP 1.6J central system with a terminal console. Chargers connect to "
        "ws://HOST:PORT/<chargePointId> with the subprotocol ocpp1.6.",
    )
    parser.add_argument("--version", action="version", version=f"ocpp-console {__version__}")
    add_settings_arguments(parser)
    add_demo_arguments(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    serve = sub.add_parser("serve", help="run the central system headless", description="Run the central system "
                           "headless; logs connection events to stderr; stops cleanly on SIGINT/SIGTERM.")
    add_settings_arguments(serve)
    add_demo_arguments(serve)
    from ocpp_console.sim.cli import add_simulate_arguments

    simulate = sub.add_parser(
        "simulate", help="run simulated chargers against an OCPP 1.6J central system",
        description="Run N simulated OCPP 1.6J chargers against any central system (ours or another).",
    )
    add_simulate_arguments(simulate)
    chargers = sub.add_parser("chargers", help="provision chargers", description="Provision chargers in the database.")
    chargers_sub = chargers.add_subparsers(dest="chargers_command", metavar="ACTION", required=True)
    set_password = chargers_sub.add_parser(
        "set-password", help="set a charger's password (HTTP Basic, security profiles 1-2)",
        description="Store a charger's password (its AuthorizationKey, 16-40 characters) as a salted hash. "
        "Works whether or not the console is running.",
    )
    set_password.add_argument("charger_id", metavar="ID")
    set_password.add_argument("--password", default=None, help="the password (default: asked for, not echoed)")
    set_password.add_argument("--db", type=Path, default=argparse.SUPPRESS, metavar="PATH", help="SQLite database")
    set_password.add_argument("--config", type=Path, default=argparse.SUPPRESS, metavar="PATH", help="TOML settings")
    add_call_parser(sub)
    export = sub.add_parser(
        "export", help="write orders or wallet movements as CSV",
        description="Write finished transactions (orders) or wallet movements (ledger) as CSV with a header row.",
    )
    export.add_argument("what", choices=["orders", "ledger"], help="orders: one row per finished transaction")
    export.add_argument("--db", type=Path, default=argparse.SUPPRESS, metavar="PATH", help="SQLite database")
    export.add_argument("--config", type=Path, default=argparse.SUPPRESS, metavar="PATH", help="TOML settings file")
    export.add_argument("--from", dest="first", type=_date, default=None, metavar="YYYY-MM-DD",
                        help="first day (local time), by the stop time")
    export.add_argument("--to", dest="last", type=_date, default=None, metavar="YYYY-MM-DD",
                        help="last day (local time), included")
    export.add_argument("--out", type=Path, required=True, metavar="FILE.csv", help="output file, - for stdout")
    return parser


def settings_from_args(args: argparse.Namespace) -> Settings:
    overrides = {name: getattr(args, name) for name in Settings.model_fields if hasattr(args, name)}
    if getattr(args, "demo", False) and "db" not in overrides:
        from ocpp_console.demo import demo_db_path

        overrides["db"] = demo_db_path()  # never mix simulated chargers into a real site's data
    return load_settings(getattr(args, "config", None), **overrides)


def setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level),
        format="%(asctime)s %(levelname)-7s %(message)s",
        datefmt="%Y-%m-%d %H:%M:%S",
        stream=sys.stderr,
    )
    # The ocpp package logs every frame at INFO, secrets included; the message log keeps frames.
    logging.getLogger("ocpp").setLevel(logging.WARNING)
    if level != "DEBUG":
        logging.getLogger("ocpp_console.websockets").setLevel(logging.WARNING)


async def run_serve(settings: Settings, demo_chargers: int = 0) -> int:
    from ocpp_console.csms import CentralSystem

    csms = CentralSystem(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await csms.start()
    api = None
    if settings.api_port is not None:
        from ocpp_console.api import ApiServer

        api = ApiServer(csms)
        try:
            await api.start()
        except OSError:
            await csms.stop()
            raise
    settle_heap()
    demo: asyncio.Task[None] | None = None
    if demo_chargers:
        from ocpp_console.demo import run_demo_chargers

        demo = asyncio.create_task(run_demo_chargers(csms, stop, demo_chargers))
    try:
        await stop.wait()
        log.info("signal received, shutting down")
        if demo is not None:
            # The simulated chargers end their sessions (StopTransaction) before we close.
            await asyncio.wait_for(demo, 15)
    finally:
        if api is not None:
            await api.stop()
        await csms.stop()
    return 0


def run_console(settings: Settings, demo_chargers: int = 0) -> int:
    from ocpp_console.csms import CentralSystem
    from ocpp_console.ui.app import ConsoleApp

    background = []
    if demo_chargers:
        from ocpp_console.demo import run_demo_chargers

        background.append(lambda csms, stop: run_demo_chargers(csms, stop, demo_chargers))
    csms = CentralSystem(settings)
    services = []
    if settings.api_port is not None:
        from ocpp_console.api import ApiServer

        services.append(ApiServer(csms))
    app = ConsoleApp(csms, background=background, services=services)
    app.run()
    return app.return_code or 0


def log_to_file(level: str) -> Path:
    """The console owns the terminal: logs go to a file instead of stderr."""
    import platformdirs

    path = Path(platformdirs.user_log_dir("ocpp-console")) / "ocpp-console.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    logging.basicConfig(
        level=getattr(logging, level),
        format="%(asctime)s %(levelname)-7s %(message)s",
        filename=path,
    )
    logging.getLogger("ocpp").setLevel(logging.WARNING)
    logging.getLogger("ocpp_console.websockets").setLevel(logging.WARNING)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = settings_from_args(args)
    except ValidationError as exc:
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"])
            print(f"ocpp-console: setting {where}: {err['msg']}", file=sys.stderr)
        return 2
    command = args.command or "console"
    if command == "simulate":
        from ocpp_console.sim.cli import run_simulate

        # One line per charger event (connected, booted, session) on stderr; summaries on stdout.
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)-7s %(message)s", stream=sys.stderr)
        logging.getLogger("ocpp").setLevel(logging.ERROR)
        logging.getLogger("websockets").setLevel(logging.WARNING)
        return asyncio.run(run_simulate(args))
    demo_chargers = getattr(args, "demo_chargers", 4) if getattr(args, "demo", False) else 0
    try:
        if command == "console":
            log_to_file(settings.log_level)
            return run_console(settings, demo_chargers)
        setup_logging(settings.log_level)
        if command == "call":
            return run_call(settings, args)
        if command == "export":
            return asyncio.run(run_export(settings, args))
        if command == "chargers":
            return asyncio.run(run_set_password(settings, args))
        if command == "serve":
            return asyncio.run(run_serve(settings, demo_chargers))
    except OSError as exc:
        print(f"ocpp-console: {exc}", file=sys.stderr)
        return 1
    parser.error(f"unknown command {command}")
    return 2


