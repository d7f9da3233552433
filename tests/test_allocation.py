"""The allocator (csms/allocation.py) for any set of sessions, limits and priorities: the sum never
exceeds the limit, no running session is between 0 and its minimum, nobody gets more than its
charger's maximum, the same inputs give the same allocation, and what is not needed is not kept
from a session that could use it."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from ocpp_console.csms.allocation import Demand, allocate

EPS = 1e-6
MIN_3P = 6 * 230 * 3  # 4,140 W
MIN_1P = 6 * 230


@st.composite
def demands(draw: st.DrawFn) -> list[Demand]:
    count = draw(st.integers(0, 14))
    keys = draw(st.lists(st.integers(1, 10_000), min_size=count, max_size=count, unique=True))
    result = []
    for key in keys:
        max_w = draw(st.sampled_from([0.0, 3_700.0, 7_400.0, 11_000.0, 22_000.0, 50_000.0]) | st.floats(0, 60_000))
        result.append(Demand(
            key=key, max_w=max_w, min_w=draw(st.sampled_from([MIN_3P, MIN_1P])),
            cap_w=draw(st.none() | st.floats(0, 60_000)),
            priority=draw(st.integers(0, 3)),
            fixed=draw(st.booleans().map(lambda b: b and draw(st.integers(0, 4)) == 0)),
            running_since=draw(st.none() | st.floats(0, 10_000)),
            paused_since=draw(st.none() | st.floats(0, 10_000)),
        ))
    return result


limits = st.floats(0, 200_000)
policies = st.sampled_from(["equal", "priority"])
nows = st.floats(0, 20_000)


@settings(max_examples=400, deadline=None)
@given(demands(), limits, policies, nows)
def test_never_over_the_limit_never_below_a_minimum(ds: list[Demand], limit: float, policy: str, now: float) -> None:
    result = allocate(ds, limit, policy=policy, now=now)  # type: ignore[arg-type]
    assert set(result.shares) == {d.key for d in ds}
    fixed = sum(d.max_w for d in ds if d.fixed)
    controlled = sum(result.shares[d.key].watts for d in ds if not d.fixed)
    assert controlled <= max(limit - fixed, 0.0) + EPS  # the whole site stays under the limit
    if fixed <= limit:
        assert result.allocated_w <= limit + EPS
    for d in ds:
        watts = result.shares[d.key].watts
        assert watts <= d.max_w + EPS
        if not d.fixed:
            assert watts == 0 or watts >= min(d.min_w, d.max_w) - EPS, (d, watts)


@settings(max_examples=200, deadline=None)
@given(demands(), limits, policies, nows, st.randoms(use_true_random=False))
def test_same_inputs_same_allocation(ds: list[Demand], limit: float, policy: str, now: float, rng: random.Random) -> None:
    first = allocate(ds, limit, policy=policy, now=now)  # type: ignore[arg-type]
    shuffled = list(ds)
    rng.shuffle(shuffled)
    assert allocate(shuffled, limit, policy=policy, now=now) == first  # type: ignore[arg-type]


@settings(max_examples=300, deadline=None)
@given(demands(), limits, policies, nows)
def test_no_room_kept_from_a_session_that_could_use_it(ds: list[Demand], limit: float, policy: str, now: float) -> None:
    """Work-conserving: if an admitted session is below its cap, the limit is used up; and a session
    is only paused when its minimum does not fit beside the others."""
    result = allocate(ds, limit, policy=policy, now=now)  # type: ignore[arg-type]
    room = limit - sum(d.max_w for d in ds if d.fixed)
    controlled = [d for d in ds if not d.fixed]
    used = sum(result.shares[d.key].watts for d in controlled)
    for d in controlled:
        watts = result.shares[d.key].watts
        cap = min(d.max_w, d.cap_w if d.cap_w is not None else d.max_w)
        if 0 < watts < cap - EPS:
            assert used >= room - 1e-3, (d, watts, used, room)
        if watts == 0 and d.max_w > 0:
            assert used + min(d.min_w, d.max_w) > room - EPS  # it did not fit


def test_six_cars_at_22_kw_under_40_kw_take_turns() -> None:
    ds = [Demand(key=k, max_w=22_000, min_w=MIN_3P) for k in range(1, 7)]
    first = allocate(ds, 40_000, now=0, rotation_s=600)
    running = [s for s in first.shares.values() if s.watts > 0]
    assert len(running) == 6 and abs(first.allocated_w - 40_000) < EPS  # 6 x 4,140 = 24,840 fits: all run
    tight = allocate(ds, 20_000, now=0, rotation_s=600)
    running = sorted(k for k, s in tight.shares.items() if s.watts > 0)
    assert running == [1, 2, 3, 4]  # 4 x 4,140 = 16,560; a fifth does not fit
    assert all(tight.shares[k].watts == 5_000 for k in running)
    assert tight.shares[5].reason == "paused: waiting for its turn" and tight.shares[5].next_turn_at == 600

    # ten minutes later the running ones' turn is over: the two that waited go first
    later = [Demand(key=d.key, max_w=d.max_w, min_w=d.min_w,
                    running_since=0.0 if d.key <= 4 else None, paused_since=None if d.key <= 4 else 0.0) for d in ds]
    turn = allocate(later, 20_000, now=600, rotation_s=600)
    assert sorted(k for k, s in turn.shares.items() if s.watts > 0) == [1, 2, 5, 6]


def test_priority_first_then_equal() -> None:
    ds = [Demand(key=1, max_w=22_000, min_w=MIN_3P, priority=1), Demand(key=2, max_w=22_000, min_w=MIN_3P, priority=1),
          Demand(key=3, max_w=22_000, min_w=MIN_3P)]
    shares = allocate(ds, 30_000, policy="priority").shares
    assert shares[3].watts == MIN_3P  # the visitor keeps its minimum; the vans share the rest
    assert shares[1].watts == shares[2].watts == (30_000 - MIN_3P) / 2
    equal = allocate(ds, 30_000, policy="equal").shares
    assert equal[1].watts == equal[2].watts == equal[3].watts == 10_000


def test_headroom_a_car_does_not_use_goes_to_the_others() -> None:
    ds = [Demand(key=1, max_w=22_000, min_w=MIN_3P, cap_w=5_000), Demand(key=2, max_w=22_000, min_w=MIN_3P)]
    shares = allocate(ds, 30_000).shares
    assert shares[1].watts == 5_000 and shares[1].reason == "cap"
    assert shares[2].watts == 22_000 and shares[2].reason == "max"


def test_a_charger_that_refuses_profiles_is_a_fixed_load() -> None:
    ds = [Demand(key=1, max_w=22_000, min_w=MIN_3P, fixed=True), Demand(key=2, max_w=22_000, min_w=MIN_3P)]
    shares = allocate(ds, 30_000).shares
    assert shares[1].watts == 22_000 and shares[1].reason == "fixed load"
    assert shares[2].watts == 8_000
    squeezed = allocate(ds, 25_000).shares
    assert squeezed[2].watts == 0 and squeezed[2].reason.startswith("paused")
