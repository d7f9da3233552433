"""Load management under load: N charging sessions share a site limit, then the operator changes
the limit through the API; how long until every charger has its new share, and the CPU the
service spent meanwhile.

`ocpp-console serve` runs in its own process; the chargers run here, over real sockets: each
connects, boots, starts a transaction, answers GetConfiguration (ChargeProfileMaxStackLevel,
ChargingScheduleAllowedChargingRateUnit) and SetChargingProfile / ClearChargingProfile
(Accepted), and sends MeterValues drawing its share every `--meter-every` seconds.

    python bench/site_limit.py                                   # 500 sessions, 5,000 kW -> 3,000 -> 5,000
    python bench/site_limit.py --chargers 500 --limit-kw 5000 --new-limit-kw 3000 --repeat 3
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from websockets.asyncio.client import ClientConnection, connect

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import cpu_seconds, free_port  # noqa: E402  (bench/run.py, beside this file)

ROOT = Path(__file__).resolve().parent.parent
TS = "2026-11-25T08:00:00Z"
TOKEN = "bench-site-limit-token-0123456789"
CONFIG = [{"key": "ChargeProfileMaxStackLevel", "readonly": True, "value": "8"},
          {"key": "ChargingScheduleAllowedChargingRateUnit", "readonly": True, "value": "Current,Power"}]


@dataclass
class SmartCharger:
    """One charger that takes charging profiles, as a smart-charging wallbox does."""

    cp_id: str
    ws: ClientConnection | None = None
    tx: int | None = None
    share_w: float | None = None  # the limit of its TxProfile for its transaction
    share_at: float = 0.0  # time.perf_counter() when that profile came
    default_w: float | None = None  # its TxDefaultProfile (the failsafe)
    default_at: float = 0.0
    profiles: int = 0
    meter: int = 0
    _ids: Any = field(default_factory=lambda: itertools.count(1))
    _pending: dict[str, asyncio.Future[Any]] = field(default_factory=dict)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def call(self, action: str, payload: dict[str, Any]) -> Any:
        assert self.ws is not None
        async with self._lock:  # one call at a time, as OCPP-J requires
            uid = str(next(self._ids))
            future = self._pending[uid] = asyncio.get_running_loop().create_future()
            await self.ws.send(orjson.dumps([2, uid, action, payload]).decode())
            return await asyncio.wait_for(future, 60)

    async def _read(self) -> None:
        assert self.ws is not None
        async for text in self.ws:
            frame = orjson.loads(text)
            if frame[0] == 2:
                await self.ws.send(orjson.dumps([3, frame[1], self._answer(frame[2], frame[3])]).decode())
            elif (future := self._pending.pop(frame[1], None)) is not None and not future.done():
                future.set_result(frame[2] if frame[0] == 3 else None)

    def _answer(self, action: str, payload: dict[str, Any]) -> dict[str, Any]:
        if action == "GetConfiguration":
            return {"configurationKey": CONFIG}
        if action == "SetChargingProfile":
            profile = payload["csChargingProfiles"]
            limit = float(profile["chargingSchedule"]["chargingSchedulePeriod"][0]["limit"])
            self.profiles += 1
            if profile["chargingProfilePurpose"] == "TxProfile":
                self.share_w, self.share_at = limit, time.perf_counter()
            else:
                self.default_w, self.default_at = limit, time.perf_counter()
            return {"status": "Accepted"}
        if action == "ClearChargingProfile":
            return {"status": "Accepted"}
        return {"status": "Rejected"}

    async def start(self, url: str) -> None:
        self.ws = await connect(f"{url}/{self.cp_id}", subprotocols=["ocpp1.6"], open_timeout=60,
                                compression=None, ping_interval=None)
        asyncio.get_running_loop().create_task(self._read())
        await self.call("BootNotification", {"chargePointVendor": "Bench", "chargePointModel": "Smart"})
        await self.call("StatusNotification", {"connectorId": 1, "errorCode": "NoError", "status": "Preparing"})
        answer = await self.call("StartTransaction", {"connectorId": 1, "idTag": f"T{self.cp_id[-12:]}",
                                                      "meterStart": 0, "timestamp": TS})
        self.tx = answer["transactionId"]
        await self.call("StatusNotification", {"connectorId": 1, "errorCode": "NoError", "status": "Charging"})

    async def draw(self, every: float) -> None:
        """MeterValues: the car takes its share (22 kW without one)."""
        await asyncio.sleep(random.uniform(0, every))
        while True:
            power = self.share_w if self.share_w is not None else 22_000.0
            self.meter += int(power * every / 3600)
            await self.call("MeterValues", {"connectorId": 1, "transactionId": self.tx, "meterValue": [{
                "timestamp": TS, "sampledValue": [
                    {"value": str(self.meter), "measurand": "Energy.Active.Import.Register", "unit": "Wh"},
                    {"value": str(power), "measurand": "Power.Active.Import", "unit": "W"}]}]})
            await asyncio.sleep(every)


def start_serve(port: int, api_port: int, limit_kw: float, tmp: Path, profile: str | None) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OCPP_CONSOLE_")}
    python = [sys.executable, "-m", "cProfile", "-o", profile] if profile else [sys.executable]
    cmd = [*python, "-m", "ocpp_console", "serve", "--config", str(tmp / "none.toml"), "--host", "127.0.0.1",
           "--port", str(port), "--db", str(tmp / "site.sqlite"), "--unknown-chargers", "accept",
           "--unknown-id-tags", "accept", "--log-level", "WARNING", "--max-calls-per-second", "1000",
           "--site-limit-kw", str(limit_kw), "--api-port", str(api_port), "--api-token", TOKEN]
    return subprocess.Popen(cmd, env=env, cwd=ROOT, stderr=subprocess.DEVNULL)


async def wait_for(check: Any, timeout: float, what: str) -> None:
    deadline = time.perf_counter() + timeout
    while not check():
        if time.perf_counter() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        await asyncio.sleep(0.005)


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


async def change(http: aiohttp.ClientSession, chargers: list[SmartCharger], pid: int, limit_kw: float) -> dict[str, Any]:
    """PUT the new limit; time until every charger holds its new share (and its new failsafe)."""
    share = limit_kw * 1000 / len(chargers)
    cpu0, t0 = cpu_seconds(pid), time.perf_counter()
    async with http.put("/api/site/limit", json={"limit_kw": limit_kw}) as response:
        assert response.status == 200, await response.text()
        await response.read()
    answered = time.perf_counter() - t0
    await wait_for(lambda: all(c.share_w == share and c.default_w == share for c in chargers), 120,
                   f"every share and failsafe at {share:.0f} W")
    await asyncio.sleep(1)  # whatever the service still does for the change (the command log, ...)
    cpu = cpu_seconds(pid) - cpu0 - 1 * STEADY_CPU[0]
    delays = [(c.share_at - t0) * 1000 for c in chargers]  # when each charger got its new share
    failsafes = [(c.default_at - t0) * 1000 for c in chargers]
    return {
        "limit_kw": limit_kw, "share_w": share, "api_answer_ms": round(answered * 1000, 1),
        "share_p50_ms": round(pct(delays, 50), 1), "share_p95_ms": round(pct(delays, 95), 1),
        "all_shares_ms": round(max(delays), 1), "all_failsafes_ms": round(max(failsafes), 1),
        "service_cpu_s": round(cpu, 3),
    }


STEADY_CPU = [0.0]  # the service's CPU share before the changes (MeterValues, heartbeats), taken off


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chargers", type=int, default=500)
    parser.add_argument("--limit-kw", type=float, default=5000.0, help="the site limit the sessions start under")
    parser.add_argument("--new-limit-kw", type=float, default=3000.0, help="the limit changed to (then back)")
    parser.add_argument("--repeat", type=int, default=2, help="changes down and back up, each measured")
    parser.add_argument("--meter-every", type=float, default=10.0, help="seconds between a charger's MeterValues")
    parser.add_argument("--connect-batch", type=int, default=100)
    parser.add_argument("--profile", metavar="PATH", help="run the service under cProfile, its stats to PATH")
    args = parser.parse_args()
    random.seed(1)
    with tempfile.TemporaryDirectory() as tmp:
        port, api_port = free_port(), free_port()
        server = start_serve(port, api_port, args.limit_kw, Path(tmp), args.profile)
        try:
            await run(args, server, f"ws://127.0.0.1:{port}", f"http://127.0.0.1:{api_port}")
        finally:
            server.terminate()
            server.wait(30)


async def run(args: argparse.Namespace, server: subprocess.Popen[bytes], url: str, api: str) -> None:
    deadline = time.perf_counter() + 30
    while True:
        try:
            async with aiohttp.ClientSession() as probe, probe.get(f"{api}/api/openapi.json"):
                break
        except aiohttp.ClientError:
            if time.perf_counter() > deadline or server.poll() is not None:
                raise SystemExit("serve did not start") from None
            await asyncio.sleep(0.1)
    chargers = [SmartCharger(f"SMART-{i:05d}") for i in range(args.chargers)]
    began = time.perf_counter()
    for start in range(0, len(chargers), args.connect_batch):
        await asyncio.gather(*(c.start(url) for c in chargers[start:start + args.connect_batch]))
    first = args.limit_kw * 1000 / len(chargers)
    await wait_for(lambda: all(c.share_w == first and c.default_w == first for c in chargers), 300, "first shares")
    setup_s = time.perf_counter() - began
    meters = [asyncio.create_task(c.draw(args.meter_every)) for c in chargers]
    await asyncio.sleep(2)
    cpu0 = cpu_seconds(server.pid)
    await asyncio.sleep(5)
    steady = STEADY_CPU[0] = (cpu_seconds(server.pid) - cpu0) / 5
    results = []
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with aiohttp.ClientSession(api, headers=headers) as http:
        for _ in range(args.repeat):
            for limit in (args.new_limit_kw, args.limit_kw):
                results.append(await change(http, chargers, server.pid, limit))
                print(json.dumps(results[-1]), file=sys.stderr, flush=True)
                await asyncio.sleep(1)
    for task in meters:
        task.cancel()
    print(json.dumps({
        "sessions": len(chargers), "setup_s": round(setup_s, 1), "steady_cpu_share": round(steady, 3),
        "changes": results,
        "median_all_shares_ms": statistics.median(r["all_shares_ms"] for r in results),
        "median_share_p95_ms": statistics.median(r["share_p95_ms"] for r in results),
        "median_service_cpu_s": statistics.median(r["service_cpu_s"] for r in results),
    }, indent=2), flush=True)
    await asyncio.gather(*(c.ws.close() for c in chargers if c.ws is not None), return_exceptions=True)


if __name__ == "__main__":
    asyncio.run(main())
