"""Why an operator command did not get a normal answer; `outcome` is what the command log stores."""

from __future__ import annotations


class CommandError(Exception):
    outcome = "error"


class ChargerOffline(CommandError):
    """A charger we know (it is in the database) that is not connected now."""

    outcome = "offline"


class UnknownCharger(ChargerOffline):
    """No such charger in the database: never connected, not provisioned (a typo, most likely)."""

    outcome = "unknown_charger"


def offline_message(charger_id: str) -> str:
    """The one wording of the central system's log, the console, the API and `ocpp-console call`."""
    return f"{charger_id} is offline (known but not connected)"


def unknown_message(charger_id: str) -> str:
    return f"{charger_id} is an unknown charger (not in the database: never connected, not provisioned)"


class CommandTimeout(CommandError):
    outcome = "timeout"


class InvalidCommand(CommandError):
    """The request failed the OCPP schema or our own checks; nothing was sent."""

    outcome = "invalid"


class InvalidAnswer(CommandError):
    """The charger answered with a payload that breaks the OCPP schema."""

    outcome = "invalid_answer"


class CallErrorReceived(CommandError):
    outcome = "callerror"

    def __init__(self, code: str, description: str, details: object = None) -> None:
        super().__init__(f"{code}: {description}" if description else code)
        self.code = code
        self.description = description
        self.details = details
