"""`plait predict` streams: throughput and peak memory on a large table, in chunks against one pass.

Trains a small gated model on two vector fields, writes a table of `--rows` rows, then predicts it
in a fresh process per setting — `plait predict`'s chunks of `--chunk-rows` against one chunk
holding the whole table (what `predict` did before it streamed) — and prints rows/s and peak
resident memory of each, with the ratio.

    .venv/bin/python bench/predict_memory.py --rows 1000000
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

from embed_memory import table

CHILD = """
import json, resource, sys, time
from pathlib import Path
import torch
torch.set_num_threads(2)
from plait.batch_predict import predict_file
from plait.predictor import Predictor
bundle, data, out, chunk = sys.argv[1:5]
predictor = Predictor.load(bundle)
start = time.perf_counter()
run = predict_file(predictor, Path(data), Path(out), chunk_rows=int(chunk))
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB -> MiB on Linux
print(json.dumps({"rows": run.rows, "seconds": seconds, "peak_mib": peak}))
"""


def labelled(rows: int, seed: int) -> pl.DataFrame:
    df = table(rows, seed)
    first = np.array([v[0] for v in df["va"].to_list()]) if rows <= 10_000 else None
    if first is None:  # large tables only need the columns the model reads
        return df.drop("id")
    return df.with_columns(pl.Series("y", np.where(first > 0, "hi", "lo")))


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--chunk-rows", type=int, default=4096)
    args = parser.parse_args()
    from plait.config import Config
    from plait.workflow.train import train

    with tempfile.TemporaryDirectory(prefix="plait-predict-bench-") as tmp:
        folder = Path(tmp)
        labelled(3000, 0).write_parquet(folder / "train.parquet")
        config = Config.from_dict(
            {
                "data": {"path": "train.parquet", "split": {"kind": "random"}},
                "task": {"label": "y"},
                "fields": {"va": "embedding", "vb": "embedding"},
                "train": {"epochs": 3, "progress": False},
            },
            base_dir=folder,
        )
        train(config, out=folder / "bundle")
        started = time.perf_counter()
        labelled(args.rows, 1).write_parquet(folder / "big.parquet", row_group_size=args.chunk_rows)
        size = (folder / "big.parquet").stat().st_size / 2**20
        print(f"{args.rows} rows written in {time.perf_counter() - started:.1f} s ({size:.0f} MiB on disk)")
        results = {}
        for name, chunk in (("streamed", args.chunk_rows), ("one chunk", args.rows)):
            done = subprocess.run(
                [sys.executable, "-c", CHILD, str(folder / "bundle"), str(folder / "big.parquet"),
                 str(folder / f"{chunk}.parquet"), str(chunk)],
                capture_output=True, text=True, check=True,
            )  # fmt: skip
            results[name] = json.loads(done.stdout.strip().splitlines()[-1])
            r = results[name]
            print(
                f"{name} (chunks of {chunk} rows): {r['rows'] / r['seconds']:,.0f} rows/s, "
                f"peak {r['peak_mib']:.0f} MiB"
            )
        ratio = results["one chunk"]["peak_mib"] / results["streamed"]["peak_mib"]
        speed = results["streamed"]["seconds"] / results["one chunk"]["seconds"]
        print(f"peak memory: one chunk / streamed = {ratio:.1f}×; time streamed / one chunk = {speed:.2f}×")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
