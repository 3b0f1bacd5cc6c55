"""The table-path fields that read what `plait align` wrote: a streams config needs no `fields:`."""

from __future__ import annotations

from typing import Any

import polars as pl

from plait.align.rules import STREAM_KINDS
from plait.align.spec import StreamsSpec


def fields_for(spec: StreamsSpec, table: pl.DataFrame) -> dict[str, dict[str, Any]]:
    """The table-path fields that read the aligned columns (the config's `fields:` when it has none);
    each stream's kind says what its field is."""
    return {s.name: STREAM_KINDS.get(s.kind).field_spec(s, table) for s in spec.streams}
