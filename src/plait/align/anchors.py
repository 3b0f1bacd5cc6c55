"""Anchors: the instants samples are taken at, one output row each.

Labelled events come from a table (time, key, label); sliding anchors are laid every `hop_s` per
entity across [start, end]. Anchors are what the user asked for: an event whose time or key cannot
be read is an error naming its rows, never a silently dropped sample.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import polars as pl

from plait.align.frames import ANCHOR, KEY, LABEL, T_US, Anchors, seconds_to_us
from plait.align.read import read_table, resolve_source
from plait.align.spec import AnchorSpec
from plait.align.timestamps import parse_times
from plait.errors import ConfigError, DataError

ROW = "__row"
N_EXAMPLES = 5
_WHERE = "streams.anchors"


def build_anchors(spec: AnchorSpec, base_dir: Path, spans: Mapping[str, tuple[int, int]] | None) -> Anchors:
    """The anchor frame of frames.py (anchor, key, t_us[, label]), sorted by (t_us, key).

    `spans` maps each entity to the (first, last) t_us its streams cover; sliding anchors use it
    for the entities and, where start/end are not configured, for their extent.
    """
    if spec.path is not None:
        frame, notes = _events(spec, spec.path, base_dir)
    else:
        frame, notes = _sliding(spec, spans)
    label = [LABEL] if spec.path is not None and spec.label is not None else []
    frame = frame.sort([T_US, KEY, ROW]).select(
        pl.int_range(pl.len(), dtype=pl.UInt32).alias(ANCHOR), KEY, T_US, *label
    )
    return Anchors(frame=frame, notes=notes)


def _events(spec: AnchorSpec, path: str, base_dir: Path) -> tuple[pl.DataFrame, tuple[str, ...]]:
    source = resolve_source(path, base_dir, "anchors", f"{_WHERE}.path")
    columns = {spec.time: f"{_WHERE}.time"}
    if spec.key is not None:
        columns[spec.key] = f"{_WHERE}.key"
    if spec.label is not None:
        columns.setdefault(spec.label, f"{_WHERE}.label")
    keys = [spec.key] if spec.key is not None else []
    table = read_table(source, columns, where=f"anchors ({path})", text=[spec.time, *keys])
    if table.height == 0:
        raise DataError(f"anchors ({path}): the events table has no rows; give at least one event")
    where = f"anchors ({path}, column '{spec.time}')"
    parsed = parse_times(table[spec.time], time_format=spec.time_format, timezone=spec.timezone, where=where)
    if parsed.unreadable_rows:
        rows = parsed.unreadable_rows
        raise DataError(
            f"{where}: unreadable time in {_rows(rows)} (e.g. {table[spec.time][rows[0]]!r}, read as "
            f"{parsed.format_used}); fix or remove those events (anchors are never dropped silently)"
        )
    key = pl.col(spec.key).cast(pl.String) if spec.key is not None else pl.lit("", pl.String)
    frame = table.select(
        pl.int_range(pl.len(), dtype=pl.Int64).alias(ROW),
        key.alias(KEY),
        parsed.t_us.alias(T_US),
        *([pl.col(spec.label).alias(LABEL)] if spec.label is not None else []),
    )
    if spec.key is not None:
        missing = tuple(int(i) for i in frame[KEY].is_null().arg_true())
        if missing:
            raise DataError(
                f"anchors ({path}, column '{spec.key}'): no entity key in {_rows(missing)}; "
                "fill the key or remove those events (anchors are never dropped silently)"
            )
    return frame, (*parsed.notes, *_event_notes(frame, spec))


def _event_notes(frame: pl.DataFrame, spec: AnchorSpec) -> tuple[str, ...]:
    notes = []
    shared = frame.filter(pl.struct(KEY, T_US).is_duplicated())[ROW]
    if shared.len() > 0:
        notes.append(
            f"events sharing their key and time with another event (all kept): {_rows(tuple(shared))}"
        )
    if spec.label is not None:
        unlabelled = frame.filter(pl.col(LABEL).is_null())[ROW]
        if unlabelled.len() > 0:
            notes.append(f"events without a label: {_rows(tuple(unlabelled))}")
    return tuple(notes)


def _sliding(
    spec: AnchorSpec, spans: Mapping[str, tuple[int, int]] | None
) -> tuple[pl.DataFrame, tuple[str, ...]]:
    hop_us = seconds_to_us(spec.hop_s) if spec.hop_s is not None else 0
    if hop_us <= 0:
        raise ConfigError(f"{_WHERE}.hop_s: sliding anchors need hop_s > 0 (got {spec.hop_s})")
    start, end = _boundary(spec, "start"), _boundary(spec, "end")
    if spans:
        entities = sorted(spans)
        lo = [start if start is not None else spans[k][0] for k in entities]
        hi = [end if end is not None else spans[k][1] for k in entities]
    elif start is not None and end is not None:
        entities, lo, hi = [""], [start], [end]
    else:
        raise ConfigError(
            f"{_WHERE}: sliding anchors need the streams' span or both start and end "
            "(ISO times, e.g. start: '2024-03-01T10:00:00Z')"
        )
    ranges = pl.DataFrame(
        {KEY: entities, "lo": lo, "hi": hi}, schema={KEY: pl.String, "lo": pl.Int64, "hi": pl.Int64}
    )
    frame = (
        ranges.select(KEY, pl.int_ranges("lo", pl.col("hi") + 1, hop_us, dtype=pl.Int64).alias(T_US))
        .explode(T_US)
        .drop_nulls(T_US)
        .with_columns(pl.int_range(pl.len(), dtype=pl.Int64).alias(ROW))
    )
    empty = ranges.filter(pl.col("hi") < pl.col("lo"))[KEY].to_list()
    notes = [f"sliding anchors every {spec.hop_s:g} s: {frame.height} anchors over {len(entities)} entities"]
    if empty:
        notes.append(f"no anchors for {', '.join(map(repr, empty))}: its span ends before the start")
    return frame, tuple(notes)


def _boundary(spec: AnchorSpec, which: str) -> int | None:
    value = getattr(spec, which)
    if value is None:
        return None
    where = f"{_WHERE}.{which}"
    parsed = parse_times(pl.Series(which, [value]), time_format="iso", timezone=spec.timezone, where=where)
    t = parsed.t_us[0]
    if t is None:
        raise ConfigError(f"{where}: {value!r} is not an ISO-8601 time; write e.g. '2024-03-01T10:00:00Z'")
    return int(t)


def _rows(rows: tuple[int, ...]) -> str:
    shown = ", ".join(str(r) for r in rows[:N_EXAMPLES])
    more = ", …" if len(rows) > N_EXAMPLES else ""
    noun = "event" if len(rows) == 1 else "events"
    return f"{len(rows)} {noun} (rows {shown}{more}, 0-based)"
