"""Garbage-collector settings for a long-running process that shares one event loop.

A full (generation 2) collection walks every live object and stops the loop while it does:
measured with 1,000 chargers and the console in one process, pauses of up to 209 ms with
Python's defaults. Freezing what is alive after start-up and collecting the young generations
less often (more objects per pass, far fewer passes) brought the worst pause to ~45 ms and the
loop lag p99 from 114 ms to ~60 ms (bench/ui_latency.py).

With 10,000 chargers connected (issue 17) young collections still paused the loop for 25-150 ms
several times a minute, and they alone made the tail: 2,000 MeterValues/s with the collector off
had a round-trip p99 of 22 ms, with (5,000, 20, 50) 90-117 ms. A young generation ten times
larger, collected ten times less often: p99 45-48 ms (bench/README.md, session 14).
"""

from __future__ import annotations

import gc

GC_THRESHOLDS = (50_000, 20, 100)


def settle_heap() -> None:
    """Collect, then move every object alive now out of the collector's view (gc.freeze).

    Call it when a long-lived state has been built (after start-up, after a screen's first
    build): those objects stay alive, so walking them again in every full collection is waste.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
