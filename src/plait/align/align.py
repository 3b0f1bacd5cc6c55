"""`align(spec, base_dir)`: streams → cleaned frames → anchors → one window rule per stream → the
sample table (one row per anchor, sorted by time then entity) and the alignment report."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from plait.align.anchors import build_anchors
from plait.align.frames import (
    ABSENT,
    ANCHOR,
    KEY,
    LABEL,
    T_US,
    LoadedStream,
    RuleContext,
    RuleOutput,
    seconds_to_us,
    status_col,
)
from plait.align.load import load_stream
from plait.align.paths import inside_root
from plait.align.report import AlignmentReport, StreamReport, gap_percentiles, status_counts
from plait.align.rules import STREAM_KINDS
from plait.align.spec import StreamSpec, StreamsSpec

TIME = "time"  # the anchor time in the sample table, Datetime(us, UTC)
DROP_EMPTY = "no data in any stream (drop_empty)"


def drop_reason(stream: str) -> str:
    """Why anchors were dropped under `missing: drop` of `stream` (a key of the report's `dropped`)."""
    return f"no {stream} data (missing: drop)"


@dataclass(frozen=True)
class AlignResult:
    table: pl.DataFrame
    report: AlignmentReport
    table_path: Path | None
    report_path: Path | None


def align(
    spec: StreamsSpec, base_dir: Path, *, write: bool = True, say: Callable[[str], None] | None = None
) -> AlignResult:
    tell = say or (lambda _msg: None)
    loaded: dict[str, LoadedStream] = {}
    for stream in spec.streams:
        loaded[stream.name] = load_stream(stream, base_dir)
        stats = loaded[stream.name].stats
        tell(f"read {stream.name}: {stats.rows_kept} of {stats.rows_read} rows kept")
    anchors = build_anchors(
        spec.anchors, base_dir, entity_spans((ls.frame for ls in loaded.values()), lead_us=lead_us(spec))
    )
    ctx = RuleContext(base_dir=base_dir, media_dir=media_dir_for(spec, base_dir))
    rules = {s.name: STREAM_KINDS.get(s.kind).align for s in spec.streams}
    outputs = {s.name: rules[s.name](loaded[s.name].frame, anchors.frame, s, ctx) for s in spec.streams}
    table, dropped = sample_rows(spec, anchors.frame, outputs)

    report = AlignmentReport(
        anchors=anchors.frame.height,
        rows=table.height,
        streams=tuple(
            _stream_report(s, loaded[s.name], outputs[s.name], anchors.frame.height) for s in spec.streams
        ),
        dropped=dropped,
        notes=tuple(anchors.notes)
        + tuple(f"{name}: {n}" for name, ls in loaded.items() for n in ls.stats.notes),
    )
    table_path = report_path = None
    if write:
        table_path = base_dir / spec.output
        table_path.parent.mkdir(parents=True, exist_ok=True)
        table.write_parquet(table_path)
        report_path = report_path_for(table_path)
        report_path.write_text(json.dumps(report.to_json(), indent=2) + "\n")
    return AlignResult(table=table, report=report, table_path=table_path, report_path=report_path)


def sample_rows(
    spec: StreamsSpec, anchors: pl.DataFrame, outputs: dict[str, RuleOutput]
) -> tuple[pl.DataFrame, dict[str, int]]:
    """The anchor columns and every rule's columns side by side, less the anchors `drop_empty` and
    `missing: drop` remove; and reason → anchors dropped. Row by row: a shard's rows drop alone."""
    table = pl.concat(
        [anchor_columns(anchors, spec), *(outputs[s.name].columns for s in spec.streams)], how="horizontal"
    )
    keep = pl.Series([True] * table.height)
    dropped: dict[str, int] = {}
    if spec.drop_empty:
        empty = pl.Series([True] * table.height)
        for s in spec.streams:
            empty = empty & (table[status_col(s.name)] == ABSENT)
        if empty.any():
            dropped[DROP_EMPTY] = int(empty.sum())
        keep = keep & ~empty
    for s in spec.streams:
        if s.missing != "drop":
            continue
        absent = table[status_col(s.name)] == ABSENT
        newly = int((absent & keep).sum())
        if newly:
            dropped[drop_reason(s.name)] = newly
        keep = keep & ~absent
    return table.filter(keep), dropped


def media_dir_for(spec: StreamsSpec, base_dir: Path) -> Path:
    """Where audio clips spanning two recordings are written: under the data root, or training
    would refuse them (checked only when a stream's rule may write there)."""
    if not any(STREAM_KINDS.get(s.kind).writes_media for s in spec.streams):
        return base_dir / spec.media_dir
    return inside_root(spec.media_dir, base_dir, "streams.media_dir")


def report_path_for(table_path: Path) -> Path:
    return table_path.with_name(table_path.stem + ".report.json")


def anchor_columns(anchors: pl.DataFrame, spec: StreamsSpec) -> pl.DataFrame:
    """anchor id, entity, time (UTC datetime) and label, under the names the user gave them."""
    columns = [
        pl.col(ANCHOR),
        pl.col(KEY).alias(spec.anchors.key or KEY),
        pl.from_epoch(pl.col(T_US), time_unit="us").dt.replace_time_zone("UTC").alias(TIME),
    ]
    if LABEL in anchors.columns and spec.anchors.label is not None:
        columns.append(pl.col(LABEL).alias(spec.anchors.label))
    return anchors.select(columns)


def lead_us(spec: StreamsSpec) -> int:
    """The longest look-back of any stream: sliding anchors start this far into the data, so the
    first window is not empty by construction."""
    looks = [s.window_s or s.duration_s or 0.0 for s in spec.streams]
    return seconds_to_us(max(looks, default=0.0))


def entity_spans(frames: Iterable[pl.DataFrame], lead_us: int = 0) -> dict[str, tuple[int, int]]:
    """Per entity, the first time any stream frame saw it (plus `lead_us`) and the last (for sliding
    anchors); a frame holding only each entity's first and last time gives the same."""
    parts = [f.select(KEY, T_US) for f in frames if f.height]
    if not parts:
        return {}
    spans = pl.concat(parts).group_by(KEY).agg(pl.col(T_US).min().alias("lo"), pl.col(T_US).max().alias("hi"))
    return {str(k): (min(int(lo) + lead_us, int(hi)), int(hi)) for k, lo, hi in spans.sort(KEY).iter_rows()}


def _stream_report(spec: StreamSpec, loaded: LoadedStream, output: RuleOutput, anchors: int) -> StreamReport:
    counts = status_counts(output.columns, spec.name)
    p50, p95, gap_max = gap_percentiles(loaded.frame)
    return StreamReport(
        name=spec.name,
        kind=spec.kind,
        anchors=anchors,
        observed=counts["observed"],
        imputed=counts["imputed"],
        absent=counts["absent"],
        gap_p50_s=p50,
        gap_p95_s=p95,
        gap_max_s=gap_max,
        load=loaded.stats,
        details=dict(output.details),
    )
