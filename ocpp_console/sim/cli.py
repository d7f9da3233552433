"""`ocpp-console simulate`: simulated chargers against any OCPP 1.6J central system."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path
from urllib.parse import urlsplit

from ocpp_console.sim.options import DEFAULT_ORGANISATION, ChargerOptions
from ocpp_console.sim.runner import run_chargers


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be greater than 0, not {text}")
    return value


def _tags(text: str) -> list[str]:
    tags = [t.strip() for t in text.split(",") if t.strip()]
    if not tags:
        raise argparse.ArgumentTypeError("give at least one id tag")
    too_long = [t for t in tags if len(t) > 20]
    if too_long:
        raise argparse.ArgumentTypeError(f"an idTag is at most 20 characters: {', '.join(too_long)}")
    return tags


def add_simulate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--url", required=True, metavar="ws://HOST:PORT",
        help="the central system; each charger connects to URL/<chargerId>",
    )
    parser.add_argument("--chargers", type=_positive_int, default=1, metavar="N", help="chargers to simulate (default 1)")
    parser.add_argument("--connectors", type=_positive_int, default=1, metavar="K", help="connectors per charger (default 1)")
    parser.add_argument("--prefix", default="SIM", help="charger ids are PREFIX-001, PREFIX-002, ... (default SIM)")
    parser.add_argument(
        "--id-tags", type=_tags, default=None, metavar="TAG,...",
        help="id tags the simulated drivers present (default SIMTAG0001, ...; the central system must know them)",
    )
    parser.add_argument(
        "--duration", type=_positive_float, default=None, metavar="SECONDS",
        help="end after this many seconds, finishing running sessions first (default: until SIGINT/SIGTERM)",
    )
    parser.add_argument(
        "--password", default=None, metavar="P",
        help="HTTP Basic auth password (AuthorizationKey); the user is the charger id",
    )
    parser.add_argument(
        "--sessions", choices=("auto", "none"), default="auto",
        help="auto: drivers come and charge at random; none: only react to the central system (default auto)",
    )
    parser.add_argument(
        "--fetch-firmware", action="store_true",
        help="UpdateFirmware and SignedUpdateFirmware really download the image (HTTP GET, or FTP RETR for an ftp:// URL) instead of simulating it",
    )
    parser.add_argument(
        "--upload-diagnostics", action="store_true",
        help="GetDiagnostics and GetLog really upload the file (HTTP PUT, else POST; FTP STOR for an ftp:// URL) instead of simulating it",
    )
    parser.add_argument(
        "--speed", type=_positive_float, default=1.0, metavar="FACTOR",
        help="simulated time per real time, e.g. 60: a simulated minute per second (default 1)",
    )
    parser.add_argument("--seed", type=int, default=None, help="seed for repeatable randomness")
    parser.add_argument(
        "--server-ca", default=None, metavar="PATH",
        help="wss://: the CA (PEM) that signed the central system's certificate, e.g. its operator CA "
        "(default: the system's trust store, or a CentralSystemRootCertificate installed with InstallCertificate)",
    )
    parser.add_argument(
        "--request-certificate", action="store_true",
        help="ask for a client certificate (SignCertificate) once accepted; over wss:// the charger then "
        "reconnects with it (security profile 3). ExtendedTriggerMessage SignChargePointCertificate asks too",
    )
    parser.add_argument(
        "--organisation", default=DEFAULT_ORGANISATION, metavar="NAME",
        help=f"the O (CpoName) of the certificate request (default {DEFAULT_ORGANISATION})",
    )


async def run_simulate(args: argparse.Namespace) -> int:
    """Run the chargers; print one summary line per charger. 0: every charger reached the
    central system; 1: some never did; 2: bad arguments; 130: interrupted twice."""
    url = args.url
    if urlsplit(url).scheme not in ("ws", "wss") or not urlsplit(url).netloc:
        print(f"ocpp-console simulate: --url must be ws://HOST:PORT or wss://HOST:PORT, not {url!r}", file=sys.stderr)
        return 2
    if args.server_ca is not None and not Path(args.server_ca).is_file():
        print(f"ocpp-console simulate: --server-ca {args.server_ca}: no such file", file=sys.stderr)
        return 2
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    main = asyncio.current_task()

    def on_signal() -> None:
        if stop.is_set() and main is not None:
            main.cancel()  # a second signal: don't wait for sessions to finish
        stop.set()

    installed = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, on_signal)
            installed.append(sig)
        except (NotImplementedError, RuntimeError, ValueError):
            pass  # not the main thread, or no signals here: --duration still ends the run
    try:
        summaries = await run_chargers(
            url,
            n=args.chargers,
            connectors=args.connectors,
            prefix=args.prefix,
            id_tags=args.id_tags,
            sessions=args.sessions,
            duration=args.duration,
            password=args.password,
            speed=args.speed,
            stop_event=stop,
            seed=getattr(args, "seed", None),
            fetch_firmware=args.fetch_firmware,
            upload_diagnostics=args.upload_diagnostics,
            options=ChargerOptions(
                organisation=args.organisation, request_certificate=args.request_certificate, server_ca=args.server_ca,
            ),
        )
    except asyncio.CancelledError:
        if not stop.is_set():
            raise
        print("ocpp-console simulate: interrupted", file=sys.stderr)
        return 130
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)
    for summary in summaries:
        print(summary.line(), flush=True)
    return 0 if all(s.connected_once for s in summaries) else 1
