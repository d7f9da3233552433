"""A simple electric vehicle: ramps up, tapers near full, stops drawing at its target SoC."""

from __future__ import annotations

import random
from dataclasses import dataclass

# Typical battery sizes (Wh) and on-board charger limits (W) to draw random cars from.
BATTERIES_WH = (40_000.0, 52_000.0, 60_000.0, 77_000.0, 100_000.0)
ONBOARD_CHARGERS_W = (3_700.0, 7_400.0, 11_000.0, 22_000.0)


@dataclass(slots=True)
class EV:
    capacity_wh: float = 60_000.0
    soc: float = 30.0  # percent
    target_soc: float = 90.0  # the car stops drawing here (SuspendedEV)
    max_power_w: float = 11_000.0
    ramp_s: float = 60.0  # simulated seconds to reach full power after charging begins
    taper_soc: float = 80.0  # above this the battery accepts less and less (constant voltage phase)
    min_taper: float = 0.1  # the taper never goes below this fraction of max_power_w
    charging_s: float = 0.0  # simulated seconds the car has drawn power
    energy_wh: float = 0.0  # energy taken this session

    @property
    def full(self) -> bool:
        return self.soc >= self.target_soc

    def demand_w(self) -> float:
        """The power the car asks for right now."""
        if self.full:
            return 0.0
        ramp = 1.0 if self.ramp_s <= 0 else min(1.0, max(0.1, self.charging_s / self.ramp_s))
        taper = 1.0
        if self.soc > self.taper_soc and self.taper_soc < 100.0:
            taper = max(self.min_taper, (100.0 - self.soc) / (100.0 - self.taper_soc))
        return self.max_power_w * ramp * taper

    def absorb(self, energy_wh: float, seconds: float) -> None:
        """Energy delivered by the charger during `seconds` (simulated)."""
        if energy_wh <= 0:
            return
        self.charging_s += seconds
        self.energy_wh += energy_wh
        self.soc = min(100.0, self.soc + energy_wh / self.capacity_wh * 100.0)


def random_ev(rng: random.Random, max_power_w: float | None = None) -> EV:
    """A car as they arrive at a public charger: mostly half-empty, wanting 80-100 %."""
    power = rng.choice(ONBOARD_CHARGERS_W)
    if max_power_w is not None:
        power = min(power, max_power_w)
    soc = round(rng.uniform(10.0, 60.0), 1)
    return EV(
        capacity_wh=rng.choice(BATTERIES_WH),
        soc=soc,
        target_soc=float(rng.choice((80, 85, 90, 95, 100))),
        max_power_w=power,
        ramp_s=rng.uniform(20.0, 90.0),
    )
