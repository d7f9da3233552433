"""SQLite persistence: schema, migrations and every query."""

from ocpp_console.store.models import Frame, IdTagInfo, SampledValue
from ocpp_console.store.store import Store, StoreError

__all__ = ["Frame", "IdTagInfo", "SampledValue", "Store", "StoreError"]
