"""A connector's energy meter: an import register in Wh that only ever grows."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(slots=True)
class Meter:
    energy_wh: float = 0.0  # kept fractional so short ticks add up; reported as whole Wh
    nominal_voltage: float = 230.0
    phases: int = 3
    power_w: float = 0.0  # what flows right now

    @property
    def register_wh(self) -> int:
        """The register as a meter shows it: whole Wh, rounded down, never decreasing."""
        return math.floor(self.energy_wh)

    def advance(self, power_w: float, seconds: float) -> float:
        """Let `power_w` flow for `seconds`; returns the energy added in Wh."""
        self.power_w = max(0.0, power_w)
        if seconds <= 0:
            return 0.0
        added = self.power_w * seconds / 3600.0
        self.energy_wh += added
        return added

    def current_a(self, voltage: float | None = None) -> float:
        """Current per phase for the present power."""
        v = voltage or self.nominal_voltage
        return self.power_w / (v * self.phases) if v > 0 and self.phases > 0 else 0.0
