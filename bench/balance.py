"""Modality collapse on a constructed case, and what the mitigations do about it.

The pumps demo table gets one more field, `leak`: the fault label itself for a share of the rows
(`--leak`, default 0.9) and a random class otherwise. It is a shortcut the model learns in the
first epochs, after which the other fields get almost no gradient. The same prepared data is
trained three times (same split, same seed): without mitigation, with unimodal auxiliary losses
(train.aux_loss) and with OGM-GE gradient modulation (train.ogm_ge). For each run it prints
every field's share of the fusion's gradient, every field's own held-out accuracy (a light head
on its embedding alone), the fused accuracy, the fused accuracy with `leak` removed at test time,
and whether the imbalance warning fired.

    .venv/bin/python bench/balance.py [--rows 1200] [--epochs 20] [--seed 0] [--leak 0.9]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl
import torch

from plait.datasets.pumps import CLASSES, LABEL, generate_pumps
from plait.demo import demo_config
from plait.training.fit import prepare
from plait.workflow.train import fit_prepared

RUNS = {
    "none": {},
    "aux_loss=1": {"aux_loss": 1.0},
    "ogm_ge=0.5": {"ogm_ge": 0.5},
}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1200)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--leak", type=float, default=0.9, help="share of rows whose `leak` is the label")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory() as tmp:
        data = generate_pumps(Path(tmp), n=args.rows, seed=args.seed)
        table = pl.read_parquet(data.table_path)
        rng = np.random.default_rng(args.seed + 1)
        labels = np.asarray(table[LABEL].to_list())
        keep = rng.random(len(labels)) < args.leak
        leak = np.where(keep, labels, np.asarray(CLASSES)[rng.integers(0, len(CLASSES), len(labels))])
        table = table.with_columns(pl.Series("leak", leak.tolist()))
        fields = {**data.fields, "leak": {"kind": "tabular", "categorical": ["leak"], "numeric": []}}
        cfg = demo_config(data.table_path, fields, fusion="gated", seed=args.seed, base_dir=data.root)
        cfg = cfg.with_overrides(train={"epochs": args.epochs, "progress": False})
        start = time.perf_counter()
        prepared = prepare(cfg, table=table)
        print(f"prepared {table.height} rows in {time.perf_counter() - start:.1f} s")
        results = {}
        for name, switches in RUNS.items():
            start = time.perf_counter()
            result = fit_prepared(prepared, config=cfg.with_overrides(train=switches))
            metrics = result.trained.metrics
            balance = metrics["balance"]
            results[name] = {
                "seconds": round(time.perf_counter() - start, 1),
                "fused_accuracy": metrics["metrics"]["accuracy"],
                "without_leak": _without(metrics, "leak"),
                "grad_share": balance["grad_share"],
                "own_accuracy": balance["own"],
                "warned": bool(balance["warnings"]),
            }
            print(f"\n== mitigation: {name} ({results[name]['seconds']} s)")
            for warning in balance["warnings"]:
                print(f"  warning: {warning}")
            print(
                f"  fused accuracy {results[name]['fused_accuracy']:.3f}, "
                f"without leak {results[name]['without_leak']}"
            )
            for field in balance["grad_share"]:
                print(
                    f"  {field:<10} gradient share {balance['grad_share'][field]:6.1%}   "
                    f"own accuracy {balance['own'].get(field, float('nan')):.3f}"
                )
    _table(results, list(fields))
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2))


def _without(metrics: dict, field: str) -> float | None:
    value = metrics.get("without_field", {}).get(field)
    return None if value is None else round(float(value["accuracy"]), 3)


def _table(results: dict, fields: list[str]) -> None:
    others = [f for f in fields if f != "leak"]
    print(
        "\n| mitigation | fused acc | fused acc without leak | leak grad share | warned | "
        + " | ".join(f"{f} own acc" for f in others)
        + " |"
    )
    print("|---" * (5 + len(others)) + "|")
    for name, r in results.items():
        own = " | ".join(f"{r['own_accuracy'].get(f, float('nan')):.3f}" for f in others)
        print(
            f"| {name} | {r['fused_accuracy']:.3f} | {r['without_leak']} | "
            f"{r['grad_share'].get('leak', 0.0):.0%} | {'yes' if r['warned'] else 'no'} | {own} |"
        )


if __name__ == "__main__":
    main()
