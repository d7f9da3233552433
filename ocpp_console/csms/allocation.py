"""Sharing a site's grid connection between its charging sessions: a pure function of its inputs.

The load manager (csms/load.py) gathers the sessions, their chargers' limits and what the cars
draw, calls `allocate`, and sends each share to its charger as a TxProfile. Keeping the decision
pure makes it testable for every input (tests/test_allocation.py, a property test) and makes the
same inputs give the same allocation, so that nothing flaps between two runs.

Rules, in this order:
- A session whose charger refuses profiles is a fixed load at its maximum: it comes off the limit.
- No session gets a share between 0 and its minimum (6 A per phase, IEC 61851-1: below that a car
  stops or misbehaves). When the limit cannot give every session its minimum, some are paused at
  0 and take turns: a session that has run for a rotation period gives its place to the one that
  has waited longest.
- Under the "priority" policy a higher priority is admitted and filled first; under "equal" every
  session is alike.
- What is left after the minimums is shared out equally (water-filling), no session above its cap:
  its charger's maximum, or less when its car has been drawing much less (headroom a car does not
  use goes to the others).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

Policy = Literal["equal", "priority"]
MIN_AMPS = 6.0  # per phase, IEC 61851-1


@dataclass(frozen=True, slots=True)
class Demand:
    """One charging session, as the allocator sees it."""

    key: int  # the transaction id
    max_w: float  # its charger's (or connector's, or cable's) maximum
    min_w: float  # the least its car accepts while charging (MIN_AMPS x voltage x phases)
    cap_w: float | None = None  # less than max_w when the car has been drawing less; None: max_w
    priority: int = 0  # higher first, under the "priority" policy
    fixed: bool = False  # its charger refuses profiles: counted at max_w, never controlled
    running_since: float | None = None  # when its current turn began (None: paused or new)
    paused_since: float | None = None  # when it was paused for lack of room (None: not paused)


@dataclass(frozen=True, slots=True)
class Share:
    key: int
    watts: float  # 0: paused
    reason: str  # why this much: "share", "cap", "max", "paused: ...", "fixed load"
    next_turn_at: float | None = None  # a paused session: when a running one's turn is over


@dataclass(frozen=True, slots=True)
class Allocation:
    limit_w: float
    shares: dict[int, Share] = field(default_factory=dict)

    @property
    def allocated_w(self) -> float:
        return sum(share.watts for share in self.shares.values())


def allocate(demands: Sequence[Demand], limit_w: float, *, policy: Policy = "equal", now: float = 0.0,
             rotation_s: float = 900.0) -> Allocation:
    """Each session's share of `limit_w`. Deterministic: the same inputs give the same shares."""
    ordered = sorted(demands, key=lambda d: d.key)  # whatever order the caller gathered them in
    shares: dict[int, Share] = {}
    fixed = [d for d in ordered if d.fixed]
    for d in fixed:
        shares[d.key] = Share(d.key, d.max_w, "fixed load")
    room = limit_w - sum(d.max_w for d in fixed)
    controlled = [d for d in ordered if not d.fixed]

    admitted: list[Demand] = []
    paused: list[Demand] = []
    used = 0.0
    for d in sorted(controlled, key=lambda d: _turn_order(d, policy, now, rotation_s)):
        floor = _floor(d)
        if floor > 0 and used + floor <= room + 1e-9:
            admitted.append(d)
            used += floor
        else:
            paused.append(d)

    for key, watts, reason in _fill(admitted, max(room, 0.0) - used, policy):
        shares[key] = Share(key, watts, reason)
    next_turn = _next_turn(admitted, now, rotation_s)
    for d in paused:
        why = "paused: no room (the limit is taken by fixed loads)" if room <= 0 else "paused: waiting for its turn"
        if _floor(d) <= 0:
            why = "paused: its maximum is 0"
        shares[d.key] = Share(d.key, 0.0, why, next_turn if room > 0 and _floor(d) > 0 else None)
    return Allocation(limit_w, dict(sorted(shares.items())))


def _cap(d: Demand) -> float:
    cap = d.max_w if d.cap_w is None else min(d.cap_w, d.max_w)
    return max(cap, 0.0)


def _floor(d: Demand) -> float:
    """What admitting the session costs: its car's minimum (or less, if its charger cannot give
    even that: then its maximum, which is all it can ever draw)."""
    return min(d.min_w, d.max_w) if d.max_w > 0 else 0.0


def _turn_order(d: Demand, policy: Policy, now: float, rotation_s: float) -> tuple[float, int, float, int]:
    """Who is admitted first: higher priority (under "priority"); then sessions within their turn
    (longest running first, so that a turn is not cut short), then those waiting (longest first),
    then those whose turn is over; ties by transaction id."""
    priority = -d.priority if policy == "priority" else 0
    if d.running_since is not None and now - d.running_since < rotation_s:
        return (priority, 0, d.running_since, d.key)
    if d.running_since is None:
        return (priority, 1, d.paused_since if d.paused_since is not None else now, d.key)
    return (priority, 2, d.running_since, d.key)


def _fill(admitted: list[Demand], spare: float, policy: Policy) -> list[tuple[int, float, str]]:
    """Minimums first, then the spare shared equally up to each cap (priority tiers in turn)."""
    given = {d.key: _floor(d) for d in admitted}
    tiers: dict[int, list[Demand]] = {}
    for d in admitted:
        tiers.setdefault(d.priority if policy == "priority" else 0, []).append(d)
    for _, tier in sorted(tiers.items(), key=lambda item: -item[0]):
        spare = _water_fill(tier, given, spare)
    result = []
    for d in admitted:
        watts = given[d.key]
        reason = "max" if watts >= d.max_w - 1e-6 else "cap" if watts >= _cap(d) - 1e-6 else "share"
        result.append((d.key, watts, reason))
    return result


def _water_fill(tier: list[Demand], given: dict[int, float], spare: float) -> float:
    """Raise every session of the tier by the same amount until the spare is gone or each is at
    its cap; what is left is returned (for the next tier)."""
    open_ = sorted((d for d in tier if given[d.key] < _cap(d)), key=lambda d: (_cap(d) - given[d.key], d.key))
    while open_ and spare > 1e-9:
        headroom = _cap(open_[0]) - given[open_[0].key]
        step = min(headroom, spare / len(open_))
        for d in open_:
            given[d.key] += step
        spare -= step * len(open_)
        open_ = [d for d in open_ if given[d.key] < _cap(d) - 1e-9]
    return max(spare, 0.0)


def _next_turn(admitted: list[Demand], now: float, rotation_s: float) -> float | None:
    """When the first running session's turn ends (a paused one may then take its place)."""
    ends = [d.running_since + rotation_s for d in admitted if d.running_since is not None]
    return max(min(ends), now) if ends else now + rotation_s
