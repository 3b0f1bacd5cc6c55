"""Text rule: the lines (rows) of the anchor's entity stamped in `[anchor − window_s, anchor)` —
a line exactly `window_s` before the anchor is in, a line at the anchor itself is not — joined in
time order with "\\n". `{s}__lines` counts them (0 when absent); `{s}__dt_s` is the age of the latest
line used. No line in the window makes the field absent. A null text is not a line.

A window never bridges two clock segments: when the lines in it come from more than one segment,
only those of the latest line's segment are used, and the others are counted (`other_segment`).

Vectorised: two as-of joins find, per anchor, the row index of the first line at or after the
window start and of the last line before the anchor (rows of one entity are contiguous and sorted,
so the window is that index range); the ranges are exploded and the texts gathered and joined.

A stream without a key (`key: null`) is one shared log: it matches every anchor.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import polars as pl

from plait.align.frames import (
    ANCHOR,
    KEY,
    SEGMENT,
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

_ROW, _FIRST, _LAST, _START, _TL, _SEG = "_row", "_first", "_last", "_start", "_t_last", "_seg"


def align_text(stream: pl.DataFrame, anchors: pl.DataFrame, spec: StreamSpec, ctx: RuleContext) -> RuleOutput:
    s = spec.name
    if spec.window_s is None or spec.window_s <= 0 or len(spec.columns) != 1:
        raise ConfigError(
            f"streams.sources.{s}: a text stream needs window_s > 0 and exactly one text column"
        )
    column = spec.columns[0]
    lines = _lines(stream, column)
    windows = _windows(lines, anchors, spec.key is None, seconds_to_us(spec.window_s))
    used = _gather(lines, windows)
    joined = windows.join(used, on=ANCHOR, how="left").sort(ANCHOR)
    found = pl.col("_text").is_not_null()
    out = joined.select(
        *found_or_absent(s, found, pl.col(T_US) - pl.col(_TL)),
        pl.col("_text").cast(pl.Utf8).alias(s),
        pl.col("_n").fill_null(0).cast(pl.Int32).alias(f"{s}__lines"),
    )
    in_window = windows.select(
        (pl.col(_LAST) - pl.col(_FIRST) + 1).clip(lower_bound=0).fill_null(0).sum()
    ).item()
    details = {
        "null_lines": stream.height - lines.height,
        "other_segment": int(in_window) - int(out[f"{s}__lines"].sum()),
    }
    return RuleOutput(columns=out, details=details)


def _lines(stream: pl.DataFrame, column: str) -> pl.DataFrame:
    """Non-null lines, numbered 0..n-1 in (key, t_us) order."""
    segment = pl.col(SEGMENT) if SEGMENT in stream.columns else pl.lit(0, dtype=pl.Int32)
    return (
        stream.filter(pl.col(column).is_not_null())
        .select(pl.col(KEY), pl.col(T_US), segment.alias(_SEG), pl.col(column).cast(pl.Utf8).alias("_text"))
        .with_row_index(_ROW)
        .with_columns(pl.col(_ROW).cast(pl.Int64))
    )


def _windows(lines: pl.DataFrame, anchors: pl.DataFrame, keyless: bool, window: int) -> pl.DataFrame:
    """Per anchor: row index of the first line ≥ window start and of the last line < anchor, and
    the time and segment of that last line (nulls when the entity has no such line)."""
    key = pl.lit("", dtype=pl.Utf8).alias(KEY) if keyless else pl.col(KEY).cast(pl.Utf8)
    left = anchors.select(pl.col(ANCHOR), key, pl.col(T_US), (pl.col(T_US) - window).alias(_START))
    last = lines.select(pl.col(KEY), pl.col(T_US).alias(_TL), pl.col(_ROW).alias(_LAST), pl.col(_SEG))
    first = lines.select(pl.col(KEY), pl.col(T_US).alias("_t_first"), pl.col(_ROW).alias(_FIRST))
    # Both sides are sorted by time within each entity (frames.py); polars cannot check it with `by`.
    out = left.join_asof(
        last, left_on=T_US, right_on=_TL, by=KEY, allow_exact_matches=False, check_sortedness=False
    ).join_asof(
        first, left_on=_START, right_on="_t_first", by=KEY, strategy="forward", check_sortedness=False
    )
    return out.select(ANCHOR, T_US, _FIRST, _LAST, _TL, _SEG)


def _gather(lines: pl.DataFrame, windows: pl.DataFrame) -> pl.DataFrame:
    """anchor → the window's lines of the latest line's segment, joined, and their count."""
    ranges = (
        windows.filter(pl.col(_FIRST) <= pl.col(_LAST))
        .select(
            ANCHOR, pl.int_ranges(pl.col(_FIRST), pl.col(_LAST) + 1).alias(_ROW), pl.col(_SEG).alias("_want")
        )
        .explode(_ROW)
    )
    rows = ranges[_ROW]
    picked = ranges.with_columns(
        lines[_SEG].gather(rows).alias(_SEG), lines["_text"].gather(rows).alias("_text")
    )
    return (
        picked.filter(pl.col(_SEG) == pl.col("_want"))
        .group_by(ANCHOR, maintain_order=True)
        .agg(pl.col("_text").str.join("\n"), pl.len().alias("_n"))
    )


def _check(spec: StreamSpec, path: str) -> None:
    if spec.window_s is None or spec.window_s <= 0:
        raise ConfigError(
            f"{path}.window_s: a text stream joins the lines in [anchor - window_s, anchor); set it"
        )
    if len(spec.columns) != 1:
        raise ConfigError(
            f"{path}.columns: a text stream needs exactly one text column, got {list(spec.columns)}"
        )


def _typed(frame: pl.DataFrame, spec: StreamSpec) -> pl.DataFrame:
    return frame.with_columns(pl.col(spec.columns[0]).cast(pl.String))


TEXT = StreamKind(name="text", align=align_text, check=_check, typed=_typed)
