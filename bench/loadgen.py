"""Load generator: N OCPP 1.6J chargers over real sockets, in its own process.

Each charger connects, boots, reports its status, some start a transaction, then every charger
sends MeterValues (4 sampled values) so that all together make `--rate` calls per second, and a
Heartbeat every `--heartbeat` seconds. One call at a time per charger, as OCPP-J requires.
Prints one JSON object with what it measured.

    python bench/loadgen.py --url ws://127.0.0.1:9000 --chargers 1000 --rate 2000 --duration 20
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import random
import signal
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone

import orjson
from websockets.asyncio.client import ClientConnection, connect

TS = "2026-11-25T08:00:00Z"


@dataclass
class Stats:
    latencies: list[float] = field(default_factory=list)  # seconds, measured calls only
    calls: int = 0
    errors: int = 0
    connected: int = 0
    booted: int = 0
    connect_failures: int = 0
    measuring: bool = False


class Charger:
    def __init__(self, cp_id: str, stats: Stats) -> None:
        self.cp_id = cp_id
        self.stats = stats
        self.ws: ClientConnection | None = None
        self._ids = itertools.count(1)
        self.meter = random.randint(0, 10_000_000)
        self.tx: int | None = None

    async def call(self, action: str, payload: dict) -> dict | None:
        assert self.ws is not None
        uid = str(next(self._ids))
        started = time.perf_counter()
        await self.ws.send(orjson.dumps([2, uid, action, payload]).decode())
        while True:
            frame = orjson.loads(await self.ws.recv())
            if frame[0] in (3, 4) and frame[1] == uid:
                break
        elapsed = time.perf_counter() - started
        if self.stats.measuring:
            self.stats.calls += 1
            self.stats.latencies.append(elapsed)
        if frame[0] == 4:
            self.stats.errors += 1
            return None
        return frame[2]

    async def start(self, url: str, with_tx: bool) -> bool:
        try:
            self.ws = await connect(f"{url}/{self.cp_id}", subprotocols=["ocpp1.6"], open_timeout=60,
                                    compression=None, ping_interval=None, max_queue=4)
        except Exception:
            self.stats.connect_failures += 1
            return False
        self.stats.connected += 1
        boot = await self.call("BootNotification", {"chargePointVendor": "Bench", "chargePointModel": "Load"})
        if not boot or boot.get("status") != "Accepted":
            return False
        self.stats.booted += 1
        await self.call("StatusNotification", {"connectorId": 1, "errorCode": "NoError", "status": "Available"})
        if with_tx:
            answer = await self.call("StartTransaction", {"connectorId": 1, "idTag": f"T{self.cp_id[-12:]}",
                                                          "meterStart": self.meter, "timestamp": TS})
            self.tx = answer["transactionId"] if answer else None
        return True

    def meter_values(self) -> dict:
        self.meter += random.randint(10, 200)
        # a real meter's time: every sample its own timestamp, as chargers send them
        stamp = datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        payload = {"connectorId": 1, "meterValue": [{"timestamp": stamp, "sampledValue": [
            {"value": str(self.meter), "measurand": "Energy.Active.Import.Register", "unit": "Wh"},
            {"value": "7360", "measurand": "Power.Active.Import", "unit": "W"},
            {"value": "32.0", "measurand": "Current.Import", "unit": "A"},
            {"value": "230.0", "measurand": "Voltage", "unit": "V"},
        ]}]}
        if self.tx is not None:
            payload["transactionId"] = self.tx
        return payload

    async def run(self, interval: float, heartbeat: float, until: float) -> None:
        next_hb = time.perf_counter() + random.uniform(0, heartbeat)
        next_mv = time.perf_counter() + random.uniform(0, interval)
        try:
            while time.perf_counter() < until:
                now = time.perf_counter()
                if now >= next_hb:
                    await self.call("Heartbeat", {})
                    next_hb += heartbeat
                if now >= next_mv:
                    await self.call("MeterValues", self.meter_values())
                    next_mv += interval
                await asyncio.sleep(max(0.0, min(next_hb, next_mv, until) - time.perf_counter()))
        except Exception:
            self.stats.errors += 1


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--chargers", type=int, default=100)
    parser.add_argument("--rate", type=float, default=200.0, help="MeterValues calls per second, all chargers together")
    parser.add_argument("--duration", type=float, default=10.0,
                        help="seconds measured after all are connected (SIGINT ends it sooner)")
    parser.add_argument("--heartbeat", type=float, default=60.0)
    parser.add_argument("--tx-fraction", type=float, default=0.5, help="share of chargers with a running transaction")
    parser.add_argument("--prefix", default="BENCH")
    parser.add_argument("--connect-batch", type=int, default=200, help="connections opened at a time")
    parser.add_argument("--hold", type=float, default=0.0, help="seconds to stay connected after the measurement")
    args = parser.parse_args()
    random.seed(args.prefix)
    stats = Stats()
    chargers = [Charger(f"{args.prefix}-{i:05d}", stats) for i in range(args.chargers)]
    began = time.perf_counter()
    for start in range(0, len(chargers), args.connect_batch):
        batch = chargers[start:start + args.connect_batch]
        await asyncio.gather(*(c.start(args.url, random.random() < args.tx_fraction) for c in batch))
    connect_seconds = time.perf_counter() - began
    print(json.dumps({"event": "connected", "connected": stats.connected}), file=sys.stderr, flush=True)
    live = [c for c in chargers if c.ws is not None]
    interval = len(live) / args.rate if args.rate else 1e9
    stats.measuring = True
    t0 = time.perf_counter()
    until = t0 + args.duration
    runs = [asyncio.create_task(c.run(interval, args.heartbeat, until)) for c in live]
    # SIGINT ends the measurement early (a driver that runs phases of its own length)
    interrupted = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGINT, interrupted.set)
    # SIGUSR1: the calls answered so far, on stderr (a driver that measures windows of its own)
    loop.add_signal_handler(signal.SIGUSR1, lambda: print(json.dumps({"event": "calls", "calls": stats.calls}),
                                                          file=sys.stderr, flush=True))
    early = asyncio.create_task(interrupted.wait())
    await asyncio.wait([asyncio.gather(*runs), early], return_when=asyncio.FIRST_COMPLETED)
    elapsed = time.perf_counter() - t0
    stats.measuring = False
    early.cancel()
    for run in runs:
        run.cancel()
    await asyncio.gather(*runs, return_exceptions=True)
    if args.hold:
        await asyncio.sleep(args.hold)
    lat = sorted(stats.latencies)

    def pct(p: float) -> float:
        return lat[min(len(lat) - 1, int(p / 100 * len(lat)))] * 1000 if lat else float("nan")

    print(json.dumps({
        "chargers": args.chargers, "connected": stats.connected, "booted": stats.booted,
        "connect_failures": stats.connect_failures, "connect_seconds": round(connect_seconds, 2),
        "calls": stats.calls, "errors": stats.errors, "seconds": round(elapsed, 2),
        "calls_per_s": round(stats.calls / elapsed, 1) if elapsed else 0.0,
        "p50_ms": round(pct(50), 2), "p95_ms": round(pct(95), 2), "p99_ms": round(pct(99), 2),
        "max_ms": round(lat[-1] * 1000, 2) if lat else None,
    }), flush=True)
    await asyncio.gather(*(c.ws.close() for c in live if c.ws is not None), return_exceptions=True)


if __name__ == "__main__":
    asyncio.run(main())
