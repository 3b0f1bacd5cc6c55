"""AV-digits: every fusion strategy and each field alone on real image + audio data.

Builds the AV-digits set from ../shared/data (FSDD spoken digits, each paired with a distinct MNIST
image of the same digit, the images degraded by PCA; one speaker held out for test), then runs
`plait compare` with every registered fusion plus the unimodal baselines, and prints the Markdown
table for bench/RESULTS.md. Skips (exit 0) when the shared data is absent.

    .venv/bin/python bench/avdigits.py [--out avdigits-out] [--speaker lucas] [--epochs 30]
        [--fusion all] [--threads 2] [--seed 0]

The reports (compare.json / .md / .html) land in OUT/compare; the data set in OUT/data.

With `--folds K` and/or `--seeds S` it cross-validates instead, speakers as groups
(`data.split: {group: speaker}`: every speaker is tested once and never trained on in that fold),
and prints the leaderboard with mean ± std and the paired differences (OUT/cv: cv.md, cv.json,
oof.parquet):

    .venv/bin/python bench/avdigits.py --folds 3 --seeds 3 --fusion late,gated,concat,attention
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

from plait.compare.crossval import cross_validate
from plait.compare.cv_report import write_cv_reports
from plait.compare.report import write_reports
from plait.compare.run import compare
from plait.config import Config
from plait.datasets.avdigits import (
    DEFAULT_HELD_OUT_SPEAKER,
    DEFAULT_PCA_COMPONENTS,
    build_avdigits,
    default_avdigits_paths,
)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=Path("avdigits-out"))
    parser.add_argument("--speaker", default=DEFAULT_HELD_OUT_SPEAKER, help="the held-out (test) speaker")
    parser.add_argument("--pca", type=int, default=DEFAULT_PCA_COMPONENTS, help="image PCA components kept")
    parser.add_argument("--epochs", type=int, default=None, help="override the config's train.epochs")
    parser.add_argument("--fusion", default="all", help="'all' or a comma-separated list")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--folds", type=int, default=1, help="cross-validate over K speaker-grouped folds")
    parser.add_argument("--seeds", type=int, default=1, help="train every model with S seeds")
    args = parser.parse_args()

    sources = default_avdigits_paths()
    if sources is None:
        print("skipped: ../shared/data (mnist, fsdd) not found; set PLAIT_SHARED_DATA to its folder")
        return 0
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    data = build_avdigits(
        sources.mnist,
        sources.fsdd,
        args.out / "data",
        held_out_speaker=args.speaker,
        pca_components=args.pca,
        seed=args.seed,
    )
    print(
        f"built AV-digits in {time.perf_counter() - start:.1f} s: {dict(data.counts)}, test speaker "
        f"{data.held_out_speaker}, images keep {data.variance_kept:.0%} of their variance "
        f"({data.pca_components} PCA components)"
    )
    config = Config.from_yaml(data.config_path)
    overrides: dict[str, object] = {"seed": args.seed, "progress": False}
    if args.epochs is not None:
        overrides["epochs"] = args.epochs
    config = config.with_overrides(train=overrides)
    fusions = [f.strip() for f in args.fusion.split(",")]
    if args.folds > 1 or args.seeds > 1:
        grouped = config.with_overrides(data={"split": {"group": "speaker"}})
        cv = cross_validate(grouped, fusions, folds=args.folds, seeds=args.seeds, say=print)
        paths = write_cv_reports(cv, args.out / "cv")
        print(
            f"\nAV-digits cross-validation, {cv.seconds:.0f} s in all ({torch.get_num_threads()} threads)\n"
        )
        print(paths.markdown.read_text())
        print(f"reports: {paths.markdown}, {paths.json}, {paths.out_of_fold}")
        return 0
    comparison = compare(config, fusions, say=print)
    paths = write_reports(comparison, args.out / "compare")
    print(f"\nAV-digits compare, {comparison.seconds:.0f} s in all ({torch.get_num_threads()} threads)\n")
    print(paths.markdown.read_text())
    print(f"reports: {paths.markdown}, {paths.html}, {paths.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
