"""Snapshot tests of the console on the scripted site with the product clock fixed."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ocpp_console import timeutil
from ocpp_console.csms import CentralSystem
from ocpp_console.settings import load_settings
from ocpp_console.sim.scripted import SCENARIO_SETTINGS, play_scenario, story_clock
from ocpp_console.ui.app import ConsoleApp

SIZE = (120, 36)


@pytest.fixture
def scenario_app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ConsoleApp]:
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    timeutil.set_clock(story_clock)
    settings = load_settings(tmp_path / "none.toml", host="127.0.0.1", port=0, db=tmp_path / "snap.sqlite",
                             **SCENARIO_SETTINGS)
    # In-process only: the picture is of the app that runs the scenario's central system itself.
    app = ConsoleApp(CentralSystem(settings), prepare=play_scenario)
    try:
        yield app
    finally:
        timeutil.set_clock(None)
        monkeypatch.undo()
        time.tzset()


async def _fixed_subtitle(pilot: Any) -> None:
    pilot.app.sub_title = "ws://0.0.0.0:9000/<chargePointId>"
    await pilot.pause(0.6)


def test_overview_snapshot(snap_compare: Any, scenario_app: ConsoleApp) -> None:
    assert snap_compare(scenario_app, terminal_size=SIZE, run_before=_fixed_subtitle)


def test_chargers_snapshot(snap_compare: Any, scenario_app: ConsoleApp) -> None:
    async def chargers(pilot: Any) -> None:
        await pilot.press("2")
        await _fixed_subtitle(pilot)

    assert snap_compare(scenario_app, terminal_size=SIZE, run_before=chargers)


def test_overview_snapshot_at_80x24(snap_compare: Any, scenario_app: ConsoleApp) -> None:
    assert snap_compare(scenario_app, terminal_size=(80, 24), run_before=_fixed_subtitle)
