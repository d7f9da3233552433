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
from typing import Any, Literal, NoReturn, get_args, get_origin

from pydantic import ValidationError

from ocpp_console import __version__
from ocpp_console.attach import add_attach_parser, run_attach
from ocpp_console.provision_cli import (
    PROVISION_COMMANDS,
    add_db_arguments,
    add_provision_parsers,
    ask_password,
    provision_action,
    run_provision,
)
from ocpp_console.runtime import SERVICE_GC_THRESHOLDS, settle_heap
from ocpp_console.settings import Settings, default_config_path, default_db_path, load_settings

log = logging.getLogger("ocpp_console")


class Parser(argparse.ArgumentParser):
    """A malformed command line is one line on stderr and exit code 2 (argparse's code), naming
    the command and where its help is, rather than the usage block and then the error."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


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
        help="also run simulated chargers in this process, with a sample tariff and funded wallets (own "
        "database demo.sqlite, made afresh on every run, unless --db is given)",
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
    # The running instance's API, read from the same flags, environment and TOML file it was given.
    for name, kind, text in (
        ("api_port", int, "the port the running instance serves its API on"),
        ("api_host", str, "the address it listens on (default 127.0.0.1; 0.0.0.0 is reached on loopback)"),
        ("api_token", str, "its bearer token (default: the token file beside the database)"),
        ("call_timeout", float, "its call timeout, seconds (this waits 5 s longer)"),
        ("db", Path, "its database: the API token file is read from the same directory"),
    ):
        parser.add_argument(_flag(name), dest=name, default=argparse.SUPPRESS, type=kind,
                            help=f"{text} (env OCPP_CONSOLE_{name.upper()})")
    parser.add_argument("--config", type=Path, default=argparse.SUPPRESS, metavar="PATH", help="TOML settings file")


def run_call(settings: Settings, args: argparse.Namespace) -> int:
    from ocpp_console.api.client import CallError, api_url, call
    from ocpp_console.api.token import client_token

    token = client_token(settings)
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


# -- the operator CA (csms/ca.py): `ca show`, `ca server-cert` ----------------------------------------


def add_ca_parser(sub: Any) -> None:
    ca = sub.add_parser(
        "ca", help="the operator CA that signs charger certificates",
        description="The operator CA signs the certificates chargers ask for (SignCertificate, security profile 3): "
        "the site's own (--ca-cert/--ca-key) or the built-in one, made on first use in <database dir>/ca/.",
    )
    actions = ca.add_subparsers(dest="ca_command", metavar="ACTION", required=True)
    show = actions.add_parser("show", help="where the CA's files are, its subject, validity and fingerprint, its PEM")
    show.add_argument("--pem", action="store_true", help="print only the CA certificate (PEM)")
    add_db_arguments(show)
    server = actions.add_parser(
        "server-cert", help="write a server certificate and key signed by the CA, for --tls-cert/--tls-key",
        description="Write a server certificate (chain) and its key, signed by the operator CA, so that the "
        "central system serves wss:// to chargers that trust the CA (install it on them with InstallCertificate).",
    )
    server.add_argument("--host", dest="hosts", action="append", required=True, metavar="NAME",
                        help="a DNS name or IP address chargers use to reach this server (repeat for more)")
    server.add_argument("--cert", type=Path, default=None, metavar="PATH",
                        help="certificate file (default <database dir>/tls/server.pem)")
    server.add_argument("--key", type=Path, default=None, metavar="PATH",
                        help="key file, written mode 0600 (default <database dir>/tls/server.key)")
    server.add_argument("--force", action="store_true", help="replace files that exist")
    add_db_arguments(server)


def run_ca(settings: Settings, args: argparse.Namespace) -> int:
    """0 done; 1 the CA cannot be read or made, or a file exists (without --force)."""
    from ocpp_console.csms.ca import KEY_FILE, CAError, OperatorCA
    from ocpp_console.private_files import write_new_private

    try:
        ca = OperatorCA.load_or_create(settings)
    except (CAError, OSError) as exc:
        print(f"ocpp-console ca: {exc}", file=sys.stderr)
        return 1
    if args.ca_command == "show":
        if args.pem:
            print(ca.certificate_pem, end="")
            return 0
        key = ca.cert_path.with_name(KEY_FILE) if ca.builtin else settings.ca_key
        org = settings.tls_client_org
        source = "built-in" if ca.builtin else "the site's own (ca_cert, ca_key)"
        print(f"operator CA:  {source}")
        print(f"certificate:  {ca.cert_path}")
        print(f"key:          {key}")
        print(f"subject:      {ca.certificate.subject.rfc4514_string()}")
        print(f"valid until:  {ca.certificate.not_valid_after_utc:%Y-%m-%d %H:%M} UTC")
        print(f"SHA-256:      {ca.fingerprint}")
        print(f"CSRs need:    CN = the charger id, O = {org!r} (tls_client_org)" if org else
              "CSRs need:    CN = the charger id, one O (any: tls_client_org is not set)")
        print(f"certificates: valid {settings.certificate_days} days (certificate_days)")
        print(ca.certificate_pem, end="")
        return 0
    tls_dir = settings.db.expanduser().resolve().parent / "tls"
    cert_path, key_path = args.cert or tls_dir / "server.pem", args.key or tls_dir / "server.key"
    existing = [p for p in (cert_path, key_path) if p.exists()]
    if existing and not args.force:
        print(f"ocpp-console ca: {existing[0]} exists (--force replaces it)", file=sys.stderr)
        return 1
    try:
        chain, key_pem = ca.issue_server_certificate(args.hosts)
        for path in (cert_path, key_path):
            path.parent.mkdir(parents=True, exist_ok=True)
        key_path.unlink(missing_ok=True)
        write_new_private(key_path, key_pem)
        cert_path.write_text(chain)
    except (OSError, ValueError) as exc:
        print(f"ocpp-console ca: {exc}", file=sys.stderr)
        return 1
    print(f"server certificate for {', '.join(args.hosts)} signed by {ca.certificate.subject.rfc4514_string()}")
    print(f"  --tls-cert {cert_path} --tls-key {key_path}")
    return 0


# -- the firmware library (files/library.py): `firmware add`, `firmware list` --------------------------


def add_firmware_parser(sub: Any) -> None:
    firmware = sub.add_parser(
        "firmware", help="the firmware library chargers download images from",
        description="Images the central system serves to chargers (UpdateFirmware with --files-port or "
        "--ftp-port), kept in <files dir>/firmware with their size and SHA-256.",
    )
    actions = firmware.add_subparsers(dest="firmware_command", metavar="ACTION", required=True)
    add = actions.add_parser("add", help="copy an image into the library")
    add.add_argument("file", type=Path, metavar="FILE", help="the image")
    add.add_argument("--name", default=None, metavar="N", help="its name in the library (default: the file's name)")
    add_db_arguments(add)
    add_db_arguments(actions.add_parser("list", help="the images: name, size, SHA-256, when added"))


async def run_firmware(settings: Settings, args: argparse.Namespace) -> int:
    """0 done; 1 the image cannot be read or copied."""
    from ocpp_console.files.library import LibraryError, add_image
    from ocpp_console.store import Store

    store = await Store(settings.db).open()
    try:
        if args.firmware_command == "add":
            try:
                row = await add_image(store, settings.files_path / "firmware", args.file, args.name)
            except LibraryError as exc:
                print(f"ocpp-console firmware: {exc}", file=sys.stderr)
                return 1
            print(f"{row['name']}: {row['size']} bytes, SHA-256 {row['sha256']}")
            return 0
        rows = await store.firmware_images()
        if not rows:
            print("no firmware images (ocpp-console firmware add FILE)", file=sys.stderr)
        for row in rows:
            print(f"{row['name']}\t{row['size']}\t{row['sha256']}\t{row['added_at']}")
        return 0
    finally:
        await store.close()


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
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
    add_provision_parsers(sub)
    add_call_parser(sub)
    add_attach_parser(sub, _flag)
    add_ca_parser(sub)
    add_firmware_parser(sub)
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
    backup = sub.add_parser(
        "backup", help="copy the database, also while the central system runs",
        description="Write a consistent copy of the database to FILE with SQLite's online backup API: safe "
        "while the console or serve writes to it. An existing FILE is kept unless --force.",
    )
    backup.add_argument("file", type=Path, metavar="FILE", help="the copy to write")
    backup.add_argument("--force", action="store_true", help="overwrite FILE if it exists")
    backup.add_argument("--db", type=Path, default=argparse.SUPPRESS, metavar="PATH", help="SQLite database")
    backup.add_argument("--config", type=Path, default=argparse.SUPPRESS, metavar="PATH", help="TOML settings file")
    return parser


def run_backup(settings: Settings, args: argparse.Namespace) -> int:
    from ocpp_console.store.backup import BackupError, backup

    try:
        pages = backup(settings.db, args.file, args.force)
    except BackupError as exc:
        print(f"ocpp-console backup: {exc}", file=sys.stderr)
        return 1
    size = args.file.stat().st_size
    print(f"{settings.db} copied to {args.file} ({pages} pages, {size / 1e6:.1f} MB)", file=sys.stderr)
    return 0


def settings_from_args(args: argparse.Namespace) -> Settings:
    overrides = {name: getattr(args, name) for name in Settings.model_fields if hasattr(args, name)}
    demo = getattr(args, "demo", False)
    if demo and "db" not in overrides:
        from ocpp_console.demo import demo_db_path

        overrides["db"] = demo_db_path()  # never mix simulated chargers into a real site's data
    settings = load_settings(getattr(args, "config", None), **overrides)
    if demo:
        from ocpp_console.demo import with_demo_tariff

        settings = with_demo_tariff(settings)
    return settings


def fresh_demo_database(settings: Settings, args: argparse.Namespace) -> str | None:
    """The demo's own database starts empty on every run (an explicit --db is kept as it is);
    a problem (another demo runs on it) as one line, else None."""
    if not getattr(args, "demo", False) or hasattr(args, "db"):
        return None
    from ocpp_console.demo import fresh_database

    other = asyncio.run(fresh_database(settings.db))
    if other is None:
        return None
    return (f"another demo runs on {settings.db} ({other.describe()}): stop it, or give this one its own "
            f"database with --db PATH")


def _missing_db_folder(settings: Settings, args: argparse.Namespace) -> str | None:
    """A database asked for by name (--db, OCPP_CONSOLE_DB, TOML) in a folder that does not exist is
    most likely a typo: refused rather than made, so a site never runs on an empty new database
    by mistake. The default location (and the demo's) is made when needed."""
    if "db" not in settings.model_fields_set or (getattr(args, "demo", False) and not hasattr(args, "db")):
        return None
    folder = settings.db.parent
    if folder.is_dir():
        return None
    return (f"the database folder {folder} does not exist: create it first, or leave out --db for the default "
            f"location ({default_db_path()})")


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
    else:
        log.info("no HTTP API (nor event stream): give --api-port to serve one")
    settle_heap(SERVICE_GC_THRESHOLDS)
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
    app = console_app(settings, demo_chargers)
    app.run()
    return app.return_code or 0


def console_app(settings: Settings, demo_chargers: int = 0) -> Any:
    """The console as `ocpp-console [--demo]` runs it (a ConsoleApp)."""
    from ocpp_console.csms import CentralSystem
    from ocpp_console.site.local import LocalSite
    from ocpp_console.ui.app import ConsoleApp

    csms = CentralSystem(settings, frames_direct=False)  # the console draws between the reader's steps
    background = []
    if demo_chargers:
        from ocpp_console.demo import run_demo_chargers

        background.append(lambda _site, stop: run_demo_chargers(csms, stop, demo_chargers))
    services = []
    if settings.api_port is not None:
        from ocpp_console.api import ApiServer

        services.append(ApiServer(csms))
    app = ConsoleApp(LocalSite(csms), background=background, services=services)
    if demo_chargers:
        from ocpp_console.demo import title

        app.title = title()  # the simulated speed, in the header
    return app


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
    try:
        return _main(argv)
    except KeyboardInterrupt:
        # Ctrl+C at a prompt or during start-up (serve handles it itself once running): one line,
        # and the shell's usual code for an interrupted command (128 + SIGINT).
        print("\nocpp-console: interrupted", file=sys.stderr)
        return 130


def _main(argv: list[str] | None = None) -> int:
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
    if command != "simulate" and (problem := _missing_db_folder(settings, args)):
        print(f"ocpp-console: {problem}", file=sys.stderr)
        return 2
    if command == "simulate":
        from ocpp_console.sim.cli import run_simulate

        # One line per charger event (connected, booted, session) on stderr; summaries on stdout.
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)-7s %(message)s", stream=sys.stderr)
        logging.getLogger("ocpp").setLevel(logging.ERROR)
        logging.getLogger("websockets").setLevel(logging.WARNING)
        return asyncio.run(run_simulate(args))
    demo_chargers = getattr(args, "demo_chargers", 4) if getattr(args, "demo", False) else 0
    if command in ("console", "serve") and (problem := fresh_demo_database(settings, args)):
        print(f"ocpp-console: {problem}", file=sys.stderr)
        return 1
    try:
        if command == "console":
            log_to_file(settings.log_level)
            return run_console(settings, demo_chargers)
        if command == "attach":
            log_to_file(settings.log_level)
            return run_attach(settings, args)
        setup_logging(settings.log_level)
        if command == "call":
            return run_call(settings, args)
        if command == "export":
            return asyncio.run(run_export(settings, args))
        if command == "backup":
            return run_backup(settings, args)
        if command == "ca":
            return run_ca(settings, args)
        if command == "firmware":
            return asyncio.run(run_firmware(settings, args))
        if command in PROVISION_COMMANDS:
            # A prompt waits outside the event loop: Ctrl+C there must interrupt it at once.
            password = ask_password(args) if provision_action(args) == "chargers set-password" else None
            return asyncio.run(run_provision(settings, args, password))
        if command == "serve":
            return asyncio.run(run_serve(settings, demo_chargers))
    except OSError as exc:
        print(f"ocpp-console: {exc}", file=sys.stderr)
        return 1
    parser.error(f"unknown command {command}")
    return 2


