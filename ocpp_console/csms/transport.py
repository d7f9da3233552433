"""Writing a frame to a charger's WebSocket without the per-message machinery when nothing is in the way.

`websockets`' `Connection.send` wraps every message in an async context manager that checks the
state, writes, and waits for the buffer to drain. For a short text frame on an open connection
whose buffer is below its high-water mark, that is the frame built by the protocol object and one
`transport.write`; doing just that saves a few microseconds per answer (issue 17). In every
other case (closing, flow control paused, a fragmented message being sent, a `websockets` whose
connection lacks these attributes) the caller uses `send`, which waits or raises as usual.
"""

from __future__ import annotations

from typing import Any

from websockets.protocol import State

_MISSING = object()


def send_now(connection: Any, message: str) -> bool:
    """Write `message` as a text frame at once and return True, or return False for `send` to do it."""
    if (getattr(connection, "send_in_progress", _MISSING) is not None
            or getattr(connection, "paused", True)
            or connection.protocol.state is not State.OPEN
            or connection.transport.is_closing()):
        return False
    connection.protocol.send_text(message.encode())
    connection.send_data()
    return True
