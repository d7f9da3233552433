"""Meter values as the specification defines them: defaults filled in, numbers in base units."""

from __future__ import annotations

import re
from collections.abc import Iterable
from decimal import Decimal, InvalidOperation
from typing import Any

from ocpp.v16.enums import Location, Measurand, ReadingContext, UnitOfMeasure, ValueFormat

from ocpp_console.store.models import SampledValue
from ocpp_console.timeutil import parse_charger_time

# kWh -> Wh and the like: arithmetic is always done in the base unit.
_SCALE = {
    UnitOfMeasure.kwh.value: (UnitOfMeasure.wh.value, 1000),
    UnitOfMeasure.kw.value: (UnitOfMeasure.w.value, 1000),
    UnitOfMeasure.kvarh.value: (UnitOfMeasure.varh.value, 1000),
    UnitOfMeasure.kvar.value: (UnitOfMeasure.var.value, 1000),
    UnitOfMeasure.kva.value: (UnitOfMeasure.va.value, 1000),
}


# Beyond this a reading is not a measurement (a terawatt-hour register, a broken meter): the text
# is kept, but no arithmetic or chart uses it.
ABSURD = Decimal("1e15")


# The defaults OCPP 1.6 gives a sampled value's optional fields (as plain strings: an enum's
# .value costs a descriptor call, four per sample).
_RAW = ValueFormat.raw.value
_SIGNED = ValueFormat.signed_data.value
_WH = UnitOfMeasure.wh.value
_ENERGY = Measurand.energy_active_import_register.value
_PERIODIC = ReadingContext.sample_periodic.value
_OUTLET = Location.outlet.value
# A plain decimal number, as meters send them: float() reads it exactly as Decimal would round it.
_PLAIN_NUMBER = re.compile(r"-?\d{1,15}(?:\.\d{1,15})?").fullmatch


def to_base_unit(value: str, unit: str) -> float | None:
    """The number in a sampled value, scaled to the base unit; None when it is not a usable number."""
    scale = _SCALE.get(unit)
    if scale is None and _PLAIN_NUMBER(value):
        return float(value)  # correctly rounded, as float(Decimal(value)); below ABSURD by its length
    try:
        number = Decimal(value.strip())
    except (InvalidOperation, AttributeError):
        return None
    if not number.is_finite():
        return None
    scaled = number * (scale[1] if scale else 1)
    if abs(scaled) >= ABSURD:
        return None
    return float(scaled)


def normalise(meter_values: Iterable[dict[str, Any]]) -> tuple[list[SampledValue], set[str]]:
    """Flatten OCPP meterValue objects (camelCase, as sent) into SampledValues and problems seen."""
    samples: list[SampledValue] = []
    problems: set[str] = set()
    for mv in meter_values:
        ts = parse_charger_time(mv.get("timestamp"))
        if ts.problem:
            problems.add(f"timestamp_{ts.problem}")
        for sv in mv.get("sampledValue", ()):
            fmt = sv.get("format", _RAW)
            unit = sv.get("unit", _WH)
            value = sv["value"]
            samples.append(
                SampledValue(
                    ts.value, value, sv.get("measurand", _ENERGY), unit, sv.get("context", _PERIODIC),
                    sv.get("location", _OUTLET), fmt, sv.get("phase"),
                    # SignedData is an opaque blob: stored, never parsed.
                    None if fmt == _SIGNED else to_base_unit(value, unit),
                )
            )
    return samples, problems
