"""`plait predict` streams: throughput and peak memory on a large table, in chunks against one pass.

Trains a small gated model on two vector fields, writes a table of `--rows` rows, then predicts it
in a fresh process per setting — `plait predict`'s chunks of `--chunk-rows` against one chunk
holding the whole table (what `predict` did before it streamed) — and prints rows/s and peak
resident memory of each, with the ratio.

    .venv/bin/python bench/predict_memory.py --rows 1000000
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import polars as pl

from embed_memory import compare_chunks, table, write_big

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
    """The vector table with a label from the sign of va's first value."""
    return table(rows, seed).with_columns(
        y=pl.when(pl.col("va").list.first() > 0).then(pl.lit("hi")).otherwise(pl.lit("lo"))
    )


def train_bundle(folder: Path) -> None:
    """FOLDER/bundle: a small gated model on the two vector fields, trained on 3,000 labelled rows."""
    from plait.config import Config
    from plait.workflow.train import train

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


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--chunk-rows", type=int, default=4096)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="plait-predict-bench-") as tmp:
        folder = Path(tmp)
        train_bundle(folder)
        write_big(table(args.rows, 1).drop("id"), folder, args.chunk_rows)  # the model's columns
        compare_chunks(CHILD, folder, args.rows, args.chunk_rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
