"""`align_sharded(spec, base_dir, shards=…)`: the same sample table and report as `align`, made
shard by shard so that no process holds every stream at once (shards.py says how they are cut).

    1. clean: each stream × key group is read (only its rows: the key filter is pushed into the
       scan) and cleaned exactly as in one pass; the cleaned frame goes to a scratch Parquet file,
       the counts, notes, gap tallies and each entity's first and last time come back
    2. anchors: built here from the merged spans, as in one pass (ids are global: row order)
    3. align: each shard runs today's rules on its anchors and the cleaned rows around its bucket,
       and writes its rows of the table to scratch
    4. merge: the rows bucket by bucket, each a k-way merge of its parts by anchor id, streamed into
       the table a batch at a time (written aside, then renamed over the target); counts added, gap
       percentiles from the merged tallies

Rule details that count rows rather than anchors (a text stream's null lines) come from the rule
run on each whole key group with no anchors; each shard adds only what its anchors add.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow.parquet as pq

from plait.align.align import (
    DROP_EMPTY,
    drop_reason,
    entity_spans,
    lead_us,
    media_dir_for,
    report_path_for,
    sample_rows,
)
from plait.align.anchors import build_anchors
from plait.align.engines import ENGINES, Engine
from plait.align.frames import ANCHOR, KEY, SEGMENT, T_US, RuleContext
from plait.align.load import load_stream_part
from plait.align.merge import LoadPart, add_counts, merge_load, subtract_counts
from plait.align.report import (
    AlignmentReport,
    StreamReport,
    gap_counts,
    merge_gap_counts,
    percentiles_of_gaps,
    status_counts,
)
from plait.align.rules import STREAM_KINDS
from plait.align.shards import (
    KeyGroups,
    Reach,
    Shard,
    check_sharding,
    plan_buckets,
    plan_key_groups,
    reach_of,
)
from plait.align.spec import StreamsSpec

NO_ANCHORS = pl.DataFrame(schema={ANCHOR: pl.UInt32, KEY: pl.String, T_US: pl.Int64})


@dataclass(frozen=True)
class ShardedResult:
    report: AlignmentReport
    table_path: Path
    report_path: Path
    shards: int  # shards that aligned anchors


@dataclass(frozen=True)
class CleanedPart:
    """One stream × key group after cleaning (group None: a stream without a key, read whole)."""

    stream: int  # index into spec.streams
    group: int | None
    path: str  # the cleaned frame (frames.py), sorted by (key, t_us)
    load: LoadPart
    spans: pl.DataFrame  # (key, t_us): each entity's first and last time
    gaps: pl.DataFrame  # report.gap_counts
    row_details: dict[str, Any]  # the rule's details with no anchor: what it counts over rows


@dataclass(frozen=True)
class ShardOutput:
    path: str
    rows: int
    status: dict[str, dict[str, int]]  # stream → observed / imputed / absent
    details: dict[str, dict[str, Any]]  # stream → what this shard's anchors add to the details
    dropped: dict[str, int]


def align_sharded(
    spec: StreamsSpec,
    base_dir: Path,
    *,
    shards: int,
    bucket_s: float | None = None,
    engine: str = "local",
    workers: int | None = None,
    say: Callable[[str], None] | None = None,
) -> ShardedResult:
    """Align in `shards` entity groups (× time buckets of `bucket_s` when given) on `engine`."""
    tell = say or (lambda _msg: None)
    workers = workers if workers is not None else max(1, min(os.cpu_count() or 1, shards))
    check_sharding(shards, bucket_s, workers)
    make_engine = ENGINES.get(engine)
    groups = plan_key_groups(spec, base_dir, shards)  # before anything starts: it may refuse
    table_path = base_dir / spec.output
    table_path.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=".plait-shards-", dir=table_path.parent))
    runner: Engine | None = None
    try:
        runner = make_engine(workers)
        cleaned = _clean(spec, base_dir, groups, scratch, runner.map, tell)
        by_stream = [[c for c in cleaned if c.stream == i] for i in range(len(spec.streams))]
        loads = {
            s.name: merge_load(s.name, [c.load for c in by_stream[i]]) for i, s in enumerate(spec.streams)
        }
        for name, stats in loads.items():
            tell(f"read {name}: {stats.rows_kept} of {stats.rows_read} rows kept")
        spans = entity_spans((c.spans for c in cleaned), lead_us=lead_us(spec))
        anchors = build_anchors(spec.anchors, base_dir, spans)
        anchors.frame.write_parquet(scratch / "anchors.parquet")
        plan = _plan(anchors.frame, groups, bucket_s)
        buckets = "" if bucket_s is None else f" × {bucket_s:g} s buckets"
        tell(
            f"aligning {anchors.frame.height} anchors in {len(plan)} shards "
            f"({groups.count} entity groups{buckets}) on {engine}"
        )
        reach = reach_of(spec)
        tasks = [
            (spec, base_dir, shard, groups, reach, _paths(spec, cleaned, shard), str(scratch))
            for shard in plan
        ]

        finished: list[int] = []

        def shard_done(i: int) -> None:
            finished.append(i)
            where = f"entity group {plan[i].group}, time bucket {plan[i].bucket}"
            tell(f"shard {len(finished)}/{len(plan)} done ({where})")

        outputs: list[ShardOutput] = runner.map(align_shard, tasks, shard_done)
        report = _report(spec, anchors.frame.height, anchors.notes, loads, by_stream, outputs)
        _write_table([o.path for o in outputs], table_path)
        report_path = report_path_for(table_path)
        report_path.write_text(json.dumps(report.to_json(), indent=2) + "\n")
        return ShardedResult(report=report, table_path=table_path, report_path=report_path, shards=len(plan))
    finally:
        try:
            if runner is not None:
                runner.close()
        finally:
            shutil.rmtree(scratch, ignore_errors=True)


def _clean(
    spec: StreamsSpec, base_dir: Path, groups: KeyGroups, scratch: Path, run: Any, tell: Callable[[str], None]
) -> list[CleanedPart]:
    (scratch / "clean").mkdir()
    tasks = [
        (spec, i, base_dir, groups, group, str(scratch))
        for i, s in enumerate(spec.streams)
        for group in (range(groups.count) if s.key is not None else [None])
    ]

    finished: list[int] = []

    def done(k: int) -> None:
        finished.append(k)
        _, i, _, _, group, _ = tasks[k]
        part = "all entities" if group is None else f"entity group {group + 1}/{groups.count}"
        tell(f"cleaned {spec.streams[i].name}, {part} ({len(finished)} of {len(tasks)} parts)")

    return list(run(clean_part, tasks, done))


def clean_part(
    spec: StreamsSpec, index: int, base_dir: Path, groups: KeyGroups, group: int | None, scratch: str
) -> CleanedPart:
    """Step 1 for one stream × key group (a task: runs in a worker)."""
    stream = spec.streams[index]
    keep = None if group is None else groups.keep(group)
    loaded, notes = load_stream_part(stream, base_dir, keep)
    frame = loaded.frame
    path = Path(scratch) / "clean" / f"{index}-{'all' if group is None else group}.parquet"
    frame.write_parquet(path, compression="lz4")  # scratch: read back soon, by this machine
    ends = frame.group_by(KEY).agg(pl.col(T_US).min().alias("lo"), pl.col(T_US).max().alias("hi"))
    spans = pl.concat([ends.select(KEY, pl.col(e).alias(T_US)) for e in ("lo", "hi")])
    ctx = RuleContext(base_dir=base_dir, media_dir=media_dir_for(spec, base_dir))
    row_details = dict(STREAM_KINDS.get(stream.kind).align(frame, NO_ANCHORS, stream, ctx).details)
    return CleanedPart(
        index, group, str(path), LoadPart(loaded.stats, notes), spans, gap_counts(frame), row_details
    )


def _plan(anchors: pl.DataFrame, groups: KeyGroups, bucket_s: float | None) -> list[Shard]:
    """The shards that own anchors, in (bucket, group) order; one (empty) shard when none do, so the
    table still gets its columns."""
    if anchors.height == 0:
        return [Shard(0, 0, None, None)]
    t_min, t_max = int(anchors[T_US].min()), int(anchors[T_US].max())  # type: ignore[arg-type]
    buckets = plan_buckets(t_min, t_max, bucket_s)
    bucket = pl.lit(0, dtype=pl.Int64)
    if bucket_s is not None:
        start = buckets[0][0]
        width = buckets[0][1] - start  # type: ignore[operator]
        bucket = (pl.col(T_US) - start) // width
    owners = (
        anchors.select(bucket.alias("b"), groups.group_of(pl.col(KEY)).alias("g")).unique().sort("b", "g")
    )
    return [Shard(g, b, *buckets[b]) for b, g in owners.iter_rows()]


def _paths(spec: StreamsSpec, cleaned: list[CleanedPart], shard: Shard) -> dict[str, str]:
    """Per stream, the cleaned file a shard reads: its key group's, or the whole keyless stream's."""
    out = {}
    for c in cleaned:
        if c.group is None or c.group == shard.group:
            out[spec.streams[c.stream].name] = c.path
    return out


def align_shard(
    spec: StreamsSpec,
    base_dir: Path,
    shard: Shard,
    groups: KeyGroups,
    reach: Reach,
    cleaned: dict[str, str],
    scratch: str,
) -> ShardOutput:
    """Step 3 for one shard (a task: runs in a worker)."""
    anchors = _own_anchors(Path(scratch) / "anchors.parquet", shard, groups)
    ctx = RuleContext(base_dir=base_dir, media_dir=media_dir_for(spec, base_dir))
    outputs, details = {}, {}
    for s in spec.streams:
        frame = read_around(Path(cleaned[s.name]), shard, reach)
        rule = STREAM_KINDS.get(s.kind).align
        outputs[s.name] = rule(frame, anchors, s, ctx)
        details[s.name] = subtract_counts(outputs[s.name].details, rule(frame, NO_ANCHORS, s, ctx).details)
    table, dropped = sample_rows(spec, anchors, outputs)
    path = Path(scratch) / "parts" / f"{shard.bucket:08d}-{shard.group:06d}.parquet"
    path.parent.mkdir(exist_ok=True)
    # in anchor id order, in row groups the final merge reads one at a time
    table.sort(ANCHOR).write_parquet(path, compression="lz4", row_group_size=MERGE_BATCH_ROWS)
    status = {s.name: status_counts(outputs[s.name].columns, s.name) for s in spec.streams}
    return ShardOutput(str(path), table.height, status, details, dropped)


def _own_anchors(path: Path, shard: Shard, groups: KeyGroups) -> pl.DataFrame:
    mine = groups.group_of(pl.col(KEY)) == shard.group
    if shard.start_us is not None and shard.end_us is not None:
        mine = mine & (pl.col(T_US) >= shard.start_us) & (pl.col(T_US) < shard.end_us)
    return pl.scan_parquet(path).filter(mine).collect()


def read_around(path: Path, shard: Shard, reach: Reach) -> pl.DataFrame:
    """The cleaned rows in [start - lookback, end + lookahead), and per entity and clock segment the
    last row before and the first row after (shards.py), in the frame's (key, t_us) order."""
    lazy = pl.scan_parquet(path)
    if shard.start_us is None or shard.end_us is None:
        return lazy.collect()
    lo, hi = shard.start_us - reach.lookback_us, shard.end_us + reach.lookahead_us
    t = pl.col(T_US)
    by = [KEY, SEGMENT]
    inside = lazy.filter((t >= lo) & (t < hi))
    # (key, t_us) is unique in a cleaned frame: the row at each run's latest (earliest) time is one row
    last = lazy.filter(t < lo).group_by(by).agg(t.max())
    first = lazy.filter(t >= hi).group_by(by).agg(t.min())
    before = lazy.join(last, on=[*by, T_US], how="semi")
    after = lazy.join(first, on=[*by, T_US], how="semi")
    return pl.concat([before, inside, after]).collect().sort(KEY, T_US)


def _report(
    spec: StreamsSpec,
    n_anchors: int,
    anchor_notes: tuple[str, ...],
    loads: dict[str, Any],
    by_stream: list[list[CleanedPart]],
    outputs: list[ShardOutput],
) -> AlignmentReport:
    streams = []
    for i, s in enumerate(spec.streams):
        parts = by_stream[i]
        counts = add_counts([o.status[s.name] for o in outputs])
        details = add_counts([c.row_details for c in parts] + [o.details[s.name] for o in outputs])
        p50, p95, gap_max = percentiles_of_gaps(merge_gap_counts([c.gaps for c in parts]))
        streams.append(
            StreamReport(
                name=s.name,
                kind=s.kind,
                anchors=n_anchors,
                observed=counts.get("observed", 0),
                imputed=counts.get("imputed", 0),
                absent=counts.get("absent", 0),
                gap_p50_s=p50,
                gap_p95_s=p95,
                gap_max_s=gap_max,
                load=loads[s.name],
                details=details,
            )
        )
    reasons = [DROP_EMPTY, *(drop_reason(s.name) for s in spec.streams)]
    dropped = add_counts([o.dropped for o in outputs])
    return AlignmentReport(
        anchors=n_anchors,
        rows=sum(o.rows for o in outputs),
        streams=tuple(streams),
        dropped={r: dropped[r] for r in reasons if dropped.get(r, 0) > 0},
        notes=tuple(anchor_notes) + tuple(f"{name}: {n}" for name, st in loads.items() for n in st.notes),
    )


def _write_table(parts: list[str], target: Path) -> None:
    """The shards' rows in anchor order, written aside and renamed over `target`, holding about
    `MERGE_BATCH_ROWS` rows of each part of one time bucket at a time, never the table.

    The parts of a time bucket (one per entity group) each hold their anchors in id order, and a
    bucket's anchors are one run of ids (ids follow time), so the table is the buckets in order,
    each a k-way merge of its parts by anchor id. A merge rather than a bucket size chosen when
    none is given: the output is one pass's row for row whatever the data, and memory is bounded by
    the number of entity groups × a batch, not by how the anchors fall in time."""
    by_bucket: dict[str, list[str]] = {}
    for part in sorted(parts):
        by_bucket.setdefault(Path(part).name.split("-")[0], []).append(part)
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    writer = None
    try:
        for bucket in sorted(by_bucket):
            for rows in merge_by_anchor(by_bucket[bucket]):
                table = rows.to_arrow()
                if writer is None:
                    writer = pq.ParquetWriter(temporary, table.schema)
                writer.write_table(table.cast(writer.schema))
        if writer is not None:
            writer.close()
            writer = None
        os.replace(temporary, target)
    finally:
        if writer is not None:
            writer.close()
        temporary.unlink(missing_ok=True)


MERGE_BATCH_ROWS = 65_536  # rows read from each part at a time by the final merge


def merge_by_anchor(paths: list[str], batch_rows: int | None = None) -> Iterator[pl.DataFrame]:
    """The rows of Parquet files each sorted by anchor id (ids unique across them), in id order:
    batches of at most about len(paths) × batch_rows rows. Every file's first batch, then, each
    round, every row up to the smallest last id of the held batches (no row still unread can come
    before it) goes out, and the batches that ran out are refilled. An empty table (its columns)
    comes out when every file is empty."""
    size = MERGE_BATCH_ROWS if batch_rows is None else batch_rows
    readers = [pq.ParquetFile(p).iter_batches(batch_size=size) for p in paths]
    held: list[pl.DataFrame | None] = [_next_batch(r) for r in readers]
    if all(h is None for h in held):
        yield pl.read_parquet(paths[0]).head(0)
        return
    while any(h is not None for h in held):
        frontier = min(int(h[ANCHOR][-1]) for h in held if h is not None)
        out = []
        for i, h in enumerate(held):
            if h is None:
                continue
            n = int(h[ANCHOR].search_sorted(frontier, side="right"))
            out.append(h.head(n))
            held[i] = h.slice(n) if n < h.height else _next_batch(readers[i])
        yield pl.concat(out).sort(ANCHOR)


def _next_batch(batches: Iterator[Any]) -> pl.DataFrame | None:
    for batch in batches:
        if batch.num_rows:
            frame = pl.from_arrow(batch)
            assert isinstance(frame, pl.DataFrame)
            return frame
    return None
