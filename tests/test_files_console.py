"""The console's side of hosted files, in the console in this process and attached over the API:
Update Firmware offers the library's images, a diagnostics upload shows on the charger's detail."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import platformdirs
import pytest
from textual.widgets import Select, TabbedContent

from ocpp_console.csms import CentralSystem
from ocpp_console.files.library import add_image
from ocpp_console.settings import Settings
from ocpp_console.ui.screens.charger_detail import ChargerDetailScreen
from ocpp_console.ui.screens.modals import ActionForm
from ocpp_console.ui.widgets.tables import SyncedTable
from tests.conftest import Console
from tests.test_sim import fast_options, running
from tests.test_ui import cells, text_of, until

WIDE = (160, 50)


@pytest.fixture
def settings(settings_factory: Callable[..., Settings]) -> Settings:
    return settings_factory(files_port=0)


async def test_diagnostics_uploaded_to_us_show_on_the_detail_and_images_in_the_form(
    csms: CentralSystem, console: Console, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    downloads = tmp_path / "Downloads"
    monkeypatch.setattr(platformdirs, "user_downloads_dir", lambda: str(downloads))
    source = tmp_path / "sim-5.0.0.bin"
    source.write_bytes(b"firmware" * 100)
    await add_image(csms.store, csms.files.grants.firmware_dir, source)
    app = await console(csms)
    async with app.run_test(size=WIDE) as pilot, running(
        f"ws://127.0.0.1:{csms.port}", "SIM-UI", options=fast_options(upload_diagnostics=True)
    ):
        app.push_screen(ChargerDetailScreen("SIM-UI"))
        detail = await until(pilot, lambda: app.screen if isinstance(app.screen, ChargerDetailScreen) else None)
        app.start_action("SIM-UI", "update_firmware", {})
        form = await until(pilot, lambda: app.screen if isinstance(app.screen, ActionForm) else None)
        images = form.query_one("#f-firmware", Select)
        assert ("sim-5.0.0.bin", "sim-5.0.0.bin") in [(str(p), str(v)) for p, v in images._options]
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is detail)

        app.start_action("SIM-UI", "get_diagnostics", {})
        await until(pilot, lambda: isinstance(app.screen, ActionForm))
        await pilot.press("enter")  # no URL: to the central system
        await until(pilot, lambda: app.screen is detail)
        name = await until(pilot, lambda: next(iter(cells(app, "#received")), None), timeout=10)
        assert name.startswith("diagnostics-SIM-UI-")
        state = text_of(detail.query_one("#state"))
        await until(pilot, lambda: "received" in text_of(detail.query_one("#state")))
        assert "File transfer" in state

        # `[` from the charts to the last tab, Received files; Enter saves a copy in the downloads folder
        await pilot.press("left_square_bracket")
        await until(pilot, lambda: detail.query_one(TabbedContent).active == "tab-received")
        await until(pilot, lambda: detail.query_one("#received", SyncedTable).has_focus)
        await pilot.press("enter")
        saved = downloads / f"SIM-UI-{name}"
        await until(pilot, lambda: saved.exists() and any(f"saved as {saved}" in str(n.message) for n in app._notifications))
        assert saved.read_bytes() == (csms.files.grants.upload_dir("SIM-UI") / name).read_bytes()
