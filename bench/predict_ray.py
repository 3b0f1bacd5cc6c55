"""`plait predict --engine ray` against `--engine local` on one large table: throughput, peak memory
of every process involved, and whether the outputs are equal.

Trains the small two-vector model of predict_memory.py, writes a table of `--rows` rows, then
predicts it in a fresh process per engine (local: chunk after chunk; ray: a Ray started for the
run with `--workers` actors). Memory is the peak of the summed resident memory of the driver and
every process it started (Ray's workers, raylet, GCS), sampled every 0.2 s from /proc.

    .venv/bin/python bench/predict_ray.py --rows 1000000 --workers 2
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import polars as pl

from embed_memory import table, write_big
from predict_memory import train_bundle

CHILD = """
import json, sys, time
from pathlib import Path
import torch
torch.set_num_threads(1)
from plait.batch_predict import predict_file
from plait.batch_predict_ray import predict_file_ray
from plait.predictor import Predictor
bundle, data, out, chunk, engine, workers = sys.argv[1:7]
start = time.perf_counter()
if engine == "local":
    run = predict_file(Predictor.load(bundle), Path(data), Path(out), chunk_rows=int(chunk))
else:
    run = predict_file_ray(Path(bundle), Path(data), Path(out), chunk_rows=int(chunk), workers=int(workers))
print(json.dumps({"rows": run.rows, "seconds": time.perf_counter() - start}))
"""


def _tree_rss_mib(root: int) -> float:
    """Summed resident memory of `root` and every process descended from it (Ray's daemons and
    workers are started by the driver, so they descend from it)."""
    parents: dict[int, int] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
            parents[int(entry)] = int(fields[1])
            rss[int(entry)] = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, IndexError, ValueError):
            continue
    tree, grown = {root}, True
    while grown:
        more = {pid for pid, parent in parents.items() if parent in tree} - tree
        grown = bool(more)
        tree |= more
    return sum(rss.get(pid, 0) for pid in tree) / 2**20


def run(folder: Path, engine: str, rows: int, chunk_rows: int, workers: int) -> dict[str, float]:
    out = folder / f"{engine}.parquet"
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(folder / "bundle"), str(folder / "big.parquet"), str(out),
         str(chunk_rows), engine, str(workers)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    peak = [0.0]

    def sample() -> None:
        while child.poll() is None:
            peak[0] = max(peak[0], _tree_rss_mib(child.pid))
            time.sleep(0.2)

    sampler = threading.Thread(target=sample)
    sampler.start()
    stdout, stderr = child.communicate()
    sampler.join()
    if child.returncode != 0:
        raise SystemExit(f"{engine} failed:\n{stderr[-3000:]}")
    result = json.loads(stdout.strip().splitlines()[-1])
    result["peak_mib"] = peak[0]
    print(
        f"{engine}: {result['rows'] / result['seconds']:,.0f} rows/s ({result['seconds']:.1f} s), "
        f"peak {peak[0]:,.0f} MiB (all its processes)"
    )
    return result


def agreement(folder: Path) -> str:
    """How far the two outputs are apart: float columns by their largest difference (the engines'
    batches may be cut at other rows, and a matmul's rounding depends on the batch), the rest exactly."""
    a, b = pl.read_parquet(folder / "local.parquet"), pl.read_parquet(folder / "ray.parquet")
    if a.columns != b.columns or a.height != b.height:
        return f"outputs differ in shape: {a.shape} against {b.shape}"
    floats = [c for c, t in a.schema.items() if t.is_float()]
    others = [c for c in a.columns if c not in floats]
    gap = max((float((a[c] - b[c]).abs().max() or 0.0) for c in floats), default=0.0)
    same = a.select(others).equals(b.select(others))
    return f"non-float columns equal: {same}; largest probability difference {gap:.1e}"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--chunk-rows", type=int, default=4096)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="plait-predict-ray-") as tmp:
        folder = Path(tmp)
        train_bundle(folder)
        write_big(table(args.rows, 1).drop("id"), folder, args.chunk_rows)
        local = run(folder, "local", args.rows, args.chunk_rows, args.workers)
        ray = run(folder, "ray", args.rows, args.chunk_rows, args.workers)
        print(
            f"ray / local: throughput {local['seconds'] / ray['seconds']:.2f}×, peak memory "
            f"{ray['peak_mib'] / local['peak_mib']:.2f}×; {agreement(folder)}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
