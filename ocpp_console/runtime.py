"""Garbage-collector settings for a long-running process that shares one event loop.

A full (generation 2) collection walks every live object and stops the loop while it does:
measured with 1,000 chargers and the console in one process, pauses of up to 209 ms with
Python's defaults. Freezing what is alive after start-up and collecting the young generations
less often (more objects per pass, far fewer passes) brought the worst pause to ~45 ms and the
loop lag p99 from 114 ms to ~60 ms (bench/ui_latency.py).

A service (`serve`, no console in the process) with 10,000 chargers connected (issue 17): young
collections still paused the loop for 25-150 ms several times a minute, and they alone made the
tail: at 2,000 MeterValues/s the round-trip p99 was 22 ms with the collector off and 90-117 ms
with these thresholds. A young generation ten times larger, collected a tenth as often, gave a
p99 of 36-48 ms. The console keeps its own: with Textual's many long-lived objects in the same
process, the larger generations made single pauses of ~700 ms (bench/README.md, session 14).
"""

from __future__ import annotations

import gc

GC_THRESHOLDS = (5_000, 20, 50)  # a process with the console in it
SERVICE_GC_THRESHOLDS = (50_000, 20, 100)  # `serve`: the central system alone


def settle_heap(thresholds: tuple[int, int, int] = GC_THRESHOLDS) -> None:
    """Collect, then move every object alive now out of the collector's view (gc.freeze).

    Call it when a long-lived state has been built (after start-up, after a screen's first
    build): those objects stay alive, so walking them again in every full collection is waste.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*thresholds)
