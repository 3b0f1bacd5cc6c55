"""The retrain gap, and the training that closes it: each fusion with a field absent against a plait
model trained without that field, per training variant, on the same folds and seeds.

The reference models (each field alone when there are two fields, else the first fusion trained
without each field) and the boosting baseline are trained once, with the config as it is; then each
fusion is trained once per variant (`--variant NAME:KEY=VALUE,…`, train-section keys). Prints per
fusion and variant: the metric mean ± std, the difference to the plain variant [95 % CI], and the
retrain gap per field mean ± std [95 % CI] (positive: the field missing costs the fused model more
than retraining without it; ≤ 0 within noise is the target).

    .venv/bin/python bench/avdigits.py --out avdigits-out --epochs 1 --fusion late   # builds the table
    .venv/bin/python bench/retrain_gap.py avdigits-out/data/plait.yaml --group speaker --fusion late,gated \\
        --variant subset:subset_loss=1 --variant distill:subset_loss=1,subset_distill=1
    .venv/bin/python bench/retrain_gap.py demo-out/data/plait.yaml --folds 3 --seeds 2 \\
        --variant subset:subset_loss=1
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import yaml

from cvbench import add_cv_arguments, cv_config, interval_text, merged, renamed, span
from plait.compare.crossval import cross_validate
from plait.compare.cv_result import CrossValidation
from plait.compare.result import FUSION
from plait.config import Config

PLAIN = "plain"


def parse_variant(text: str) -> tuple[str, dict[str, object]]:
    """'subset:subset_loss=1,subset_distill=0.5' -> ('subset', {'subset_loss': 1, …}) (values as YAML)."""
    name, _, pairs = text.partition(":")
    settings: dict[str, object] = {}
    for pair in filter(None, pairs.split(",")):
        key, _, value = pair.partition("=")
        if not key or not value:
            raise SystemExit(f"--variant {text!r}: expected NAME:KEY=VALUE,…, e.g. subset:subset_loss=1")
        settings[key.strip()] = yaml.safe_load(value)
    if not name or name == PLAIN:
        raise SystemExit(f"--variant {text!r}: give it a name other than '{PLAIN}'")
    return name, settings


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_cv_arguments(parser)
    parser.add_argument("--variant", action="append", default=[], help="NAME:KEY=VALUE,… (train keys)")
    parser.add_argument("--no-boosting", action="store_true", help="leave out the boosting baseline")
    args = parser.parse_args()
    variants = [parse_variant(v) for v in args.variant]
    config, fusions = cv_config(args)
    start = time.perf_counter()
    two = len(config.fields) == 2
    print(
        f"--- [{PLAIN}] with the reference models"
        + ("" if args.no_boosting else " and the boosting baseline")
    )
    plain = cross_validate(
        config, fusions, folds=args.folds, seeds=args.seeds,
        unimodal=two, retrain=not two, baseline=not args.no_boosting, say=print,
    )  # fmt: skip
    references = tuple(m for m, k in zip(plain.models, plain.kinds, strict=True) if k != FUSION)
    cv = renamed(plain, f"[{PLAIN}]", keep=references)
    for name, settings in variants:
        print(f"--- [{name}] {settings}")
        variant: Config = config.with_overrides(train=settings)
        run = cross_validate(
            variant, fusions, folds=args.folds, seeds=args.seeds,
            unimodal=False, retrain=False, baseline=False, say=print,
        )  # fmt: skip
        cv = merged(cv, renamed(run, f"[{name}]"))
    seconds = time.perf_counter() - start
    report(cv, fusions, [PLAIN, *(n for n, _ in variants)], args.config, seconds, args.threads)
    return 0


def report(
    cv: CrossValidation, fusions: list[str], variants: list[str], source: Path, seconds: float, threads: int
) -> None:
    metric = cv.metric_name
    gaps = {(g.model, g.field): g for g in cv.retrain_gaps()}
    summaries = {s.name: s for s in cv.summaries()}
    print(f"\n{source}: {cv.split_text()}; {seconds:.0f} s, {threads} threads\n")
    head = " | ".join(f"gap {f} [95 % CI]" for f in cv.fields)
    print(f"| model | {metric} mean ± std | vs [{PLAIN}] [95 % CI] | {head} | s/run |")
    print("|---|---:|---:|" + "---:|" * len(cv.fields) + "---:|")
    for fusion in fusions:
        for variant in variants:
            name = f"{fusion} [{variant}]"
            s = summaries.get(name)
            if s is None or s.mean is None:
                print(f"| {name} | failed |" + " — |" * (len(cv.fields) + 2))
                continue
            versus = "—" if variant == PLAIN else interval_text(cv, name, f"{fusion} [{PLAIN}]")
            cells = []
            for field in cv.fields:
                g = gaps.get((name, field))
                mark = "≈" if g is not None and g.closed else ""
                cells.append(
                    "—" if g is None else f"{mark}{g.mean:+.3f}{span(g.interval.low, g.interval.high)}"
                )
            per_run = "—" if s.train_seconds is None else f"{s.train_seconds:.1f}"
            print(
                f"| {name} | {s.mean:.3f} ± {s.std:.3f} | {versus} | " + " | ".join(cells) + f" | {per_run} |"
            )
    print("\nReferences (trained once, the config as it is) and the boosting baseline:\n")
    for s in cv.summaries():
        if s.kind != FUSION and s.mean is not None:
            print(f"- {s.name} ({s.kind}): {s.mean:.3f} ± {s.std:.3f}")
    boosting = [r.row for r in cv.runs if r.row.name == "boosting" and r.row.ok]
    for field in cv.fields:
        values = [r.retrained_without[field] for r in boosting if field in r.retrained_without]
        if values:
            print(f"- boosting retrained without {field}: {sum(values) / len(values):.3f}")
    print("\n≈: the gap's 95 % interval reaches 0 or below (closed within noise).")


if __name__ == "__main__":
    raise SystemExit(main())
