"""`ocpp-console attach`: the console on a site run by another process (`serve`, or a console with
--api-port), through its HTTP API and event stream (site/remote.py)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ocpp_console.settings import Settings


def add_attach_parser(sub: Any, flag: Any) -> None:
    parser = sub.add_parser(
        "attach", help="the console on a running serve (or console) through its HTTP API",
        description="Open the console on the site a running `ocpp-console serve` (or console) owns, through its "
        "HTTP API (--api-port) and event stream: the chargers stay connected to it when this console quits.",
    )
    parser.add_argument("--url", default=None, help="the API's base URL (default: from --api-host/--api-port)")
    # The running instance's API, found as `ocpp-console call` finds it: same flags, environment, TOML file.
    for name, kind, text in (
        ("api_port", int, "the port the running instance serves its API on"),
        ("api_host", str, "the address it listens on (default 127.0.0.1; 0.0.0.0 is reached on loopback)"),
        ("api_token", str, "its bearer token (default: the token file beside the database)"),
        ("db", Path, "its database: the API token file is read from the same directory"),
    ):
        parser.add_argument(flag(name), dest=name, default=argparse.SUPPRESS, type=kind,
                            help=f"{text} (env OCPP_CONSOLE_{name.upper()})")
    parser.add_argument("--config", type=Path, default=argparse.SUPPRESS, metavar="PATH", help="TOML settings file")


def attach_app(settings: Settings, url: str | None) -> Any:
    """The console on a RemoteSite; CallError when no API is configured to attach to."""
    from ocpp_console.api.client import api_url
    from ocpp_console.api.token import client_token
    from ocpp_console.site.remote import RemoteSite
    from ocpp_console.ui.app import ConsoleApp

    return ConsoleApp(RemoteSite(url or api_url(settings), client_token(settings)))


def run_attach(settings: Settings, args: argparse.Namespace) -> int:
    import sys

    from ocpp_console.api.client import CallError

    try:
        app = attach_app(settings, args.url)
    except CallError as exc:
        print(f"ocpp-console attach: {exc}", file=sys.stderr)
        return 2
    app.run()
    return app.return_code or 0
