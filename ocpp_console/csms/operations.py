"""Every central-system-initiated OCPP 1.6 operation by name, run from an OCPP JSON payload.

The HTTP API and `ocpp-console call` speak OCPP payloads (camelCase JSON, as on the wire);
this module checks one against the official request schema and hands it to the matching
`Commands` method, so that what a command changes is stored exactly as when the console sends it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ocpp.v16.enums import Action

from ocpp_console.csms import protocol
from ocpp_console.csms.errors import InvalidCommand

if TYPE_CHECKING:
    from ocpp_console.csms.commands import Commands

# OCPP 1.6 (Core, Firmware Management, Local Auth List Management, Reservation, Smart Charging,
# Remote Trigger) and the 1.6 security extension, central system to charge point.
CENTRAL_SYSTEM_ACTIONS: tuple[Action, ...] = (
    Action.cancel_reservation,
    Action.change_availability,
    Action.change_configuration,
    Action.clear_cache,
    Action.clear_charging_profile,
    Action.data_transfer,
    Action.get_composite_schedule,
    Action.get_configuration,
    Action.get_diagnostics,
    Action.get_local_list_version,
    Action.remote_start_transaction,
    Action.remote_stop_transaction,
    Action.reserve_now,
    Action.reset,
    Action.send_local_list,
    Action.set_charging_profile,
    Action.trigger_message,
    Action.unlock_connector,
    Action.update_firmware,
    # security extension
    Action.certificate_signed,
    Action.delete_certificate,
    Action.extended_trigger_message,
    Action.get_installed_certificate_ids,
    Action.get_log,
    Action.install_certificate,
    Action.signed_update_firmware,
)

# Payload fields whose Commands argument is named differently.
_RENAMED = {Action.get_configuration: {"key": "keys"}}


def kebab(name: str) -> str:
    """RemoteStartTransaction -> remote-start-transaction."""
    return re.sub(r"(?<!^)(?=[A-Z])", "-", name).lower()


@dataclass(frozen=True)
class Operation:
    action: Action

    @property
    def name(self) -> str:
        return self.action.value

    @property
    def path_name(self) -> str:
        return kebab(self.action.value)

    @property
    def method(self) -> str:
        return self.path_name.replace("-", "_")

    @property
    def request_schema(self) -> str:
        return self.action.value

    @property
    def response_schema(self) -> str:
        return f"{self.action.value}Response"


OPERATIONS: dict[str, Operation] = {kebab(a.value): Operation(a) for a in CENTRAL_SYSTEM_ACTIONS}


def find(name: str) -> Operation | None:
    """An operation by its kebab-case name (remote-start-transaction) or its OCPP name."""
    return OPERATIONS.get(name) or OPERATIONS.get(kebab(name))


def check_payload(operation: Operation, payload: Any) -> None:
    """Raise InvalidCommand, saying what is wrong, unless `payload` fits the request schema."""
    if not isinstance(payload, dict):
        raise InvalidCommand(f"{operation.name}: the payload must be a JSON object")
    try:
        protocol.validate_outgoing(operation.request_schema, payload)
    except protocol.FrameError as exc:
        raise InvalidCommand(f"{operation.name}: {_readable(exc.error.description)}") from None


def _readable(description: str) -> str:
    """fastjsonschema says "data: data must contain ['type'] properties"; say "payload must ..."."""
    field, _, message = description.partition(": ")
    if field == "data":
        return message.replace("data ", "payload ", 1)
    return f"{field}: {message.replace('data.', '', 1)}"


def answer_payload(result: Any) -> dict[str, Any]:
    """A charger's answer (an ocpp call_result) as OCPP JSON, as it sent it."""
    return protocol.as_payload(result)


def needs_reservation_id(operation: Operation, payload: Any) -> bool:
    """A ReserveNow without its reservationId: the central system takes the next free one (the
    operator has no way to know which numbers the site's reservations already use)."""
    return operation.action == Action.reserve_now and isinstance(payload, dict) and "reservationId" not in payload


async def execute(commands: Commands, charger_id: str, operation: Operation, payload: dict[str, Any]) -> dict[str, Any]:
    """Send one operation to a charger; its answer as an OCPP payload. Raises CommandError."""
    payload = await commands.csms.hosted_payload(charger_id, operation.name, payload)
    allocated = needs_reservation_id(operation, payload)
    if allocated:
        payload = {**payload, "reservationId": await commands.store.next_reservation_id()}
    check_payload(operation, payload)
    renamed = _RENAMED.get(operation.action, {})
    kwargs = {renamed.get(k, protocol.snake_key(k)): v for k, v in payload.items()}
    result = await getattr(commands, operation.method)(charger_id, **kwargs)
    answer = answer_payload(result)
    if allocated:  # the answer says which number the reservation got, to cancel it later
        answer["reservationId"] = payload["reservationId"]
    return answer
