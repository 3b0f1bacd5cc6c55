"""The table-path fields that read what `plait align` wrote: a streams config needs no `fields:`."""

from __future__ import annotations

from typing import Any

import polars as pl

from plait.align.spec import StreamsSpec


def fields_for(spec: StreamsSpec, table: pl.DataFrame) -> dict[str, dict[str, Any]]:
    """The table-path fields that read the aligned columns (the config's `fields:` when it has none)."""
    fields: dict[str, dict[str, Any]] = {}
    for s in spec.streams:
        if s.kind == "timeseries":
            fields[s.name] = {"kind": "timeseries", "channels": len(s.columns)}
        elif s.kind == "audio":
            fields[s.name] = {
                "kind": "audio",
                "offset_column": f"{s.name}__offset_s",
                "duration_column": f"{s.name}__duration_s",
                "max_seconds": s.duration_s,
            }
        elif s.kind == "tabular":
            columns = [f"{s.name}_{c}" for c in s.columns]
            numeric = [c for c in columns if table.schema[c].is_numeric()]
            fields[s.name] = {
                "kind": "tabular",
                "numeric": numeric,
                "categorical": [c for c in columns if c not in numeric],
            }
        else:
            fields[s.name] = {"kind": s.kind}
    return fields
