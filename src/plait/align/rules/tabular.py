"""Tabular rule: the entity's latest attributes as of the anchor — an as-of join backward by key.

A record stamped exactly at the anchor time applies to that anchor (the change has happened).
`tolerance_s` bounds the age of the record only when it is > 0 (inclusive: a record exactly
`tolerance_s` old is used); `tolerance_s: 0` means no limit, which is what a slowly changing table
(an asset register updated once a month) usually wants. No record at or before the anchor, or one
older than the limit, makes the field absent: a later record is never used for an earlier anchor.

A stream without a key (`key: null`) is one shared table: it matches every anchor.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import polars as pl

from plait.align.frames import (
    ANCHOR,
    KEY,
    T_US,
    RuleContext,
    RuleOutput,
    found_or_absent,
    seconds_to_us,
)
from plait.align.rules.kind import StreamKind
from plait.errors import ConfigError

if TYPE_CHECKING:
    from plait.align.spec import StreamSpec

_T = "_record_t_us"


def align_tabular(
    stream: pl.DataFrame, anchors: pl.DataFrame, spec: StreamSpec, ctx: RuleContext
) -> RuleOutput:
    s = spec.name
    names = [f"{s}_{c}" for c in spec.columns]
    key = pl.lit("", dtype=pl.Utf8).alias(KEY) if spec.key is None else pl.col(KEY).cast(pl.Utf8)
    left = anchors.select(pl.col(ANCHOR), key, pl.col(T_US))
    records = stream.select(
        pl.col(KEY),
        pl.col(T_US).alias(_T),
        *(pl.col(c).alias(n) for c, n in zip(spec.columns, names, strict=True)),
    )
    # Both sides are sorted by time within each entity (frames.py); polars cannot check it with `by`.
    joined = left.join_asof(
        records, left_on=T_US, right_on=_T, by=KEY, strategy="backward", check_sortedness=False
    )
    age = pl.col(T_US) - pl.col(_T)
    found = pl.col(_T).is_not_null()
    if spec.tolerance_s > 0:
        found = found & (age <= seconds_to_us(spec.tolerance_s))
    out = joined.sort(ANCHOR).select(
        *found_or_absent(s, found, age),
        # `otherwise(None)` keeps each attribute's own dtype (a null of that type).
        *(pl.when(found).then(pl.col(n)).otherwise(None).alias(n) for n in names),
    )
    too_old = int((joined[_T].is_not_null() & ~joined.select(found).to_series()).sum())
    return RuleOutput(columns=out, details={"too_old": too_old})


def _check(spec: StreamSpec, path: str) -> None:
    if not spec.columns:
        raise ConfigError(f"{path}.columns: list the attribute columns to carry into the samples")


def _field(spec: StreamSpec, table: pl.DataFrame) -> dict[str, Any]:
    """The attribute columns, numeric or categorical as the sample table's dtypes say."""
    columns = [f"{spec.name}_{c}" for c in spec.columns]
    numeric = [c for c in columns if table.schema[c].is_numeric()]
    return {"kind": spec.kind, "numeric": numeric, "categorical": [c for c in columns if c not in numeric]}


TABULAR = StreamKind(name="tabular", align=align_tabular, check=_check, field_spec=_field, averages=True)
