"""The console under load: the central system and the Textual UI in one process, N chargers
reporting every few seconds from a load generator process; measures how long a key press takes
to show its effect (switching screens) and how late the event loop runs.

    python bench/ui_latency.py --chargers 1000 --every 10 --duration 20
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from keypress import press_screens  # noqa: E402

from ocpp_console.csms import CentralSystem  # noqa: E402
from ocpp_console.settings import load_settings  # noqa: E402
from ocpp_console.ui.app import ConsoleApp  # noqa: E402


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chargers", type=int, default=1000)
    parser.add_argument("--every", type=float, default=10.0, help="seconds between each charger's MeterValues")
    parser.add_argument("--duration", type=float, default=20.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(Path(tmp) / "none.toml", host="127.0.0.1", port=0, db=Path(tmp) / "ui.sqlite",
                                 unknown_chargers="accept", unknown_id_tags="accept")
        csms = CentralSystem(settings, frames_direct=False)  # as console_app builds it (cli.py)
        await csms.start()
        app = ConsoleApp(csms, manage_csms=False)
        async with app.run_test(size=(160, 50)):
            load = await asyncio.create_subprocess_exec(
                sys.executable, str(ROOT / "bench" / "loadgen.py"), "--url", f"ws://127.0.0.1:{csms.port}",
                "--chargers", str(args.chargers), "--rate", str(args.chargers / args.every),
                "--duration", str(args.duration), "--heartbeat", "30",
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            )
            assert load.stderr is not None
            await load.stderr.readline()  # every charger connected and booted
            measured = await press_screens(app, args.duration - 1)
            out, _ = await load.communicate()
        await csms.stop()
    result = json.loads(out.decode().strip().splitlines()[-1])
    report = {
        "chargers": args.chargers, "meter_values_per_s": result["calls_per_s"], "load_errors": result["errors"],
        **measured.report(), "charger_round_trip_ms_p99": result["p99_ms"],
    }
    print(json.dumps(report))


if __name__ == "__main__":
    asyncio.run(main())
