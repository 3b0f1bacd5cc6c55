"""The frames the alignment stages hand each other — column names, types and order — in one place.

    load_stream(spec, base_dir)  -> LoadedStream(frame, stats)     align/load.py
    build_anchors(spec, ...)     -> Anchors(frame, stats)          align/anchors.py
    STREAM_KINDS.get(kind).align(stream, anchors, spec, ctx) -> RuleOutput   align/rules/<kind>.py
    align(streams_spec, base_dir) -> AlignResult (sample table + AlignmentReport)   align/align.py

Time is Int64 microseconds since the Unix epoch, UTC, in the column `t_us` everywhere.

Raw stream frame (load.py, as read, before cleaning; what a kind's load hooks see):
    __row    Int64   0-based row of the source
    __time   the time as read (parsed by timestamps.py)
    key      Utf8
    values:  the value columns; media kinds: FILE (Utf8) and __outside (Boolean: the file leads outside
             the data root and must never be opened), plus what the kind read from the file headers

Stream frame (a polars DataFrame, after cleaning):
    key      Utf8    entity ("" when the stream has no key column)
    t_us     Int64   true time (stream time + offset), sorted by (key, t_us), no exact duplicates left
    segment  Int32   clock segment within the key: +1 after each backward jump larger than jump_s;
                     no window or imputation bridges two segments
    values:  timeseries → one Float64 column per channel (rows with a NaN/Inf reading removed: a gap)
             text       → the text column (Utf8)
             tabular    → the attribute columns, as read
             image      → FILE (Utf8, path relative to the base dir)
             audio      → FILE (Utf8), DURATION_S (Float64, the recording's length), SAMPLE_RATE (Int64)

Anchor frame:
    anchor   UInt32  0..N-1, the output row order: sorted by (t_us, key)
    key      Utf8
    t_us     Int64
    label    (only for labelled events; the events table's dtype)

Rule output (one row per anchor, in anchor order; `s` is the stream name):
    f"{s}__status"        Utf8     "observed" | "imputed" | "absent"
    f"{s}__imputed_frac"  Float64  share of the value that was imputed (0 when observed, null when absent)
    f"{s}__dt_s"          Float64  seconds from the anchor to the nearest observed data used (null if absent)
    plus the value columns of the kind:
    timeseries  s: List(List(Float32)) [T, C] (null when absent); f"{s}__observed", f"{s}__expected": Int32
    image       s: Utf8 path relative to the base dir (null when absent)
    audio       s: Utf8 path; f"{s}__offset_s", f"{s}__duration_s": Float64 (a clip spanning two recordings
                is written as a new WAV under the media dir and referenced from offset 0)
    text        s: Utf8, the lines in the window joined in time order with "\\n"; f"{s}__lines": Int32
    tabular     f"{s}_{column}" for each attribute column (the entity's latest values as of the anchor)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

KEY = "key"
T_US = "t_us"
SEGMENT = "segment"
ANCHOR = "anchor"
LABEL = "label"
FILE = "file"
DURATION_S = "duration_s"
SAMPLE_RATE = "sample_rate"
ROW, TIME, OUTSIDE = "__row", "__time", "__outside"  # raw frame only: dropped before the frame is handed on

OBSERVED, IMPUTED, ABSENT = "observed", "imputed", "absent"
US_PER_S = 1_000_000


def status_col(stream: str) -> str:
    return f"{stream}__status"


def imputed_frac_col(stream: str) -> str:
    return f"{stream}__imputed_frac"


def dt_col(stream: str) -> str:
    return f"{stream}__dt_s"


def seconds_to_us(seconds: float) -> int:
    return round(seconds * US_PER_S)


def us_to_seconds(us: pl.Expr) -> pl.Expr:
    """µs → s by true division: polars multiplies long columns by the reciprocal instead, so 1.6 s
    would come out as 1.5999999999999999 depending on the frame's length."""
    return us.cast(pl.Float64).map_batches(
        lambda s: pl.Series(s.to_numpy() / US_PER_S, nan_to_null=True), return_dtype=pl.Float64
    )


def found_or_absent(stream: str, found: pl.Expr, dt_us: pl.Expr) -> list[pl.Expr]:
    """The three status columns of a rule that either finds data (observed) or not (absent)."""
    return [
        pl.when(found).then(pl.lit(OBSERVED)).otherwise(pl.lit(ABSENT)).alias(status_col(stream)),
        pl.when(found).then(0.0).otherwise(None).cast(pl.Float64).alias(imputed_frac_col(stream)),
        us_to_seconds(pl.when(found).then(dt_us)).alias(dt_col(stream)),
    ]


@dataclass(frozen=True)
class LoadStats:
    """What cleaning a stream found and did; every count is of rows of the source."""

    rows_read: int
    rows_kept: int
    unsorted: int = 0  # rows that came before an earlier timestamp of their entity (sorted)
    duplicates: int = 0  # rows removed (or merged) as exact duplicate timestamps
    jumps: int = 0  # backward clock jumps (segment splits)
    non_finite: int = 0  # rows with a NaN/Inf reading (dropped: a gap)
    unreadable: int = 0  # rows dropped as unusable: unparseable time, null key, missing/undecodable file
    outside_root: int = 0  # media rows dropped unread: the file leads outside the data root (paths.py)
    time_format: str = ""  # the format used; "detected:<fmt>" when detected, never silently
    notes: tuple[str, ...] = ()  # human lines: time zone used, example rows, …
    examples: Mapping[str, tuple[int, ...]] = field(default_factory=dict)  # anomaly → first source rows


@dataclass(frozen=True)
class LoadedStream:
    frame: pl.DataFrame
    stats: LoadStats


@dataclass(frozen=True)
class Anchors:
    frame: pl.DataFrame
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class RuleContext:
    base_dir: Path  # paths in stream frames and outputs are relative to this
    media_dir: Path  # where rules may write new media (audio clips spanning two files)


@dataclass(frozen=True)
class RuleOutput:
    columns: pl.DataFrame  # one row per anchor, anchor order, the columns listed above
    details: Mapping[str, Any] = field(default_factory=dict)  # kind-specific counts for the report
