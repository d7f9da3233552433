"""The bare-library baseline: a minimal OCPP 1.6J central system written with the `ocpp` package,
answering the benchmark's messages and storing nothing. Kept minimal and honest: the library's
defaults, no tuning either way.

    python bench/baseline.py --port 9100
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import logging
import signal
from datetime import datetime, timezone

import websockets
from ocpp.routing import on
from ocpp.v16 import ChargePoint, call_result
from ocpp.v16.enums import Action, AuthorizationStatus, RegistrationStatus

_tx_ids = itertools.count(1)


def now() -> str:
    return datetime.now(timezone.utc).isoformat()


class BaselineChargePoint(ChargePoint):
    @on(Action.boot_notification)
    def on_boot(self, **_: object) -> call_result.BootNotification:
        return call_result.BootNotification(current_time=now(), interval=300, status=RegistrationStatus.accepted)

    @on(Action.heartbeat)
    def on_heartbeat(self, **_: object) -> call_result.Heartbeat:
        return call_result.Heartbeat(current_time=now())

    @on(Action.status_notification)
    def on_status(self, **_: object) -> call_result.StatusNotification:
        return call_result.StatusNotification()

    @on(Action.meter_values)
    def on_meter_values(self, **_: object) -> call_result.MeterValues:
        return call_result.MeterValues()

    @on(Action.start_transaction)
    def on_start(self, **_: object) -> call_result.StartTransaction:
        return call_result.StartTransaction(transaction_id=next(_tx_ids), id_tag_info={"status": AuthorizationStatus.accepted})

    @on(Action.stop_transaction)
    def on_stop(self, **_: object) -> call_result.StopTransaction:
        return call_result.StopTransaction()


async def handler(connection: websockets.ServerConnection) -> None:
    cp = BaselineChargePoint(connection.request.path.strip("/"), connection)
    try:
        await cp.start()
    except websockets.ConnectionClosed:
        pass


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9100)
    args = parser.parse_args()
    logging.getLogger("ocpp").setLevel(logging.WARNING)
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    async with websockets.serve(handler, args.host, args.port, subprotocols=["ocpp1.6"]):
        print("listening", flush=True)
        await stop.wait()


if __name__ == "__main__":
    asyncio.run(main())
