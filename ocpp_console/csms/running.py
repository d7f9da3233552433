"""Running transactions as the operator sees them: live energy, power, SoC and the cost so far.

One read model for the console's Transactions screen (kept up to date from events, ui/live.py)
and the HTTP API's `GET /api/transactions?running=true` (loaded from the database on each
request), so that both show the same figures from the same code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ocpp_console.csms.billing import ENERGY, POWER, Tariff, running_settlement
from ocpp_console.store.models import Row
from ocpp_console.timeutil import now_iso

if TYPE_CHECKING:
    from ocpp_console.store import Store

SOC = "SoC"


@dataclass
class RunningTx:
    id: int
    charger_id: str
    connector_id: int
    id_tag: str
    meter_start: int
    started: str
    energy_wh: float = 0.0
    power_w: float | None = None
    soc: float | None = None
    tariff: Tariff | None = None
    received: str = ""  # our time of its StartTransaction (the charger's clock is `started`)

    @classmethod
    def from_row(cls, row: Row) -> RunningTx:
        return cls(
            row["id"], row["charger_id"], row["connector_id"], row["id_tag"], row["meter_start"],
            row["start_timestamp"], tariff=Tariff.from_json(row["tariff"]) if row["tariff"] else None,
            received=row["started_at"],
        )

    def apply(self, values: dict[str, float]) -> None:
        """The newest meter values of its connector (measurand -> value in the base unit)."""
        if ENERGY in values:
            self.energy_wh = max(0.0, values[ENERGY] - self.meter_start)
        if POWER in values:
            self.power_w = values[POWER]
        self.soc = values.get(SOC, self.soc)

    def cost_so_far(self, now: str | None = None) -> int | None:
        """The session priced as if it stopped now (minor units), from its tariff snapshot, by
        settlement's own code (billing.running_settlement)."""
        if self.tariff is None:
            return None
        register = self.meter_start + int(self.energy_wh)
        return running_settlement(self.tariff, self.started, self.meter_start, [], now or now_iso(), register).total


async def load_running(store: Store, rows: list[Row] | None = None) -> dict[int, RunningTx]:
    """The open transactions (or those of `rows` that are open) with their newest meter values."""
    if rows is None:
        rows = await store.transactions(running=True)
    running = {row["id"]: RunningTx.from_row(row) for row in rows if row["stopped_at"] is None}
    for sample in await store.latest_samples(list(running)):
        running[sample["transaction_id"]].apply({sample["measurand"]: sample["value_num"]})
    return running
