"""`plait embed` streams: its peak memory stays near the size of one chunk, not the table's.

Trains a small label-free shared space of two vector fields, writes a table of `--rows` rows, then
embeds it in a fresh process per setting — chunks of `--chunk-rows` against one chunk holding the
whole table — and prints rows/s and peak resident memory of each, with the ratio.

    .venv/bin/python bench/embed_memory.py --rows 500000
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

CHILD = """
import json, resource, sys, time
from pathlib import Path
import torch
torch.set_num_threads(2)
from plait.bundle import load_bundle
from plait.retrieval.embed_file import embed_file
bundle, data, out, chunk = sys.argv[1:5]
trained = load_bundle(bundle)
start = time.perf_counter()
run = embed_file(trained, Path(data), Path(out), chunk_rows=int(chunk))
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB -> MiB on Linux
print(json.dumps({"rows": run.rows, "seconds": seconds, "peak_mib": peak}))
"""


def table(rows: int, seed: int) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(rows, 4)).astype(np.float32)
    a = z @ rng.normal(size=(4, 32)).astype(np.float32) + 0.1 * rng.normal(size=(rows, 32)).astype(np.float32)
    b = np.tanh(z @ rng.normal(size=(4, 24)).astype(np.float32))
    return pl.DataFrame(
        {
            "id": np.arange(rows),
            "va": pl.Series(a).cast(pl.List(pl.Float32)),
            "vb": pl.Series(b).cast(pl.List(pl.Float32)),
        }
    )


def write_big(big: pl.DataFrame, folder: Path, chunk_rows: int) -> None:
    """FOLDER/big.parquet, in row groups of a chunk."""
    started = time.perf_counter()
    big.write_parquet(folder / "big.parquet", row_group_size=chunk_rows)
    size = (folder / "big.parquet").stat().st_size / 2**20
    print(f"{big.height} rows written in {time.perf_counter() - started:.1f} s ({size:.0f} MiB on disk)")


def compare_chunks(child: str, folder: Path, rows: int, chunk_rows: int) -> None:
    """Run `child` (FOLDER/bundle over FOLDER/big.parquet) in a fresh process with chunks of
    `chunk_rows` and with one chunk of all `rows`; print each one's rate and peak memory, and the
    ratios."""
    results = {}
    for name, chunk in (("streamed", chunk_rows), ("one chunk", rows)):
        done = subprocess.run(
            [sys.executable, "-c", child, str(folder / "bundle"), str(folder / "big.parquet"),
             str(folder / f"{chunk}.parquet"), str(chunk)],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        results[name] = r = json.loads(done.stdout.strip().splitlines()[-1])
        print(
            f"{name} (chunks of {chunk} rows): {r['rows'] / r['seconds']:,.0f} rows/s, "
            f"peak {r['peak_mib']:.0f} MiB"
        )
    ratio = results["one chunk"]["peak_mib"] / results["streamed"]["peak_mib"]
    speed = results["streamed"]["seconds"] / results["one chunk"]["seconds"]
    print(f"peak memory: one chunk / streamed = {ratio:.1f}×; time streamed / one chunk = {speed:.2f}×")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=500_000)
    parser.add_argument("--chunk-rows", type=int, default=4096)
    args = parser.parse_args()
    from plait.config import Config
    from plait.workflow.train import train

    with tempfile.TemporaryDirectory(prefix="plait-embed-bench-") as tmp:
        folder = Path(tmp)
        table(3000, 0).write_parquet(folder / "train.parquet")
        config = Config.from_dict(
            {
                "data": {"path": "train.parquet", "split": {"kind": "random"}},
                "fields": {"va": "embedding", "vb": "embedding"},
                "space": {"dim": 64},
                "train": {"stages": [{"kind": "contrastive", "epochs": 3}], "progress": False},
            },
            base_dir=folder,
        )
        train(config, out=folder / "bundle")
        write_big(table(args.rows, 1), folder, args.chunk_rows)
        compare_chunks(CHILD, folder, args.rows, args.chunk_rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
