"""The console under load: the central system and the Textual UI in one process, N chargers
reporting every few seconds from a load generator process; measures how long a key press takes
to show its effect (switching screens) and how late the event loop runs.

    python bench/ui_latency.py --chargers 1000 --every 10 --duration 20
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from textual import events  # noqa: E402

from ocpp_console.csms import CentralSystem  # noqa: E402
from ocpp_console.settings import load_settings  # noqa: E402
from ocpp_console.ui.app import ConsoleApp  # noqa: E402

SCREENS = {"1": "OverviewScreen", "2": "ChargersScreen", "3": "TransactionsScreen", "4": "IdTagsScreen",
           "5": "MessageLogScreen"}


async def lag_probe(samples: list[float], stop: asyncio.Event) -> None:
    while not stop.is_set():
        started = time.perf_counter()
        await asyncio.sleep(0.01)
        samples.append(time.perf_counter() - started - 0.01)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chargers", type=int, default=1000)
    parser.add_argument("--every", type=float, default=10.0, help="seconds between each charger's MeterValues")
    parser.add_argument("--duration", type=float, default=20.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(Path(tmp) / "none.toml", host="127.0.0.1", port=0, db=Path(tmp) / "ui.sqlite",
                                 unknown_chargers="accept", unknown_id_tags="accept")
        csms = CentralSystem(settings)
        await csms.start()
        app = ConsoleApp(csms, manage_csms=False)
        presses: list[float] = []
        by_screen: dict[str, list[float]] = {}
        first_visits: dict[str, float] = {}
        lags: list[float] = []
        async with app.run_test(size=(160, 50)) as pilot:
            load = await asyncio.create_subprocess_exec(
                sys.executable, str(ROOT / "bench" / "loadgen.py"), "--url", f"ws://127.0.0.1:{csms.port}",
                "--chargers", str(args.chargers), "--rate", str(args.chargers / args.every),
                "--duration", str(args.duration), "--heartbeat", "30",
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            )
            assert load.stderr is not None
            await load.stderr.readline()  # every charger connected and booted
            stop = asyncio.Event()
            probe = asyncio.create_task(lag_probe(lags, stop))
            deadline = time.perf_counter() + args.duration - 1
            keys = "21345"
            i = 0
            while time.perf_counter() < deadline:
                key = keys[i % len(keys)]
                i += 1
                started = time.perf_counter()
                app.post_message(events.Key(key, key))
                # the effect: the new screen is current and has redrawn its data from the live model
                while type(app.screen).__name__ != SCREENS[key] or app.screen.refreshed_at < started:
                    await asyncio.sleep(0.001)
                if SCREENS[key] in by_screen:  # the first visit builds the screen: reported apart
                    presses.append(time.perf_counter() - started)
                    by_screen[SCREENS[key]].append(time.perf_counter() - started)
                else:
                    by_screen[SCREENS[key]] = []
                    first_visits[SCREENS[key]] = time.perf_counter() - started
                await asyncio.sleep(0.25)
            stop.set()
            await probe
            out, _ = await load.communicate()
        await csms.stop()
    result = json.loads(out.decode().strip().splitlines()[-1])
    presses.sort()
    lags.sort()
    report = {
        "chargers": args.chargers, "meter_values_per_s": result["calls_per_s"], "load_errors": result["errors"],
        "key_presses": len(presses),
        "key_to_screen_ms_p50": round(statistics.median(presses) * 1000, 1),
        "key_to_screen_ms_p95": round(presses[int(0.95 * (len(presses) - 1))] * 1000, 1),
        "key_to_screen_ms_max": round(presses[-1] * 1000, 1),
        "loop_lag_ms_p99": round(lags[int(0.99 * (len(lags) - 1))] * 1000, 1),
        "loop_lag_ms_max": round(lags[-1] * 1000, 1),
        "charger_round_trip_ms_p99": result["p99_ms"],
        "key_to_screen_ms_median_by_screen": {k: round(statistics.median(v) * 1000, 1) for k, v in by_screen.items() if v},
        "first_visit_ms": {k: round(v * 1000, 1) for k, v in first_visits.items()},
    }
    print(json.dumps(report))


if __name__ == "__main__":
    asyncio.run(main())
