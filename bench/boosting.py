"""plait against the simple model a user already has: gradient boosting on summary features.

Cross-validates the config's model (or `--fusion`, comma-separated) and the boosting baseline on the
same folds and seeds (grouped folds when the config's split is grouped), then prints the leaderboard
with the paired difference and, per field, what leaving it out costs: plait with the field absent at
test time, and boosting retrained without it (the figure a user's own model would reach had the
field never been collected; the issue's "retrain gap").

    plait demo -o demo-out      # or any plait config
    .venv/bin/python bench/boosting.py demo-out/data/plait.yaml --folds 3 --seeds 2 --threads 2
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from plait.compare.crossval import cross_validate
from plait.compare.cv_report import write_cv_reports
from plait.config import load_config


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("config", type=Path)
    parser.add_argument("--fusion", default=None, help="comma-separated fusions (default: the config's)")
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("boosting-out"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    config = load_config(args.config).with_overrides(train={"progress": False})
    if args.epochs is not None:
        config = config.with_overrides(train={"epochs": args.epochs})
    fusions = args.fusion.split(",") if args.fusion else [config.model.fusion]
    start = time.perf_counter()
    cv = cross_validate(config, fusions, folds=args.folds, seeds=args.seeds, unimodal=False, say=print)
    seconds = time.perf_counter() - start
    write_cv_reports(cv, args.out)
    metric = cv.metric_name
    print(f"\n{args.config}: {cv.split_text()}; {seconds:.0f} s\n")
    print(f"| model | {metric} mean ± std | vs boosting [95 % CI] |")
    print("|---|---:|---:|")
    for s in cv.summaries():
        if s.mean is None:
            print(f"| {s.name} | failed | — |")
            continue
        gap = None if s.name == "boosting" else cv.paired(s.name, "boosting")
        ci = (
            "—"
            if gap is None
            else f"{gap.mean:+.3f}" + ("" if gap.low is None else f" [{gap.low:+.3f}, {gap.high:+.3f}]")
        )
        print(f"| {s.name} | {s.mean:.3f} ± {s.std:.3f} | {ci} |")
    print(f"\nA field left out ({metric}, mean over folds × seeds):\n")
    print("| field | " + " | ".join(f"{f} absent" for f in fusions) + " | boosting retrained without |")
    print("|---|" + "---:|" * (len(fusions) + 1))
    for field in cv.fields:
        cells = []
        for name in [*fusions, "boosting"]:
            values = [r.row.left_out(field) for r in cv.runs if r.row.name == name and r.row.ok]
            got = [v for v in values if v is not None]
            cells.append(
                f"{np.mean(got):.3f} ± {np.std(got, ddof=1) if len(got) > 1 else 0.0:.3f}" if got else "—"
            )
        print(f"| {field} | " + " | ".join(cells) + " |")
    print(f"\n{cv.verdict()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
