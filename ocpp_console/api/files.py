"""The firmware library and the files chargers uploaded, over the API (files/)."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from ocpp_console.api.server import ApiError, _body, _csms, reply
from ocpp_console.files.library import LibraryError, NoSuchFile, add_image


def firmware_row(row: dict) -> dict:
    return {"name": row["name"], "size": row["size"], "sha256": row["sha256"], "added_at": row["added_at"]}


async def list_firmware(request: web.Request) -> web.Response:
    return reply([firmware_row(r) for r in await _csms(request).store.firmware_images()])


async def add_firmware(request: web.Request) -> web.Response:
    """Copy an image on this machine's disk into the library (the console's action, attached too)."""
    body = await _body(request)
    path, name = body.get("path"), body.get("name")
    if not isinstance(path, str) or not path or (name is not None and not isinstance(name, str)):
        raise ApiError(400, "invalid_body", "body: {\"path\": \"/file/on/this/machine\", \"name\": optional}")
    csms = _csms(request)
    try:
        row = await add_image(csms.store, csms.files.grants.firmware_dir, Path(path), name or None)
    except NoSuchFile as exc:
        raise ApiError(404, "no_such_file", str(exc)) from None
    except LibraryError as exc:
        raise ApiError(400, "invalid_firmware", str(exc)) from None
    return reply(firmware_row(row), 201)


async def _charger(request: web.Request) -> str:
    charger_id = request.match_info["charger_id"]
    if await _csms(request).store.charger(charger_id) is None:
        raise ApiError(404, "unknown_charger", f"no charger {charger_id!r}")
    return charger_id


async def list_diagnostics(request: web.Request) -> web.Response:
    charger_id = await _charger(request)
    return reply([f.to_json() for f in _csms(request).files.received(charger_id)])


async def get_diagnostics_file(request: web.Request) -> web.StreamResponse:
    charger_id = await _charger(request)
    name = request.match_info["name"]
    path = _csms(request).files.received_path(charger_id, name)
    if path is None:
        raise ApiError(404, "unknown_file", f"{charger_id} uploaded no file {name!r}")
    return web.FileResponse(path, headers={"Content-Type": "application/octet-stream",
                                           "Content-Disposition": f'attachment; filename="{path.name}"'})


ROUTES = [
    web.get("/api/firmware", list_firmware),
    web.post("/api/firmware", add_firmware),
    web.get("/api/chargers/{charger_id}/diagnostics", list_diagnostics),
    web.get("/api/chargers/{charger_id}/diagnostics/{name}", get_diagnostics_file),
]
