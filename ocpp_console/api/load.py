"""The site's load management over the API: what each session gets (`GET /api/site/load`, with
`history=true` or `since=TIME` the site's power and limit at each decision, for a chart) and the
site limit, changed at run time (`PUT /api/site/limit`)."""

from __future__ import annotations

from datetime import datetime

from aiohttp import web

from ocpp_console.api.console_reads import _since
from ocpp_console.api.server import _bool, _checked_body, _csms, reply


async def site_load(request: web.Request) -> web.Response:
    history_since = 0.0 if _bool(request, "history") else None  # 0: every point kept
    if "since" in request.query:  # only the points after it: a console that has the rest asks for these
        history_since = datetime.fromisoformat(_since(request).replace("Z", "+00:00")).timestamp()
    return reply(_csms(request).load.snapshot(history_since))


async def site_limit(request: web.Request) -> web.Response:
    """A new limit in kW (null: load management off), in force from the next decision: at once."""
    body = await _checked_body(request, "SiteLimit")
    # answered with the shares decided for the new limit (sent already)
    return reply(await _csms(request).load.change_limit(body["limit_kw"]))


ROUTES = [
    web.get("/api/site/load", site_load),
    web.put("/api/site/limit", site_limit),
]
