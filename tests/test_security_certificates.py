"""Certificates signed over real sockets: SignCertificate -> CertificateSigned -> a profile 3 login,
with the simulator and with a raw client; and the console's certificate actions."""

from __future__ import annotations

import asyncio
import json
import ssl
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from textual.widgets import OptionList
from websockets.asyncio.client import connect

from ocpp_console.csms import CentralSystem
from ocpp_console.csms import events as evs
from ocpp_console.csms.ca import OperatorCA, key_pem, new_key
from ocpp_console.csms.security import hash_password
from ocpp_console.settings import Settings
from ocpp_console.timeutil import iso
from ocpp_console.ui.actions import ACTIONS
from ocpp_console.ui.app import ConsoleApp
from ocpp_console.ui.screens.charger_detail import short_serial
from ocpp_console.ui.live import LiveSite, local_time
from ocpp_console.ui.screens.modals import ActionForm
from tests.conftest import Console, EventWaiter, raw_socket
from tests.test_messages import BOOT, raw_call
from tests.test_security_ca import make_csr
from tests.test_sim import base_url, fast_options, fresh, running
from tests.test_ui import SIZE, text_of, until

ORG = "Test Operator"
PASSWORD = "correct-horse-battery-1"


def server_files(ca: OperatorCA, directory: Path) -> tuple[Path, Path]:
    chain, key = ca.issue_server_certificate(["127.0.0.1", "localhost"])
    (directory / "server.pem").write_text(chain)
    (directory / "server.key").write_text(key)
    return directory / "server.pem", directory / "server.key"


async def test_simulated_charger_gets_a_certificate_and_logs_in_with_profile_3(
    settings_factory: Callable[..., Settings], tmp_path: Path
) -> None:
    ca = OperatorCA.load_or_create(settings_factory(tls_client_org=ORG))
    cert, key = server_files(ca, tmp_path)
    profile_2 = settings_factory(security_profile=2, tls_cert=cert, tls_key=key, tls_client_org=ORG)
    options = fast_options(server_ca=str(ca.cert_path), organisation=ORG, request_certificate=True)

    system = CentralSystem(profile_2)
    await system.start()
    port = system.port
    waiter = EventWaiter(system)
    await system.store.set_password("SIM-P3", hash_password(PASSWORD))
    url = f"wss://127.0.0.1:{port}"
    try:
        async with running(url, "SIM-P3", password=PASSWORD, options=options, ready=False) as sim:
            # Over wss:// with its password (profile 2) it asks for a certificate by itself.
            installed = await waiter.wait_for(lambda e: isinstance(e, evs.CertificateInstalled))
            row = await system.store.charger("SIM-P3")
            assert row["certificate_serial"] == installed.serial
            first = x509.load_pem_x509_certificates(row["certificate_pem"].encode())[0]
            assert format(first.serial_number, "x") == installed.serial == row["certificate_serial"]
            assert iso(first.not_valid_after_utc) == row["certificate_expiry"]
            assert sim.certificates.charge_point_chain == row["certificate_pem"]
            # CertificateSigned went out after the SignCertificate answer, through the command log.
            commands = await system.store.commands("SIM-P3")
            assert [(c["action"], c["outcome"]) for c in commands] == [("CertificateSigned", "ok")]
            # ...and the charger reconnects at once to use it.
            await waiter.wait_for(lambda e: isinstance(e, evs.ChargerConnected) and e.charger_id == "SIM-P3"
                                  and sum(isinstance(x, evs.ChargerConnected) for x in waiter.events) >= 2)

            # The site moves to profile 3 on the same port: client certificates from the operator CA.
            await system.stop()
            profile_3 = settings_factory(security_profile=3, tls_cert=cert, tls_key=key, tls_ca=ca.cert_path,
                                         tls_client_org=ORG, port=port)
            system = CentralSystem(profile_3)
            waiter = EventWaiter(system)
            sim.config.set("AuthorizationKey", "")  # no password any more: the certificate alone
            await system.start()
            await waiter.wait_for(lambda e: isinstance(e, evs.ChargerConnected) and e.charger_id == "SIM-P3", 15)
            await sim.wait_ready(10)
            assert sim.summary.reconnects >= 2

            # A certificate with the same CN and O from another CA is refused at the TLS handshake.
            other = OperatorCA.load_or_create(settings_factory(db=tmp_path / "other" / "x.sqlite", tls_client_org=ORG))
            client = ssl.create_default_context(cafile=str(ca.cert_path))
            forged_key = new_key()
            forged = other.sign_csr(make_csr("SIM-P3", ORG, key=forged_key), "SIM-P3")
            (tmp_path / "forged.pem").write_text(forged.chain_pem)
            (tmp_path / "forged.key").write_text(key_pem(forged_key))
            client.load_cert_chain(tmp_path / "forged.pem", tmp_path / "forged.key")
            connected_before = sum(isinstance(e, evs.ChargerConnected) for e in waiter.events)
            with pytest.raises(Exception):
                async with connect(f"{url}/SIM-P3", subprotocols=["ocpp1.6"], ssl=client, open_timeout=3) as ws:
                    await ws.recv()
            assert sum(isinstance(e, evs.ChargerConnected) for e in waiter.events) == connected_before
            assert "SIM-P3" in system.sessions  # the real charger is untouched
    finally:
        await system.stop()


async def test_a_signed_certificate_is_a_profile_3_login_on_the_same_tls_port_by_default(
    settings_factory: Callable[..., Settings], tmp_path: Path
) -> None:
    """No --tls-ca: the TLS port trusts the operator CA, so the certificate we signed lets the
    charger in with profile 3 at once, beside the profile-2 chargers, with no restart; once its
    stored profile is 3 its password alone is not enough."""
    ca = OperatorCA.load_or_create(settings_factory(tls_client_org=ORG))
    cert, key = server_files(ca, tmp_path)
    settings = settings_factory(security_profile=2, tls_cert=cert, tls_key=key, tls_client_org=ORG)
    assert settings.tls_ca is None
    options = fast_options(server_ca=str(ca.cert_path), organisation=ORG, request_certificate=True)
    async with CentralSystem(settings) as system:
        assert system.highest_profile == 3
        waiter = EventWaiter(system)
        await system.store.set_password("SIM-D3", hash_password(PASSWORD))
        async with running(f"wss://127.0.0.1:{system.port}", "SIM-D3", password=PASSWORD, options=options,
                           ready=False) as sim:
            await waiter.wait_for(lambda e: isinstance(e, evs.CertificateInstalled))
            await waiter.wait_for(lambda e: isinstance(e, evs.ChargerConnected) and e.charger_id == "SIM-D3"
                                  and sum(isinstance(x, evs.ChargerConnected) for x in waiter.events) >= 2)
            assert system.sessions["SIM-D3"].security_profile == 3
            # Raised to 3: a login with the password but without the certificate is refused now.
            await system.store.raise_security_profile("SIM-D3", 3)
            await sim.wait_ready(10)
        base = f"wss://127.0.0.1:{system.port}"
        client = ssl.create_default_context(cafile=str(ca.cert_path))
        import base64
        basic = {"Authorization": "Basic " + base64.b64encode(f"SIM-D3:{PASSWORD}".encode()).decode()}
        with pytest.raises(Exception) as refused:
            async with connect(f"{base}/SIM-D3", subprotocols=["ocpp1.6"], ssl=client,
                               additional_headers=basic, open_timeout=3):
                pass
        assert "403" in str(refused.value)


async def test_good_csr_is_answered_before_the_signed_certificate_is_sent(
    settings_factory: Callable[..., Settings],
) -> None:
    async with CentralSystem(settings_factory(tls_client_org=ORG)) as system:
        waiter = EventWaiter(system)
        async with raw_socket(system, "CP-RAW") as ws:
            assert (await raw_call(ws, "BootNotification", BOOT))[2]["status"] == "Accepted"
            uid = str(uuid.uuid4())
            await ws.send(json.dumps([2, uid, "SignCertificate", {"csr": make_csr("CP-RAW", ORG)}]))
            answer = json.loads(await ws.recv())
            assert answer == [3, uid, {"status": "Accepted"}]
            call = json.loads(await asyncio.wait_for(ws.recv(), 5))  # only after the answer
            assert call[0] == 2 and call[2] == "CertificateSigned"
            chain = x509.load_pem_x509_certificates(call[3]["certificateChain"].encode())
            assert len(chain) == 2 and chain[1] == (await system.operator_ca()).certificate
            await ws.send(json.dumps([3, call[1], {"status": "Accepted"}]))
            event = await waiter.wait_for(lambda e: isinstance(e, evs.CertificateInstalled))
            assert event.serial == format(chain[0].serial_number, "x")
        row = await system.store.charger("CP-RAW")
        assert row["certificate_serial"] == event.serial and row["certificate_pem"] == call[3]["certificateChain"]


@pytest.mark.parametrize(
    ("csr", "reason"),
    [
        (lambda: make_csr("CP-OTHER", ORG), "its CN is 'CP-OTHER', not the charger id 'CP-RAW'"),
        (lambda: make_csr("CP-RAW", "Evil Corp"), "its O is 'Evil Corp'"),
        (lambda: make_csr(["CP-RAW", "CP-RAW"], ORG), "names 2 CNs"),
        (lambda: "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----", "not a PEM"),
    ],
    ids=["wrong-cn", "wrong-o", "two-cns", "garbage"],
)
async def test_wrong_csr_is_rejected_with_the_reason_kept(
    settings_factory: Callable[..., Settings], csr: Callable[[], str], reason: str
) -> None:
    async with CentralSystem(settings_factory(tls_client_org=ORG)) as system:
        waiter = EventWaiter(system)
        site = LiveSite(system)  # what the console's overview lists as latest events
        async with raw_socket(system, "CP-RAW") as ws:
            await raw_call(ws, "BootNotification", BOOT)
            answer = await raw_call(ws, "SignCertificate", {"csr": csr()})
            assert answer[2] == {"status": "Rejected"}
            refused = await waiter.wait_for(lambda e: isinstance(e, evs.CertificateRequestRefused))
            assert reason in refused.reason
            assert any(reason in item.text and item.level == "warning" for item in site.feed)
            # The connection stays, and no CertificateSigned follows: the next frame is our answer.
            assert (await raw_call(ws, "Heartbeat", {}))[0] == 3
        notes = [n for n in await system.store.notifications("CP-RAW") if n["action"] == "SignCertificate"]
        assert [n["status"] for n in notes] == ["Rejected"]
        assert reason in json.loads(notes[0]["payload"])["reason"]
        row = await system.store.charger("CP-RAW")
        assert row["certificate_pem"] is None and await system.store.commands("CP-RAW") == []


# -- the console ------------------------------------------------------------------------------------


async def pick(app: ConsoleApp, pilot: Any, key: str) -> ActionForm:
    await pilot.press("o")
    await until(pilot, lambda: app.screen.query("#actions"))
    app.screen.query_one("#actions", OptionList).highlighted = [a.key for a in ACTIONS].index(key)
    await pilot.press("enter")
    return await until(pilot, lambda: isinstance(app.screen, ActionForm) and app.screen)


async def test_console_renews_the_certificate_and_installs_our_ca(csms: CentralSystem, waiter: EventWaiter, console: Console) -> None:
    app = await console(csms)
    async with app.run_test(size=SIZE) as pilot, running(base_url(csms), "SIM-CERT-UI") as sim:
        await pilot.press("2")
        await until(pilot, lambda: "SIM-CERT-UI" in str(app.screen.query_one("SyncedTable")._rows))
        await pilot.press("enter")
        state = await until(pilot, lambda: app.screen.query("#state") and app.screen.query_one("#state"))
        await until(pilot, lambda: "Certificate" in text_of(state) and "none" in text_of(state))

        installed = fresh(waiter)
        form = await pick(app, pilot, "renew_certificate")
        assert form.spec.title == "Renew Certificate"
        await pilot.press("enter")  # the form has no fields: Enter sends it
        event = await installed(lambda e: isinstance(e, evs.CertificateInstalled))
        await until(pilot, lambda: any("will send a certificate signing request" in str(n.message)
                                       for n in app._notifications))
        await until(pilot, lambda: f"serial {short_serial(event.serial)}" in text_of(app.screen.query_one("#state")))
        row = await csms.store.charger("SIM-CERT-UI")
        assert local_time(row["certificate_expiry"], True) in text_of(app.screen.query_one("#state"))
        assert sim.certificates.charge_point_chain == row["certificate_pem"]

        await pick(app, pilot, "install_operator_ca")
        await pilot.press("enter")
        await until(pilot, lambda: any("The operator CA is installed on SIM-CERT-UI" in str(n.message)
                                       for n in app._notifications))
        ca = await csms.operator_ca()
        assert [c.pem for c in sim.certificates.installed] == [ca.certificate_pem]
        assert {p for p in [n.message for n in app._notifications] if "{" in str(p)} == set()  # sentences, not dicts
        palette = [c.title for c in app.get_system_commands(app.screen)]
        assert "Renew Certificate · SIM-CERT-UI" in palette and "Install Our CA · SIM-CERT-UI" in palette
