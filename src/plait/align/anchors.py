"""Anchors: the instants samples are taken at, one output row each.

Labelled events come from a table (time, key, label); sliding anchors are laid every `hop_s` per
entity across [start, end] and take their entity's label from a labels table (one row per entity).
Anchors are what the user asked for: an event whose time or key cannot be read is an error naming
its rows, never a silently dropped sample; an anchor whose entity has no label keeps a null label
and is counted in the notes.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import polars as pl

from plait.align.frames import ANCHOR, KEY, LABEL, T_US, Anchors, seconds_to_us
from plait.align.read import read_table, resolve_source
from plait.align.spec import AnchorSpec, check_anchors
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
    check_anchors(spec, _WHERE)
    if spec.path is not None:
        frame, notes = _events(spec, spec.path, base_dir)
    else:
        frame, notes = _sliding(spec, spans)
        if spec.labels is not None:
            frame, label_notes = _entity_labels(frame, spec, spec.labels, base_dir)
            notes = (*notes, *label_notes)
    label = [LABEL] if LABEL in frame.columns else []
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


def _entity_labels(
    anchors: pl.DataFrame, spec: AnchorSpec, path: str, base_dir: Path
) -> tuple[pl.DataFrame, tuple[str, ...]]:
    """Sliding anchors with their entity's label from the labels table; keys compared as strings."""
    assert spec.label is not None and spec.key is not None  # check_anchors ruled out the rest
    key, label = spec.labels_key or spec.key, spec.label
    source = resolve_source(path, base_dir, "anchor labels", f"{_WHERE}.labels")
    columns = {key: f"{_WHERE}.labels_key" if spec.labels_key is not None else f"{_WHERE}.key"}
    columns.setdefault(label, f"{_WHERE}.label")
    where = f"anchor labels ({path})"
    table = read_table(source, columns, where=where, text=[key])
    value = pl.col(label)
    if table.schema[label] == pl.String:  # an empty cell is no label
        value = pl.when(value.str.strip_chars() == "").then(None).otherwise(value)
    rows = table.select(
        pl.int_range(pl.len(), dtype=pl.Int64).alias(ROW),
        pl.col(key).cast(pl.String).alias(KEY),
        value.alias(LABEL),
    )
    per_entity = _one_label_per_entity(rows.filter(pl.col(KEY).is_not_null()), where, key, label)
    out = anchors.join(per_entity, on=KEY, how="left")  # row order restored by build_anchors
    notes = [
        f"labels from {path}: {_count(per_entity.height, 'entity', 'entities')}, "
        f"{_count(per_entity[LABEL].n_unique(), 'class', 'classes')}; "
        f"{out[LABEL].null_count()} of {_count(out.height, 'anchor')} without a label"
    ]
    keyless = tuple(rows.filter(pl.col(KEY).is_null())[ROW])
    if keyless:
        notes.append(f"{path}: no '{key}' in {_rows(keyless, 'row')}; ignored")
    unlabelled = out.filter(pl.col(LABEL).is_null())
    if unlabelled.height:
        entities = sorted(unlabelled[KEY].unique().to_list())
        notes.append(
            f"{_count(unlabelled.height, 'anchor')} of {_count(len(entities), 'entity', 'entities')} "
            f"({_examples(entities)}) {_have(unlabelled.height)} no '{label}' in {path} "
            "(no row, or an empty cell): kept with a null label; add their rows, or drop those "
            "samples before training"
        )
    anchored = set(anchors[KEY].to_list())
    idle = [k for k in per_entity[KEY].to_list() if k not in anchored]
    if idle:
        notes.append(
            f"{_count(len(idle), 'entity', 'entities')} in {path} ({_examples(idle)}) "
            f"{_have(len(idle))} no anchors: no stream has data for {'it' if len(idle) == 1 else 'them'} "
            "(or the span ends before the start)"
        )
    return out, tuple(notes)


def _one_label_per_entity(rows: pl.DataFrame, where: str, key: str, label: str) -> pl.DataFrame:
    """(key, label), one row per entity that has a label; the same label on several rows is fine,
    two different labels are an error naming them."""
    grouped = (
        rows.filter(pl.col(LABEL).is_not_null())
        .group_by(KEY, maintain_order=True)
        .agg(pl.col(LABEL).unique(maintain_order=True).alias("labels"), pl.col(ROW).alias("rows"))
    )
    clash = grouped.filter(pl.col("labels").list.len() > 1)
    if clash.height:
        examples = "; ".join(
            f"{k!r}: {', '.join(map(repr, labels))} (rows {', '.join(map(str, rs[:N_EXAMPLES]))})"
            for k, labels, rs in clash.head(N_EXAMPLES).iter_rows()
        )
        more = "; …" if clash.height > N_EXAMPLES else ""
        raise DataError(
            f"{where}: {_count(clash.height, 'entity', 'entities')} with more than one '{label}' "
            f"({examples}{more}; rows 0-based); give each {key} one label (one row per entity, or the "
            "same label on each of its rows)"
        )
    return grouped.select(KEY, pl.col("labels").list.first().alias(LABEL))


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


def _rows(rows: tuple[int, ...], noun: str = "event") -> str:
    shown = ", ".join(str(r) for r in rows[:N_EXAMPLES])
    more = ", …" if len(rows) > N_EXAMPLES else ""
    return f"{_count(len(rows), noun)} (rows {shown}{more}, 0-based)"


def _count(n: int, noun: str, plural: str | None = None) -> str:
    return f"{n} {noun if n == 1 else plural or noun + 's'}"


def _have(n: int) -> str:
    return "has" if n == 1 else "have"


def _examples(names: list[str]) -> str:
    shown = ", ".join(repr(n) for n in names[:N_EXAMPLES])
    return shown + (", …" if len(names) > N_EXAMPLES else "")
