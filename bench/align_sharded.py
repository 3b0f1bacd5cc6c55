"""Alignment beyond memory: `plait align --shards` on a synthetic sensor stream larger than one pass
holds comfortably, with the peak memory of the whole process tree (driver + workers) measured.

    .venv/bin/python bench/align_sharded.py [--rows 200000000] [--entities 20000] [--shards auto]
        [--bucket-s 300] [--workers 2] [--compare-rows 10000000] [--compare-entities 1000]
        [--hop-s 10] [--data /tmp/plait_bench_sharded]

Data: per entity a 10 Hz 3-channel sensor (epoch ms, Float32 readings, a dropout of 0.3–3 s in
about 1 of 2,000 intervals), written entity by entity into one Parquet file in row groups of about
1 M rows, never held whole. Anchors slide every `--hop-s` (10 s) per entity; each takes a 1-s window
resampled to 10 Hz, tolerance 50 ms, linear interpolation of gaps up to 0.5 s. A small hop makes the
sample table itself large (list columns): the final merge must not hold it either.

Two runs of the CLI in fresh processes, each polled every 0.1 s for the summed resident memory of
its process tree (/proc):
  compare  --compare-rows rows: one pass (today's path) and sharded; prints both peaks, their ratio,
           and checks the tables (every row and value) and the reports are identical
  big      --rows rows: sharded only; prints rows/s, shards, wall time and peak memory
Generated data lives under --data (default /tmp), never in the repository.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

RATE_HZ = 10
STEP_MS = 1000 // RATE_HZ
T0_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z
ROW_GROUP = 1_000_000


def generate(path: Path, rows: int, entities: int, seed: int) -> None:
    """`rows` rows over `entities` entities, written in ~1 M-row chunks (entity by entity)."""
    rng = np.random.default_rng(seed)
    per = rows // entities
    chunk = max(1, ROW_GROUP // per)  # entities per written chunk
    schema = pa.schema(
        [
            ("time", pa.int64()),
            ("machine", pa.string()),
            ("ax", pa.float32()),
            ("ay", pa.float32()),
            ("az", pa.float32()),
        ]
    )
    with pq.ParquetWriter(path, schema) as writer:
        for first in range(0, entities, chunk):
            n = min(chunk, entities - first)
            step = np.full((n, per), STEP_MS, dtype=np.int64)
            dropout = rng.random((n, per)) < 0.0005
            step[dropout] += rng.integers(300, 3000, size=int(dropout.sum()))
            t = T0_MS + rng.integers(0, 1000, size=(n, 1)) + np.cumsum(step, axis=1)  # (n, per)
            names = np.repeat(np.array([f"m{i:06d}" for i in range(first, first + n)]), per)
            values = rng.standard_normal((n * per, 3), dtype=np.float32)
            table = pa.table(
                {
                    "time": t.ravel(),
                    "machine": names,
                    "ax": values[:, 0],
                    "ay": values[:, 1],
                    "az": values[:, 2],
                },
                schema=schema,
            )
            writer.write_table(table)


def config(root: Path, output: str, hop_s: float = 10.0) -> Path:
    streams = {
        "anchors": {"hop_s": hop_s, "key": "machine"},
        "output": output,
        "sources": {
            "vibration": {
                "kind": "timeseries",
                "path": "vibration.parquet",
                "time_format": "epoch_ms",
                "key": "machine",
                "columns": ["ax", "ay", "az"],
                "window_s": 1.0,
                "rate_hz": RATE_HZ,
                "tolerance_s": 0.05,
                "impute": "interpolate",
                "max_gap_s": 0.5,
            }
        },
    }
    path = root / f"{Path(output).stem}.yaml"
    path.write_text(yaml.safe_dump({"task": {"label": "none"}, "streams": streams}))
    return path


def tree_rss_mib(root_pid: int) -> float:
    """Resident memory of `root_pid` and all its descendants, in MiB."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
                parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    tree, frontier = {root_pid}, [root_pid]
    while frontier:
        pid = frontier.pop()
        children = [p for p, parent in parents.items() if parent == pid and p not in tree]
        tree.update(children)
        frontier += children
    total_kib = 0
    for pid in tree:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total_kib += int(line.split()[1])
        except OSError:
            continue
    return total_kib / 1024


def run_align(config_path: Path, args: list[str]) -> tuple[float, float, str]:
    """(wall s, peak MiB of the process tree, output) of `plait align CONFIG ARGS` in a fresh process."""
    command = [
        sys.executable,
        "-c",
        "from plait.cli.main import app; app()",
        "align",
        str(config_path),
        *args,
    ]
    started = time.monotonic()
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "COLUMNS": "160"},
    )
    peak = [0.0]

    def poll() -> None:
        while process.poll() is None:
            peak[0] = max(peak[0], tree_rss_mib(process.pid))
            time.sleep(0.1)

    watcher = threading.Thread(target=poll, daemon=True)
    watcher.start()
    output, _ = process.communicate()
    watcher.join()
    wall = time.monotonic() - started
    if process.returncode != 0:
        raise SystemExit(f"plait align {' '.join(args)} failed:\n{output}")
    return wall, peak[0], output


def identical(root: Path, a: str, b: str) -> bool:
    """Every row and value of two sample tables, compared a row group at a time; and the reports."""
    fa, fb = pq.ParquetFile(root / a), pq.ParquetFile(root / b)
    if fa.metadata.num_rows != fb.metadata.num_rows or fa.schema_arrow != fb.schema_arrow:
        return False
    ba, bb = fa.iter_batches(batch_size=200_000), fb.iter_batches(batch_size=200_000)
    left, right = pl.DataFrame(), pl.DataFrame()
    for batch in ba:
        left = pl.concat([left, pl.from_arrow(batch)]) if left.height else pl.from_arrow(batch)  # type: ignore[assignment]
        while right.height < left.height:
            right = pl.concat([right, pl.from_arrow(next(bb))]) if right.height else pl.from_arrow(next(bb))  # type: ignore[assignment]
        n = min(left.height, right.height)
        if not left.head(n).equals(right.head(n)):
            return False
        left, right = left.slice(n), right.slice(n)
    reports = [json.loads((root / name.replace(".parquet", ".report.json")).read_text()) for name in (a, b)]
    return reports[0] == reports[1]


def sharding_args(ns: argparse.Namespace) -> list[str]:
    args = ["--shards", ns.shards, "--workers", str(ns.workers)]
    return args + (["--bucket-s", str(ns.bucket_s)] if ns.bucket_s is not None else [])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=200_000_000)
    parser.add_argument("--entities", type=int, default=20_000)
    parser.add_argument("--shards", default="auto")
    parser.add_argument("--bucket-s", type=float, default=None)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--compare-rows", type=int, default=10_000_000, help="0: skip the comparison")
    parser.add_argument("--compare-entities", type=int, default=1_000)
    parser.add_argument("--hop-s", type=float, default=10.0, help="anchor hop per entity")
    parser.add_argument("--data", type=Path, default=Path("/tmp/plait_bench_sharded"))
    parser.add_argument("--seed", type=int, default=0)
    ns = parser.parse_args()
    if ns.compare_rows > 0:
        root = ns.data / f"compare_{ns.compare_rows}"
        root.mkdir(parents=True, exist_ok=True)
        if not (root / "vibration.parquet").exists():
            generate(root / "vibration.parquet", ns.compare_rows, ns.compare_entities, ns.seed)
        one_s, one_mib, _ = run_align(config(root, "one.parquet", ns.hop_s), [])
        sh_s, sh_mib, out = run_align(config(root, "sharded.parquet", ns.hop_s), sharding_args(ns))
        shards = out.count("done (entity group")
        print(f"compare {ns.compare_rows:,} rows: one pass {one_s:.1f} s, {one_mib:,.0f} MiB peak")
        print(
            f"compare {ns.compare_rows:,} rows: sharded ({shards} shards) {sh_s:.1f} s, "
            f"{sh_mib:,.0f} MiB peak"
        )
        print(f"compare: peak memory sharded / one pass = {sh_mib / one_mib:.2f}")
        print(f"compare: tables and reports identical: {identical(root, 'one.parquet', 'sharded.parquet')}")
    if ns.rows > 0:
        root = ns.data / f"big_{ns.rows}"
        root.mkdir(parents=True, exist_ok=True)
        if not (root / "vibration.parquet").exists():
            started = time.monotonic()
            generate(root / "vibration.parquet", ns.rows, ns.entities, ns.seed)
            print(f"generated {ns.rows:,} rows in {time.monotonic() - started:.0f} s")
        wall, peak, out = run_align(config(root, "sharded.parquet", ns.hop_s), sharding_args(ns))
        shards = out.count("done (entity group")
        rows_out = pq.ParquetFile(root / "sharded.parquet").metadata.num_rows
        print(
            f"big {ns.rows:,} rows: {shards} shards, {wall:.0f} s wall, {ns.rows / wall:,.0f} rows/s, "
            f"{wall / max(shards, 1):.1f} s per shard, {peak:,.0f} MiB peak (process tree), "
            f"{rows_out:,} samples"
        )


if __name__ == "__main__":
    main()
