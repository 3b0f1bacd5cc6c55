"""Which encoder for timeseries and audio: the former plain conv (`conv1d`) against today's defaults.

Cross-validates the config's fusion (or `--fusion`) twice on the same folds and seeds: once with
every timeseries and audio field on `encoder: conv1d` (plait's encoder before issue 15) and once on
the defaults (timeseries `multiscale`, audio `conv2d` with SpecAugment), each field alone too with
`--unimodal`, and the boosting baseline once. Prints mean ± std per model and variant, the paired
difference of default − conv1d and of each model − boosting, with the corrected 95 % interval.

    plait demo -o demo-out
    .venv/bin/python bench/encoders.py demo-out/data/plait.yaml --folds 3 --seeds 2
    .venv/bin/python bench/avdigits.py --out avdigits-out --epochs 1 --fusion late   # builds the table
    .venv/bin/python bench/encoders.py avdigits-out/data/plait.yaml --group speaker --fusion late --unimodal
    .venv/bin/python bench/uea.py ../shared/data/basicmotions --out uea-out/bm --fields acc:0-2,gyro:3-5
    .venv/bin/python bench/encoders.py uea-out/bm/plait.yaml --folds 1 --seeds 5 --unimodal

`--option audio.centre_bands=true` adds a field option to the default variant (repeatable).
`--group COLUMN` makes the folds grouped by that column (no group is both trained and tested on);
with `--folds 1` the config's own split is kept and the seeds are the resamples.
"""

from __future__ import annotations

import argparse
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

SEQUENCE_KINDS = ("timeseries", "audio")
LEGACY = "conv1d"


def with_encoder(
    config: Config, encoder: str | None, extra: dict[str, dict[str, object]] | None = None
) -> Config:
    """Every timeseries and audio field on `encoder` (None: the kind's default), with the
    options `extra[kind]` added to each field of that kind."""
    fields = []
    for spec in config.fields:
        options = {k: v for k, v in spec.options.items() if k != "encoder"}
        if encoder is not None and spec.kind in SEQUENCE_KINDS:
            options["encoder"] = encoder
        options.update((extra or {}).get(spec.kind, {}))
        fields.append(replace(spec, options=options))
    return replace(config, fields=tuple(fields))


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_cv_arguments(parser)
    parser.add_argument("--unimodal", action="store_true", help="train each field alone too")
    parser.add_argument(
        "--option", action="append", default=[], help="KIND.KEY=VALUE for the default variant's fields"
    )
    args = parser.parse_args()
    extra = parse_options(args.option)
    config, fusions = cv_config(args)
    start = time.perf_counter()
    results = []
    for suffix, encoder, baseline in (("[conv1d]", LEGACY, True), ("[default]", None, False)):
        print(f"--- {suffix}")
        variant = with_encoder(config, encoder, None if baseline else extra)
        cv = cross_validate(
            variant, fusions, folds=args.folds, seeds=args.seeds,
            unimodal=args.unimodal, baseline=baseline, say=print,
        )  # fmt: skip
        results.append(renamed(cv, suffix))
    cv = merged(*results)
    seconds = time.perf_counter() - start
    print(f"\n{args.config}: {cv.split_text()}; {seconds:.0f} s, {args.threads} threads\n")

    def versus_legacy(name: str) -> str:
        return interval_text(cv, name, name.replace("[default]", "[conv1d]")) if "[default]" in name else "—"

    def versus_boosting(name: str) -> str:
        return "—" if name == "boosting" else interval_text(cv, name, "boosting")

    columns = {"default − conv1d [95 % CI]": versus_legacy, "vs boosting [95 % CI]": versus_boosting}
    print("\n".join([*summary_table(cv, columns), "", *absent_table(cv)]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
