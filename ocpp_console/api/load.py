"""The site's load management over the API: what each session gets (`GET /api/site/load`) and the
site limit, changed at run time (`PUT /api/site/limit`)."""

from __future__ import annotations

from aiohttp import web

from ocpp_console.api.server import _checked_body, _csms, reply


async def site_load(request: web.Request) -> web.Response:
    return reply(_csms(request).load.snapshot())


async def site_limit(request: web.Request) -> web.Response:
    """A new limit in kW (null: load management off), in force from the next decision: at once."""
    body = await _checked_body(request, "SiteLimit")
    load = _csms(request).load
    await load.set_limit(body["limit_kw"])
    await load.decide()  # answered with the shares decided for the new limit (sent already)
    return reply(load.snapshot())


ROUTES = [
    web.get("/api/site/load", site_load),
    web.put("/api/site/limit", site_limit),
]
