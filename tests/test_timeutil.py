"""now_iso: the central system's own time, formatted from a cached second and millisecond."""

from __future__ import annotations

import re
import time
from datetime import datetime, timezone

from ocpp_console.timeutil import now_iso

CANONICAL = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


def test_now_iso_is_the_clock_in_canonical_form_and_never_goes_back() -> None:
    seen = []
    deadline = time.monotonic() + 1.2  # across at least one second's change
    while time.monotonic() < deadline:
        before = datetime.now(timezone.utc)
        text = now_iso()
        after = datetime.now(timezone.utc)
        assert CANONICAL.fullmatch(text), text
        at = datetime.fromisoformat(text.replace("Z", "+00:00"))
        assert before.replace(microsecond=before.microsecond // 1000 * 1000) <= at <= after
        seen.append(text)
    assert seen == sorted(seen)
    assert len({t[:19] for t in seen}) >= 2 and len(set(seen)) > 100  # seconds and milliseconds move
