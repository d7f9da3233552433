"""ocpp-console: an OCPP 1.6J central system with a terminal console, stored in SQLite."""

__version__ = "0.1.0"
