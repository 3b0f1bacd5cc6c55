"""Planning sharded alignment: entity key groups × time buckets, and how far a shard must read
around its own time.

A shard owns the anchors of one key group whose time lies in its bucket `[start_us, end_us)`; every
anchor has exactly one owner. Cleaning works per entity (out-of-order rows, clock jumps, duplicates,
offsets and gaps are all per entity), so a key group is cleaned whole, exactly as in one pass. The
rules then read, around each bucket, the cleaned rows in `[start - lookback, end + lookahead)`
plus, per entity and clock segment, the last row before that range and the first row after it: the
rows an as-of match with an unbounded reach (a tabular record with `tolerance_s: 0`, the frame
before an anchor, a run's first and last sample) would find outside it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import polars as pl

from plait.align.frames import seconds_to_us
from plait.align.read import count_keys, count_rows, key_type, resolve_source
from plait.align.spec import StreamsSpec
from plait.errors import ConfigError

INTEGER_KEYS = (pl.Int8, pl.Int16, pl.Int32, pl.Int64, pl.UInt8, pl.UInt16, pl.UInt32)  # fit in Int64


@dataclass(frozen=True)
class KeyGroups:
    """Entity groups: runs of the keys in sorted order; `bounds[i]` is the first key of group i + 1.

    A key group is a key range in the order of the key columns' own type (`integer` when every
    typed key column holds integers, else `text`), so a scan of a Parquet table stored entity by
    entity compares the key in its own type and skips the other groups' row groups by their
    statistics (a text range over integer keys would need a cast no statistic can answer).
    Entities are their keys as text everywhere else (the cleaned frames, the anchors), so
    `group_of` maps that text back into the same order: the same group in every stream. Rows
    without a key, and with `integer`, keys that are no integer (a CSV's "m7"), go to group 0,
    whose cleaning counts and drops the keyless ones."""

    bounds: tuple[str, ...] | tuple[int, ...] = ()
    order: Literal["text", "integer"] = "text"

    @property
    def count(self) -> int:
        return len(self.bounds) + 1

    def group_of(self, key: pl.Expr) -> pl.Expr:
        """The group of each key given as text (the frames' entity column)."""
        if not self.bounds:
            return pl.lit(0, dtype=pl.Int64)
        value = key.cast(pl.Int64, strict=False) if self.order == "integer" else key
        above = pl.sum_horizontal([(value >= b).cast(pl.Int64) for b in self.bounds])
        return pl.when(value.is_null()).then(pl.lit(0, dtype=pl.Int64)).otherwise(above)

    def keep(self, group: int) -> KeepGroup:
        return KeepGroup(self, group)


@dataclass(frozen=True)
class KeepGroup:
    """The rows of one key group, as a key range on the key column as stored (called with the key
    expression and its type, as load_stream_part expects): no cast when the column's type is the
    groups' order, so the range reaches the Parquet reader's statistics."""

    groups: KeyGroups
    group: int

    def __call__(self, key: pl.Expr, dtype: pl.DataType | type[pl.DataType] = pl.String) -> pl.Expr:
        bounds, group, integer = self.groups.bounds, self.group, self.groups.order == "integer"
        if integer:
            value = key if dtype in INTEGER_KEYS else key.cast(pl.String).cast(pl.Int64, strict=False)
        else:
            value = key if dtype == pl.String else key.cast(pl.String)
        inside = pl.lit(True)
        if group > 0:
            inside = value >= bounds[group - 1]
        if group < len(bounds):
            inside = inside & (value < bounds[group])
        return value.is_null() | inside if group == 0 else inside


def plan_key_groups(spec: StreamsSpec, base_dir: Path, shards: int) -> KeyGroups:
    """Up to `shards` key ranges holding about the same number of rows of the keyed stream tables
    (one streaming pass over each table's key column). More than one group needs a keyed stream
    that is a table: a folder's entities are known only once its files are listed."""
    if shards == 1:
        return KeyGroups()
    counts, types, folders = [], [], []
    for s in spec.streams:
        source = resolve_source(s.path, base_dir, f"stream '{s.name}'", f"streams.sources.{s.name}.path")
        if s.key is None:
            continue
        if source.is_dir():
            folders.append(s.name)
            continue
        counts.append(count_keys(source, s.key))
        types.append(key_type(source, s.key))
    if not counts:
        which = f" (folder streams: {', '.join(folders)})" if folders else ""
        raise ConfigError(
            f"shards: {shards} entity groups asked for, but no stream with a `key:` is a table whose "
            f"entity column can be counted{which}; align in one pass (shards 1; with bucket_s to "
            "bound each shard by time), or give a keyed stream as a table"
        )
    typed = [t for t in types if t is not None and t != pl.String]
    order: Literal["text", "integer"] = (
        "integer" if typed and all(t in INTEGER_KEYS for t in typed) else "text"
    )
    rows = pl.concat(counts)
    if order == "integer":
        rows = rows.with_columns(pl.col("key").cast(pl.Int64, strict=False))
    rows = rows.group_by("key").agg(pl.col("n").sum()).sort("key", nulls_last=False)
    cumulative = rows["n"].cum_sum().to_list()
    total, keys = cumulative[-1] if cumulative else 0, rows["key"].to_list()
    bounds: list[Any] = []
    for i in range(1, len(keys)):
        if cumulative[i - 1] >= total * (len(bounds) + 1) / shards and len(bounds) < shards - 1:
            bounds.append(keys[i])
    return KeyGroups(tuple(bounds), order)


@dataclass(frozen=True)
class Shard:
    group: int
    bucket: int
    start_us: int | None  # the anchors it owns: start_us <= t < end_us (None: unbounded)
    end_us: int | None


@dataclass(frozen=True)
class Reach:
    """How far before and after its bucket a shard reads the cleaned streams, in µs."""

    lookback_us: int
    lookahead_us: int


def reach_of(spec: StreamsSpec) -> Reach:
    """The longest look-back of any rule (its window or clip, then its tolerance and the gap imputation
    may bridge) and look-ahead (a nearest match after the anchor, within tolerance and max gap)."""
    back = [(s.window_s or s.duration_s or 0.0) + s.tolerance_s + s.max_gap_s for s in spec.streams]
    ahead = [s.tolerance_s + s.max_gap_s for s in spec.streams]
    return Reach(seconds_to_us(max(back, default=0.0)), seconds_to_us(max(ahead, default=0.0)))


def plan_buckets(t_min_us: int, t_max_us: int, bucket_s: float | None) -> list[tuple[int | None, int | None]]:
    """Consecutive `[start, end)` buckets of `bucket_s` covering the anchors' times (one unbounded
    bucket when `bucket_s` is None)."""
    if bucket_s is None:
        return [(None, None)]
    width = seconds_to_us(bucket_s)
    n = max(1, math.floor((t_max_us - t_min_us) / width) + 1)
    return [(t_min_us + i * width, t_min_us + (i + 1) * width) for i in range(n)]


def check_sharding(shards: int, bucket_s: float | None, workers: int) -> None:
    """The sharding options, checked where they enter (the library call and the CLI alike)."""
    if shards < 1:
        raise ConfigError(f"shards: expected a number of entity groups ≥ 1, got {shards}")
    if bucket_s is not None and not (bucket_s > 0 and math.isfinite(bucket_s)):
        raise ConfigError(f"bucket_s: expected a time bucket in seconds > 0, got {bucket_s}")
    if workers < 1:
        raise ConfigError(f"workers: expected a number of processes ≥ 1, got {workers}")


def auto_shards(spec: StreamsSpec, base_dir: Path, rows_per_shard: int) -> int:
    """One entity group per `rows_per_shard` rows of the stream tables (1: align in one pass); 1
    when no keyed stream is a table, as no entity column can then be cut (plan_key_groups)."""
    rows, keyed_tables = 0, 0
    for s in spec.streams:
        where = f"streams.sources.{s.name}.path"
        source = resolve_source(s.path, base_dir, f"stream '{s.name}'", where)
        rows += count_rows(source)
        keyed_tables += s.key is not None and not source.is_dir()
    return max(1, math.ceil(rows / rows_per_shard)) if keyed_tables else 1
