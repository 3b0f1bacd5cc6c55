"""JSON has no NaN or infinity: `finite(value)` turns such numbers into null, anywhere in a value
made of dicts, lists, tuples and scalars. The common case — every number finite — costs one C-level
`json.dumps` check and returns the value itself."""

from __future__ import annotations

import json
import math
from typing import Any


def finite(value: Any) -> Any:
    try:
        json.dumps(value, allow_nan=False)
    except ValueError:
        return _scrub(value)
    return value


def _scrub(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _scrub(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub(v) for v in value]
    return value
