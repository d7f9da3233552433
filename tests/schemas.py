"""Independent check of payloads against the official OCPP 1.6 JSON schemas (jsonschema, Draft 4)."""

from __future__ import annotations

import json
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

import ocpp
from jsonschema import Draft4Validator, FormatChecker

SCHEMAS = Path(ocpp.__file__).parent / "v16" / "schemas"
_formats = FormatChecker()


@_formats.checks("date-time", raises=ValueError)
def _date_time(value: object) -> bool:
    if not isinstance(value, str):
        return True
    # RFC 3339 needs a time zone; fromisoformat would accept a naive time.
    return datetime.fromisoformat(value).tzinfo is not None


@cache
def validator(name: str) -> Draft4Validator:
    return Draft4Validator(json.loads(SCHEMAS.joinpath(f"{name}.json").read_text("utf-8-sig")), format_checker=_formats)


def assert_valid_response(action: str, payload: dict[str, Any]) -> None:
    errors = [e.message for e in validator(f"{action}Response").iter_errors(payload)]
    assert not errors, f"{action}Response {payload} invalid: {errors}"
