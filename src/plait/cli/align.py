"""`plait align CONFIG`: raw timestamped streams → the sample table + the alignment report."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.table import Table

from plait.cli.show import add_number_column, add_text_column, narrow_table

ROWS_PER_SHARD = 2_000_000  # --shards auto: under ~0.5 GB per worker for sensor rows (bench/align_sharded.py)

if TYPE_CHECKING:
    from plait.align.report import AlignmentReport
    from plait.align.spec import StreamsSpec


def align_command(
    config: Path = typer.Argument(..., help="A config with a `streams:` section."),
    estimate_offset: tuple[str, str] | None = typer.Option(
        None,
        "--estimate-offset",
        help="Estimate the clock offset of stream B against stream A: --estimate-offset A B.",
    ),
    max_offset: float = typer.Option(
        10.0, help="With --estimate-offset: largest offset searched, in seconds."
    ),
    per_key: bool = typer.Option(False, help="With --estimate-offset: one offset per entity."),
    write: bool = typer.Option(False, help="With --estimate-offset: write the offset into CONFIG."),
    shards: str = typer.Option(
        "1",
        help="Entity groups aligned one at a time or in parallel, so no process holds every stream: "
        "1 aligns in one pass (in memory); N uses N groups; auto uses one group per "
        f"{ROWS_PER_SHARD:,} source rows (one pass when the sources are smaller).",
    ),
    bucket_s: float | None = typer.Option(
        None,
        "--bucket-s",
        help="Also cut each entity group into time buckets of this many seconds (bounds the rows and "
        "anchors one shard aligns); the table and report are the same as in one pass.",
    ),
    engine: str = typer.Option(
        "local",
        help="Where shards run: local (worker processes here) or ray (RAY_ADDRESS's cluster, or a "
        "Ray started here; needs Ray, the plait extra named ray).",
    ),
    workers: int | None = typer.Option(
        None, help="Shards run at once (default: the CPU count, at most the number of entity groups)."
    ),
) -> None:
    """Align the streams of CONFIG into one row per anchor, and report what was found and filled."""
    from plait.config import load_config
    from plait.errors import ConfigError

    cfg = load_config(config)
    if cfg.streams is None:
        raise ConfigError(
            f"{config}: no `streams:` section; `plait align` turns raw timestamped streams into samples"
        )
    console = Console()
    if estimate_offset is not None:
        _estimate(config, cfg.streams, cfg.base_dir, estimate_offset, max_offset, per_key, write, console)
        return
    say = lambda m: console.print(m, highlight=False)  # noqa: E731
    groups = _shard_count(shards, cfg.streams, cfg.base_dir)
    if groups == 1 and bucket_s is None and engine == "local":
        from plait.align.align import align

        if workers is not None and shards != "auto":  # refused, not ignored, as elsewhere
            raise typer.BadParameter(
                "--workers sets how many shards run at once; with --shards 1 (and no --bucket-s) "
                "alignment runs in one pass, in this process: drop --workers, or shard "
                "(--shards N or auto, --bucket-s S)",
                param_hint="--workers",
            )
        if shards == "auto":  # the data decided: say so rather than refuse
            unused = ", --workers unused" if workers is not None else ""
            say(f"--shards auto: one entity group, aligning in one pass in this process{unused}")

        result = align(cfg.streams, cfg.base_dir, say=say)
        show_report(result.report, console)
        console.print(
            f"wrote {result.table_path} ({result.table.height} rows) and {result.report_path}",
            highlight=False,
        )
        return
    from plait.align.engines import ENGINES
    from plait.align.sharded import align_sharded

    ENGINES.get(engine)  # an unknown engine fails before any work, with the names there are
    sharded = align_sharded(
        cfg.streams, cfg.base_dir, shards=groups, bucket_s=bucket_s, engine=engine, workers=workers, say=say
    )
    show_report(sharded.report, console)
    console.print(
        f"wrote {sharded.table_path} ({sharded.report.rows} rows, {sharded.shards} shards) and "
        f"{sharded.report_path}",
        highlight=False,
    )


def _shard_count(shards: str, spec: StreamsSpec, base_dir: Path) -> int:
    from plait.align.shards import auto_shards
    from plait.errors import ConfigError

    if shards == "auto":
        return auto_shards(spec, base_dir, ROWS_PER_SHARD)
    if not shards.isdigit() or int(shards) < 1:
        raise ConfigError(f"--shards: expected a number of entity groups ≥ 1 or auto, got {shards!r}")
    return int(shards)


def show_report(report: AlignmentReport, console: Console) -> None:
    """One row per stream, narrow enough for 80 columns (the gaps between an entity's samples in
    three columns); a stream's anomalies, when it has any, on a line under the table."""
    from plait.align.report import human_seconds

    table = narrow_table(f"alignment: {report.rows} samples from {report.anchors} anchors")
    add_text_column(table, "stream")
    add_text_column(table, "kind")
    for name in ("cover %", "imputed %", "absent %", "gap p50", "p95", "max"):
        add_number_column(table, name)
    for s in report.streams:
        gaps = (human_seconds(g) for g in (s.gap_p50_s, s.gap_p95_s, s.gap_max_s))
        table.add_row(
            s.name,
            s.kind,
            f"{s.coverage_pct:.1f}",
            f"{s.pct(s.imputed):.1f}",
            f"{s.pct(s.absent):.1f}",
            *gaps,
        )
    console.print(table)
    for s in report.streams:
        found = s.anomalies()
        if found:
            listed = ", ".join(f"{v} {k}" for k, v in found.items())
            console.print(f"anomalies in {s.name}: {listed}", highlight=False)
    for reason, count in report.dropped.items():
        console.print(f"dropped {count} anchors: {reason}", highlight=False)
    for note in report.notes:
        console.print(f"note: {note}", highlight=False)


def _estimate(
    config_path: Path,
    spec: StreamsSpec,
    base_dir: Path,
    streams: tuple[str, str],
    max_offset: float,
    per_key: bool,
    write: bool,
    console: Console,
) -> None:
    from plait.align.estimate import estimate_between
    from plait.align.offset import ALL_KEYS
    from plait.align.offset_write import write_offset

    a, b = streams
    estimates = estimate_between(
        spec,
        base_dir,
        a,
        b,
        per_key=per_key,
        max_offset_s=max_offset,
        say=lambda m: console.print(m, highlight=False),
    )
    current = spec.stream(b)
    table = Table(title=f"clock offset of '{b}' against '{a}' (seconds to add to {b})")
    for name in ("entity", "offset s", "confidence", "peak r", "overlap s", "shared s", "reliable"):
        table.add_column(name)
    for key, est in estimates.items():
        table.add_row(
            key,
            f"{est.offset_s:+.4f}",
            f"{est.confidence:.2f}",
            f"{est.peak_correlation:.2f}",
            f"{est.overlap_s:.1f}",
            f"{est.shared_s:.1f}",
            "yes" if est.reliable else "NO" + (" (at search limit)" if est.at_limit else ""),
        )
    console.print(table)
    if write:
        for key, est in estimates.items():
            if not est.reliable:
                console.print(
                    f"not writing the offset for {key}: the estimate is not reliable", highlight=False
                )
                continue
            entity = None if key == ALL_KEYS else key
            base = current.offset_s if entity is None else current.offsets_s.get(entity, 0.0)
            write_offset(config_path, b, base + est.offset_s, entity)
        console.print(f"updated {config_path}", highlight=False)
