"""The site as a service under load: `ocpp-console serve` in its own process, N chargers reporting
into it from a load generator process, and in this process the clients of its event stream.

Two measurements on one running service, at one steady load:

* the stream's cost: the service's CPU seconds (from /proc) over fixed windows with no stream
  client, with one raw `GET /api/events` WebSocket client reading everything, and with one attached
  console (`ConsoleApp(RemoteSite(url, token))`, headless, as `ocpp-console attach` runs it,
  sitting on its overview). Windows alternate A B A C A ..., and each client window is compared
  with the mean of the client-less windows either side of it, so a drift of the service's own
  cost over the run (a growing database) does not count as the stream's.
* the attached console: time from a key press (screens 1-5) to the new screen drawn from the
  live model, and how late this process's event loop runs while it follows the stream.

    python bench/attach_latency.py --chargers 1000 --rate 2000 --window 8 --rounds 3
    python bench/attach_latency.py --chargers 1000 --rate 100 --rounds 0     # key presses only
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from keypress import press_screens  # noqa: E402
from run import cpu_seconds, free_port, start_server  # noqa: E402

from ocpp_console.site.remote import RemoteSite  # noqa: E402
from ocpp_console.ui.app import ConsoleApp  # noqa: E402

class Service:
    """`serve` with its HTTP API, and a load generator driving chargers into it."""

    def __init__(self, args: argparse.Namespace, tmp: Path) -> None:
        self.args = args
        self.ocpp_port, self.api_port = free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.api_port}"
        self.server = start_server("ocpp-console", self.ocpp_port, tmp, ("--api-port", str(self.api_port)))
        try:
            self.token = self._token(tmp / "api-token")
        except BaseException:
            self.stop()
            raise
        self.load: subprocess.Popen[str] | None = None

    def _token(self, path: Path) -> str:
        """The token `serve` made beside its database, once its API listens."""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.api_port), timeout=0.2):
                    return path.read_text().strip()
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("serve's HTTP API did not start")

    async def drive(self) -> None:
        """Chargers connect and boot, then report at the chosen rate until `stop_load`."""
        a = self.args
        self.load = subprocess.Popen(
            [sys.executable, str(ROOT / "bench" / "loadgen.py"), "--url", f"ws://127.0.0.1:{self.ocpp_port}",
             "--chargers", str(a.chargers), "--rate", str(a.rate), "--duration", "86400", "--heartbeat", "60"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
        assert self.load.stderr is not None
        line = await asyncio.to_thread(self.load.stderr.readline)  # every charger connected and booted
        if '"connected"' not in line:
            raise RuntimeError(f"load generator: {line}{self.load.stderr.read()}")

    def cpu(self) -> float:
        return cpu_seconds(self.server.pid)

    async def calls(self) -> int:
        """Calls the chargers have had answered so far."""
        assert self.load is not None and self.load.stderr is not None
        self.load.send_signal(signal.SIGUSR1)
        line = await asyncio.to_thread(self.load.stderr.readline)
        return json.loads(line)["calls"]

    def stop_load(self) -> dict:
        assert self.load is not None
        self.load.send_signal(signal.SIGINT)
        out, _ = self.load.communicate(timeout=120)
        return json.loads(out.strip().splitlines()[-1])

    def stop(self) -> None:
        if self.load is not None and self.load.poll() is None:
            self.load.kill()
        self.server.send_signal(signal.SIGTERM)
        try:
            self.server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.server.kill()


@dataclass
class Window:
    cores: float  # the service's CPU seconds per second of wall time
    per_1000: float  # the service's CPU seconds per 1,000 calls answered
    calls_per_s: float
    client_cores: float  # this process's (the stream client's) CPU seconds per second


async def cpu_window(service: Service, seconds: float) -> Window:
    """What the service spent over the next `seconds`."""
    calls0 = await service.calls()
    cpu0, own0, t0 = service.cpu(), time.process_time(), time.monotonic()
    await asyncio.sleep(seconds)
    cpu1, own1, t1 = service.cpu(), time.process_time(), time.monotonic()
    calls = await service.calls() - calls0
    return Window(round((cpu1 - cpu0) / (t1 - t0), 3), round((cpu1 - cpu0) / calls * 1000, 4) if calls else float("nan"),
                  round(calls / (t1 - t0)), round((own1 - own0) / (t1 - t0), 3))


async def raw_reader(url: str, token: str, counts: dict[str, int], ready: asyncio.Event) -> None:
    """A stream client that reads and decodes everything, and does nothing with it."""
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as http:
        async with http.ws_connect(url.replace("http", "ws", 1) + "/api/events") as ws:
            async for msg in ws:
                counts["frames"] = counts.get("frames", 0) + 1
                for line in msg.data.splitlines():
                    kind = json.loads(line)["type"]
                    counts[kind] = counts.get(kind, 0) + 1
                    ready.set()


async def until(predicate: Callable[[], object], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("the attached console did not get there")
        await asyncio.sleep(0.05)


async def press_keys(app: ConsoleApp, seconds: float) -> dict:
    """Screens 1-5 in turn, 0.25 s apart: key press to the new screen drawn from the live model."""
    return (await press_screens(app, seconds)).report()


async def measure(args: argparse.Namespace, tmp: Path) -> dict:
    service = Service(args, tmp)
    report: dict = {"chargers": args.chargers, "rate_asked": args.rate, "cores": os.cpu_count()}
    try:
        await service.drive()
        await asyncio.sleep(args.settle)
        idle: list[Window] = []  # the client-less windows, in order
        with_client: dict[str, list[tuple[int, Window]]] = {"raw": [], "console": []}  # (idle window before, it)
        idle.append(await cpu_window(service, args.window))
        for _ in range(args.rounds):
            counts: dict[str, int] = {}
            ready = asyncio.Event()
            reader = asyncio.create_task(raw_reader(service.url, service.token, counts, ready))
            await asyncio.wait_for(ready.wait(), 30)
            await asyncio.sleep(1)
            before, frames = counts.get("event", 0), counts["frames"]
            with_client["raw"].append((len(idle) - 1, await cpu_window(service, args.window)))
            report.setdefault("raw_client_events_per_s", []).append(round((counts.get("event", 0) - before) / args.window))
            report.setdefault("raw_client_frames_per_s", []).append(round((counts["frames"] - frames) / args.window))
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)
            idle.append(await cpu_window(service, args.window))
            app = ConsoleApp(RemoteSite(service.url, service.token))
            async with app.run_test(size=(160, 50)):
                await until(lambda: app.live.counts()["online"] >= args.chargers and app.screen.refreshed_at, 60)
                await asyncio.sleep(2)  # its first reads (1,000 chargers, the message log) are done
                with_client["console"].append((len(idle) - 1, await cpu_window(service, args.window)))
            idle.append(await cpu_window(service, args.window))
        report["windows"] = {"none": [asdict(w) for w in idle]} | {
            kind: [asdict(w) for _, w in windows] for kind, windows in with_client.items()}
        for kind, windows in with_client.items():
            for field in ("per_1000", "cores"):
                more = [round((getattr(w, field) / statistics.mean((getattr(idle[i], field), getattr(idle[i + 1], field)))
                               - 1) * 100, 1) for i, w in windows]
                report[f"cpu_{field}_increase_pct_{kind}"] = more
                if more:
                    report[f"cpu_{field}_increase_pct_{kind}_median"] = statistics.median(more)
        if args.keys:
            app = ConsoleApp(RemoteSite(service.url, service.token))
            async with app.run_test(size=(160, 50)):
                await until(lambda: app.live.counts()["online"] >= args.chargers and app.screen.refreshed_at, 60)
                await asyncio.sleep(2)
                cpu0, t0 = service.cpu(), time.monotonic()
                report |= await press_keys(app, args.keys)
                report["service_cpu_cores_during_keys"] = round((service.cpu() - cpu0) / (time.monotonic() - t0), 3)
                site = app.site
                assert isinstance(site, RemoteSite)
                report["console_stream_reconnects"] = site.reconnects
        load = service.stop_load()
        report |= {"meter_values_per_s": load["calls_per_s"], "load_errors": load["errors"] + load["connect_failures"],
                   "connected": load["connected"], "charger_round_trip_ms_p99": load["p99_ms"]}
    finally:
        service.stop()
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chargers", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=2000.0, help="MeterValues/s, all chargers together")
    parser.add_argument("--window", type=float, default=8.0, help="seconds of each CPU window")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of (raw client, console) CPU windows")
    parser.add_argument("--keys", type=float, default=20.0, help="seconds of key presses (0: none)")
    parser.add_argument("--settle", type=float, default=3.0, help="seconds of load before the first window")
    parser.add_argument("--smoke", action="store_true", help="20 chargers, short windows (CI)")
    args = parser.parse_args()
    if args.smoke:
        # keys: the first visit of each of the five screens is counted apart, then a few more presses
        args.chargers, args.rate, args.window, args.rounds, args.keys, args.settle = 20, 50.0, 1.0, 1, 5.0, 0.5
    with tempfile.TemporaryDirectory() as tmp:
        report = asyncio.run(measure(args, Path(tmp)))
    print(json.dumps(report))
    return 0 if report["load_errors"] == 0 and report["connected"] == args.chargers else 1


if __name__ == "__main__":
    raise SystemExit(main())
