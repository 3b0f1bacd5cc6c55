"""Pretrained encoders against plait's from-scratch ones, on the same folds and seeds, and what the
embedding cache saves.

Takes a from-scratch config and `--encoder FIELD=NAME` for the fields to read through a pretrained
encoder (the field keeps the options that encoder's field takes: column, max_seconds, segment
columns…). First the cache: the pretrained variant's table is loaded with an empty cache (every
item encoded), again with it full, and with the cache off; then both variants are cross-validated
(each field alone too, the boosting baseline on each variant's own features with
`--boosting both`), printing mean ± std, pretrained − scratch paired with the corrected 95 %
interval, and the accuracy with each field absent.

    .venv/bin/python bench/avdigits.py --out avdigits-out --epochs 1 --fusion late   # builds the table
    .venv/bin/python bench/pretrained.py avdigits-out/data/plait.yaml --group speaker --folds 3 --seeds 2 \\
        --encoder image=efficientnet-lite0 --encoder audio=whisper-tiny.en
    plait demo -o demo-out
    .venv/bin/python bench/pretrained.py demo-out/data/plait.yaml --folds 3 --seeds 2 --encoder note=minilm
"""

from __future__ import annotations

import argparse
import inspect
import os
import tempfile
import time
from dataclasses import replace

from cvbench import (
    absent_table,
    add_cv_arguments,
    cv_config,
    interval_text,
    merged,
    parse_options,
    renamed,
    summary_table,
)
from plait.compare.crossval import cross_validate
from plait.config import Config
from plait.pretrained.kinds import pretrained_class


def with_pretrained(
    config: Config, encoders: dict[str, str], extra: dict[str, dict[str, object]] | None = None
) -> Config:
    """`config` with each named field read through its pretrained encoder, keeping the options the
    pretrained field takes, plus `extra[field]` (e.g. finetune)."""
    fields = []
    for spec in config.fields:
        if spec.name not in encoders:
            fields.append(spec)
            continue
        added = (extra or {}).get(spec.name, {})
        accepted = inspect.signature(pretrained_class(spec.name, spec.kind, added)).parameters
        options = {k: v for k, v in spec.options.items() if k in accepted and k != "encoder"}
        fields.append(replace(spec, options={**options, **added, "encoder": encoders[spec.name]}))
    unknown = set(encoders) - {s.name for s in config.fields}
    if unknown:
        raise SystemExit(f"--encoder: no field {', '.join(sorted(unknown))} in the config")
    return replace(config, fields=tuple(fields))


def load_seconds(config: Config, cache: str | None) -> float:
    """Wall time of loading the table through every field (what an epoch-0 or a new run pays)."""
    from plait.training.fit import prepare

    if cache is None:
        os.environ["PLAIT_NO_CACHE"] = "1"
    else:
        os.environ.pop("PLAIT_NO_CACHE", None)
        os.environ["PLAIT_CACHE_DIR"] = cache
    start = time.perf_counter()
    prepare(config)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_cv_arguments(parser)
    parser.add_argument("--encoder", action="append", default=[], help="FIELD=NAME (repeatable)")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        help="FIELD.KEY=VALUE for a pretrained field (e.g. note.finetune=1)",
    )
    parser.add_argument("--boosting", choices=("scratch", "both", "none"), default="scratch")
    parser.add_argument("--no-unimodal", action="store_true")
    args = parser.parse_args()
    encoders = dict(e.split("=", 1) for e in args.encoder)
    config, fusions = cv_config(args)
    pretrained = with_pretrained(config, encoders, parse_options(args.set))
    kept = os.environ.get("PLAIT_CACHE_DIR")

    with tempfile.TemporaryDirectory(prefix="plait-bench-cache-") as cache:
        cold = load_seconds(pretrained, cache)
        warm = load_seconds(pretrained, cache)
    off = load_seconds(pretrained, None)
    os.environ.pop("PLAIT_NO_CACHE", None)
    scratch_load = load_seconds(config, None)
    if kept is not None:
        os.environ["PLAIT_CACHE_DIR"] = kept
    print(
        f"loading the table: pretrained, empty cache {cold:.1f} s (models loaded once per process: "
        f"{off:.1f} s with the cache off), full cache {warm:.1f} s ({cold / warm:.1f}× faster; "
        f"{off / warm:.1f}× against the cache off); from scratch {scratch_load:.1f} s"
    )

    start = time.perf_counter()
    results = []
    for suffix, variant, boosting in (
        ("[scratch]", config, args.boosting in ("scratch", "both")),
        ("[pretrained]", pretrained, args.boosting == "both"),
    ):
        print(f"--- {suffix}")
        cv = cross_validate(
            variant, fusions, folds=args.folds, seeds=args.seeds,
            unimodal=not args.no_unimodal, baseline=boosting, say=print,
        )  # fmt: skip
        results.append(renamed(cv, suffix, keep=()))
    cv = merged(*results)
    seconds = time.perf_counter() - start
    print(f"\n{args.config}: {cv.split_text()}; {seconds:.0f} s, {args.threads} threads")
    print(f"pretrained: {', '.join(f'{f}={e}' for f, e in encoders.items())}\n")

    def gain(name: str) -> str:
        other = name.replace("[pretrained]", "[scratch]")
        return interval_text(cv, name, other) if "[pretrained]" in name and other in cv.models else "—"

    columns = {"pretrained − scratch [95 % CI]": gain}
    print("\n".join([*summary_table(cv, columns), "", *absent_table(cv)]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
