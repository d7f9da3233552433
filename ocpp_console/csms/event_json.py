"""Domain events as JSON objects, by type name: what the HTTP API's event stream carries.

`to_dict(event)` is `{"type": "<class name>", <every field>...}`; `from_dict` builds the same
event back (equal to the original). A field holding another event (RemoteStartUnanswered's
`refusal`) is nested the same way.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from ocpp_console.csms import events as ev


def _event_types() -> dict[str, type[ev.Event]]:
    found: dict[str, type[ev.Event]] = {}
    pending: list[type[ev.Event]] = [ev.Event]
    while pending:
        cls = pending.pop()
        for sub in cls.__subclasses__():
            if sub.__module__ == ev.__name__:  # not a test's own subclass
                found[sub.__name__] = sub
            pending.append(sub)
    return found


EVENT_TYPES: dict[str, type[ev.Event]] = _event_types()


def _nested(cls: type[ev.Event]) -> frozenset[str]:
    """Fields declared to hold an event (annotations are strings here: __future__ annotations)."""
    return frozenset(f.name for f in dataclasses.fields(cls)
                     if any(part.strip() in EVENT_TYPES for part in str(f.type).split("|")))


_NESTED = {name: _nested(cls) for name, cls in EVENT_TYPES.items()}


# Field names by class, looked up once: the stream encodes and decodes thousands of events a
# second at a busy site, and dataclasses.fields() builds its answer anew on every call.
_FIELDS: dict[type, tuple[str, ...]] = {}


def _names(cls: type[ev.Event]) -> tuple[str, ...]:
    names = _FIELDS.get(cls)
    if names is None:
        names = _FIELDS[cls] = tuple(f.name for f in dataclasses.fields(cls))
    return names


_NAME_SETS: dict[str, frozenset[str]] = {name: frozenset(_names(cls)) for name, cls in EVENT_TYPES.items()}


def to_dict(event: ev.Event) -> dict[str, Any]:
    out: dict[str, Any] = {"type": type(event).__name__}
    for name in _names(type(event)):
        value = getattr(event, name)
        out[name] = to_dict(value) if isinstance(value, ev.Event) else value
    return out


class UnknownEvent(ValueError):
    pass


def from_dict(data: dict[str, Any]) -> ev.Event:
    """The event `to_dict` made; UnknownEvent for a type this version does not know (a newer
    service), ValueError/TypeError for a malformed one."""
    name = data.get("type")
    cls = EVENT_TYPES.get(name) if isinstance(name, str) else None
    if cls is None:
        raise UnknownEvent(f"unknown event type {name!r}")
    kwargs: dict[str, Any] = {}
    names, nested = _NAME_SETS[cls.__name__], _NESTED[cls.__name__]
    for key, value in data.items():
        if key not in names:  # "type", or a field a newer service added: ignored, the rest still makes sense
            continue
        kwargs[key] = from_dict(value) if key in nested and isinstance(value, dict) else value
    return cls(**kwargs)
