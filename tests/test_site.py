"""LocalSite: the console's one way into the site, checked against what the HTTP API and the
store say, with a simulated charger over a real WebSocket."""

from __future__ import annotations

import pytest

from ocpp_console.api import resources
from ocpp_console.csms import CentralSystem, ChargerOffline
from ocpp_console.site import Site, SiteError, as_site, events
from ocpp_console.site.local import LocalSite
from tests.test_sim import base_url, running


async def test_a_central_system_is_wrapped_and_a_site_is_kept(csms: CentralSystem) -> None:
    site = as_site(csms)
    assert isinstance(site, LocalSite) and site.csms is csms
    assert as_site(site) is site
    assert site.info().charger_url == f"ws://127.0.0.1:{csms.port}/<chargePointId>"
    assert site.info().currency == csms.settings.currency


async def test_reads_are_the_apis_rows_and_keep_secrets_in(csms: CentralSystem) -> None:
    site: Site = LocalSite(csms)
    async with running(base_url(csms), "SITE-1", connectors=2):
        await site.set_password("SITE-1", "a-long-enough-password-1")
        assert await site.chargers() == await resources.chargers(csms)  # the API's own shape
        assert await site.connected() == {"SITE-1"}
        detail = await site.charger("SITE-1")
        assert detail is not None and detail["has_password"] is True
        assert not {"password_hash", "pending_password_hash"} & set(detail)
        assert [c["connector_id"] for c in await site.connectors("SITE-1")] == [0, 1, 2]
        frames = await site.message_log(limit=3)
        assert len(frames) == 3 and set(frames[0]) == {"id", "charger_id", "direction", "timestamp", "message_type",
                                                        "unique_id", "action", "raw"}
    assert await site.charger("NOPE") is None


async def test_operate_answers_ocpp_json_and_reserves_with_the_next_id(csms: CentralSystem) -> None:
    site = LocalSite(csms)
    seen: list[events.Event] = []
    unsubscribe = site.subscribe(seen.append)
    async with running(base_url(csms), "SITE-2"):
        answer = await site.operate("SITE-2", "GetConfiguration", {"key": ["HeartbeatInterval"]})
        assert answer["configurationKey"][0]["key"] == "HeartbeatInterval"  # camelCase, as on the wire
        reserved = await site.operate("SITE-2", "ReserveNow", {"connectorId": 1, "idTag": "TAG-1",
                                                               "expiryDate": "2099-01-01T00:00:00Z"})
        assert reserved["status"] == "Accepted" and isinstance(reserved["reservationId"], int)
        rows = await site.reservations("SITE-2")
        assert [(r["id"], r["id_tag"]) for r in rows] == [(reserved["reservationId"], "TAG-1")]
    unsubscribe()
    finished = [e for e in seen if isinstance(e, events.CommandFinished)]
    assert [e.action for e in finished] == ["GetConfiguration", "ReserveNow"]
    with pytest.raises(ChargerOffline):
        await site.operate("SITE-2", "ClearCache", {})
    assert len([e for e in seen if isinstance(e, events.CommandFinished)]) == 2  # unsubscribed


async def test_refused_operator_changes_are_site_errors(csms: CentralSystem) -> None:
    site = LocalSite(csms)
    with pytest.raises(SiteError, match="16"):
        await site.set_password("ANY", "short")
    with pytest.raises(SiteError, match="no transaction 999"):
        await site.close_transaction(999)
    await site.save_id_tag("TAG-W", "Accepted", None, None, None)
    with pytest.raises(SiteError, match="unknown id tag NOPE"):
        await site.wallet_movement("NOPE", 100, "topup", "no such tag")
    wallet, balance = await site.wallet_movement("TAG-W", 2500, "topup", "cash")
    assert (wallet, balance) == ("TAG-W", 2500)
    assert [t["balance"] for t in await site.id_tags() if t["id_tag"] == "TAG-W"] == [2500]
