"""Why an operator command did not get a normal answer; `outcome` is what the command log stores."""

from __future__ import annotations


class CommandError(Exception):
    outcome = "error"


class ChargerOffline(CommandError):
    outcome = "offline"


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
