"""A Remote Start followed to its end.

A charger that accepts RemoteStartTransaction has only promised to try: the transaction starts
when its StartTransaction comes, and it may never come (no car plugged in, the tag refused at
Authorize, the connector faulted). The follower watches the events after an accepted Remote Start
and publishes one of two outcomes: RemoteStartFollowed (the matching StartTransaction: same
charger and id tag, and the same connector when one was named) or, after `window` seconds without
one, RemoteStartUnanswered with the last refusal of that tag on that charger meanwhile.

It is headless (events in, events out), so the console, the HTTP API and the log can all say it.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from ocpp_console.csms import events as ev

log = logging.getLogger("ocpp_console.remote_start")

# Seconds an accepted Remote Start waits for its StartTransaction: the charger waits its
# ConnectionTimeOut for the driver to plug in, and a minute covers the usual values.
REMOTE_START_WINDOW = 60.0


@dataclass(eq=False)
class Watch:
    """One Remote Start, from before it is sent until its outcome."""

    charger_id: str
    id_tag: str
    connector_id: int | None
    accepted: bool = False  # the charger's answer came and was Accepted
    started: ev.TransactionStarted | None = None  # a StartTransaction may beat the answer's processing
    refusal: ev.IdTagRefused | None = None
    timer: asyncio.TimerHandle | None = field(default=None, repr=False)

    def matches(self, event: ev.TransactionStarted) -> bool:
        return (event.charger_id == self.charger_id and event.id_tag == self.id_tag
                and (self.connector_id in (None, 0) or event.connector_id == self.connector_id))


class RemoteStartFollower:
    def __init__(self, events: ev.EventBus, window: float = REMOTE_START_WINDOW) -> None:
        self.events = events
        self.window = window  # tests shorten it; the follow-up never sleeps on its own
        self._watches: list[Watch] = []
        # for the central system's life: it may be started again
        events.subscribe(self._on_event, (ev.TransactionStarted, ev.IdTagRefused))

    def watch(self, charger_id: str, id_tag: str, connector_id: int | None) -> Watch:
        """Start watching before the RemoteStartTransaction is sent: the charger's StartTransaction
        can be handled before its answer to us is."""
        watch = Watch(charger_id, id_tag, connector_id)
        self._watches.append(watch)
        return watch

    def answered(self, watch: Watch, status: str) -> None:
        """The charger answered: Accepted starts the wait (or ends it at once, if the transaction
        already came); anything else ends the watch, the answer says it all."""
        if status != "Accepted":
            self.drop(watch)
            return
        watch.accepted = True
        if watch.started is not None:
            self._followed(watch, watch.started)
        else:
            watch.timer = asyncio.get_running_loop().call_later(self.window, self._expire, watch)

    def drop(self, watch: Watch) -> None:
        if watch.timer is not None:
            watch.timer.cancel()
        if watch in self._watches:
            self._watches.remove(watch)

    def pending(self, charger_id: str | None = None) -> list[Watch]:
        return [w for w in self._watches if charger_id is None or w.charger_id == charger_id]

    def close(self) -> None:
        """The central system stops: no outcome is owed for what it can no longer see."""
        for watch in list(self._watches):
            self.drop(watch)

    def _on_event(self, event: ev.Event) -> None:
        if not self._watches:
            return
        if isinstance(event, ev.TransactionStarted):
            # the oldest Remote Start for this tag and charger takes it
            watch = next((w for w in self._watches if w.started is None and w.matches(event)), None)
            if watch is None:
                return
            if watch.accepted:
                self._followed(watch, event)
            else:
                watch.started = event
        elif isinstance(event, ev.IdTagRefused):
            for watch in self._watches:
                if watch.charger_id == event.charger_id and watch.id_tag == event.id_tag:
                    watch.refusal = event

    def _followed(self, watch: Watch, started: ev.TransactionStarted) -> None:
        self.drop(watch)
        outcome = ev.RemoteStartFollowed(watch.charger_id, watch.id_tag, started.transaction_id, started.connector_id,
                                         started.auth_status)
        log.info("%s: %s", watch.charger_id, outcome.sentence())
        self.events.publish(outcome)

    def _expire(self, watch: Watch) -> None:
        self.drop(watch)
        outcome = ev.RemoteStartUnanswered(watch.charger_id, watch.id_tag, watch.connector_id, self.window, watch.refusal)
        log.warning("%s: %s", watch.charger_id, outcome.sentence())
        self.events.publish(outcome)
