"""The local HTTP API (aiohttp, in the central system's event loop)."""

from ocpp_console.api.server import ApiServer

__all__ = ["ApiServer"]
