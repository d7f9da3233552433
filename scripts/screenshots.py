"""Regenerate screenshots/*.svg from a deterministic demo: a fixed clock and a scripted site.

    python scripts/screenshots.py            # writes screenshots/*.svg
    python scripts/screenshots.py --png      # also PNGs next to them (needs rsvg-convert)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ["TZ"] = "UTC"  # local times on screen are the same everywhere
time.tzset()

from ocpp_console import timeutil  # noqa: E402
from ocpp_console.csms import CentralSystem  # noqa: E402
from ocpp_console.settings import load_settings  # noqa: E402
from ocpp_console.sim.scripted import SCENARIO_SETTINGS, play_scenario, story_clock  # noqa: E402
from ocpp_console.ui.app import ConsoleApp  # noqa: E402
from ocpp_console.ui.widgets.tables import SyncedTable  # noqa: E402

SIZE = (120, 36)
SUBTITLE = "ws://0.0.0.0:9000/<chargePointId>"


def scenario_app(db: Path) -> ConsoleApp:
    timeutil.set_clock(story_clock)
    settings = load_settings(db.parent / "none.toml", host="127.0.0.1", port=0, db=db, **SCENARIO_SETTINGS)
    return ConsoleApp(CentralSystem(settings), prepare=play_scenario)


async def shoot(out: Path, size: tuple[int, int] = SIZE) -> list[Path]:
    out.mkdir(exist_ok=True)
    written: list[Path] = []
    with tempfile.TemporaryDirectory() as tmp:
        app = scenario_app(Path(tmp) / "demo.sqlite")
        async with app.run_test(size=size) as pilot:
            app.sub_title = SUBTITLE

            async def snap(name: str) -> None:
                await pilot.pause(0.6)
                path = out / f"{name}.svg"
                app.save_screenshot(str(path))
                written.append(path)

            await snap("1-overview")
            await pilot.press("2")
            await snap("2-chargers")
            await pilot.press("enter")
            await snap("3-charger-detail")
            await pilot.press("o")
            await snap("7a-remote-actions")
            await pilot.press("enter")
            await snap("7b-remote-start-form")
            await pilot.press("escape")
            await pilot.press("escape")
            await pilot.press("3")
            await snap("4-transactions")
            app.screen.query_one("TabbedContent").active = "tab-orders"
            app.screen.query_one("#orders", SyncedTable).focus()
            await snap("4b-orders")
            await pilot.press("enter")
            await snap("4c-order-detail")
            await pilot.press("escape")
            await pilot.press("4")
            await snap("5-id-tags")
            await pilot.press("5")
            await pilot.press("f")  # pause following, then pick a frame to show its payload
            table = app.screen.query_one(SyncedTable)
            table.move_cursor(row=max(0, table.row_count - 9))
            await snap("6-message-log")
    return written


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "screenshots")
    parser.add_argument("--png", action="store_true", help="also convert to PNG with rsvg-convert")
    parser.add_argument("--size", default=f"{SIZE[0]}x{SIZE[1]}",
                        help="terminal COLUMNSxROWS, e.g. 80x24 (with --out elsewhere: the README's are 120x36)")
    args = parser.parse_args()
    columns, rows = (int(n) for n in args.size.lower().split("x"))
    written = asyncio.run(shoot(args.out, (columns, rows)))
    for path in written:
        print(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)
        if args.png and shutil.which("rsvg-convert"):
            subprocess.run(["rsvg-convert", str(path), "-o", str(path.with_suffix(".png"))], check=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
