"""The shared space, measured: cross-modal retrieval on the held-out rows (instance and label level,
both directions of every pair), zero-shot accuracy where a text field is aligned, and imputing a
missing field against leaving it absent — over several seeds, mean ± std, on the config's own split.

Variants side by side on the same split and seeds (`--variant NAME:KEY=VALUE,...`, keys of the
`space` section, `contrastive` for the epochs of a contrastive stage before the supervised one,
`encoder.FIELD` for a pretrained encoder, `nospace=true` for the model without a space); without
variants, one run of the config plus `--space`.

    .venv/bin/python bench/avdigits.py --out avdigits-out --epochs 1 --fusion late   # builds the table
    .venv/bin/python bench/space.py avdigits-out/data/plait.yaml --seeds 3 --space impute=true \\
        --variant scratch: --variant pretrained:encoder.audio=whisper-tiny.en,encoder.image=efficientnet-lite0
    plait demo -o demo-out
    .venv/bin/python bench/space.py demo-out/data/plait.yaml --seeds 3 \\
        --space 'pairs=[[note,thermal],[sound,vibration]]' --space impute=true
    .venv/bin/python bench/space.py avdigits-out/data/plait.yaml --seeds 3 --label-fraction 0.1 \
        --variant supervised:nospace=true --variant contrastive:contrastive=20   # few labels
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import torch
import yaml

from plait.config import Config, load_config
from plait.workflow.train import train
from pretrained import with_pretrained


def parse_pairs(texts: list[str]) -> dict[str, Any]:
    """KEY=VALUE texts, each value read as YAML (`impute=true`, `pairs=[[a,b]]`)."""
    out: dict[str, Any] = {}
    for text in texts:
        key, _, value = text.partition("=")
        out[key.strip()] = yaml.safe_load(value)
    return out


def variant_config(base: Config, space: dict[str, Any], options: dict[str, Any]) -> Config:
    """`base` with the space section, a contrastive stage of `contrastive` epochs, and pretrained
    encoders (`encoder.FIELD`) as a variant asks."""
    special = ("contrastive", "nospace")
    space = {**space, **{k: v for k, v in options.items() if "." not in k and k not in special}}
    encoders = {k.split(".", 1)[1]: str(v) for k, v in options.items() if k.startswith("encoder.")}
    config = with_pretrained(base, encoders) if encoders else base
    train_section: dict[str, Any] = {"progress": False}
    if options.get("nospace"):  # the model without a shared space: the baseline
        return config.with_overrides(train=train_section)
    epochs = int(options.get("contrastive", 0))
    if epochs:
        train_section["stages"] = [
            {"kind": "contrastive", "epochs": epochs},
            {"kind": "end_to_end", "epochs": base.train.epochs},
        ]
    return config.with_overrides(space=space, train=train_section)


def few_labels(config: Config, fraction: float, seed: int, folder: Path) -> Config:
    """`config` on a copy of its table where only `fraction` of the training rows keep their label
    (chosen by `seed`); the split is the config's own, pinned in a column so hiding labels cannot
    move rows between splits. The unlabelled training rows stay: a contrastive stage reads them."""
    from plait.data.split_plan import make_split, plan_split
    from plait.training.fit import read_training_table

    read = read_training_table(config)
    split = make_split(plan_split(read.config), read.table, read.labels, read.source)
    rng = np.random.default_rng(seed)
    kept = rng.choice(split.train, size=max(1, round(fraction * len(split.train))), replace=False)
    names = np.full(read.table.height, None, dtype=object)
    for name, rows in (("train", split.train), ("val", split.val), ("test", split.test)):
        names[rows] = name
    hidden = np.zeros(read.table.height, dtype=bool)
    hidden[np.setdiff1d(split.train, kept)] = True
    label = config.task.label
    table = read.table.with_columns(pl.Series("__split", names.tolist(), dtype=pl.String)).with_columns(
        pl.when(pl.Series(hidden)).then(None).otherwise(pl.col(label)).alias(label)
    )
    path = folder / f"few-{fraction:g}-{seed}.parquet"
    table.write_parquet(path)
    print(f"{len(kept)} of {len(split.train)} training rows keep their label; {hidden.sum()} hidden")
    return config.with_overrides(
        data={"path": str(path), "root": str(config.media_root()), "split": {"column": "__split"}}
    )


def one_run(config: Config, seed: int) -> dict[str, float]:
    """Every figure of one trained model: headline metric, retrieval, zero-shot, imputation."""
    config = config.with_overrides(train={"seed": seed})
    with tempfile.TemporaryDirectory() as out:
        result = train(config, out=Path(out) / "bundle")
    metrics = result.trained.metrics
    task = result.trained.task
    row: dict[str, float] = {task.headline_metric: float(metrics["metrics"][task.headline_metric])}
    space = metrics.get("space") or {}
    for d in space.get("retrieval", []):
        arrow = f"{d['query']}→{d['target']}"
        for level in ("instance", "label"):
            scores = d.get(level)
            if scores is None:
                continue
            for k, v in scores["recall"].items():
                row[f"{arrow} {level} R@{k}"] = float(v)
            row[f"{arrow} {level} MRR"] = float(scores["mrr"])
            row[f"{arrow} {level} median rank"] = float(scores["median_rank"])
    for z in space.get("zero_shot", []):
        row[f"zero-shot {z['field']} (prompts by {z['text_field']})"] = float(z["accuracy"])
        row[f"zero-shot {z['field']} chance"] = float(z["chance"])
    for i in space.get("imputation", []):
        row[f"without {i['field']}: absent"] = float(i["absent"])
        row[f"without {i['field']}: imputed"] = float(i["imputed"])
    row["seconds"] = float(result.seconds)
    return row


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("config", type=Path)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--space", action="append", default=[], help="KEY=VALUE of the space section")
    parser.add_argument("--variant", action="append", default=[], help="NAME:KEY=VALUE,KEY=VALUE")
    parser.add_argument(
        "--label-fraction", type=float, default=None, help="keep only this share of the training labels"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    base = load_config(args.config)
    if args.epochs is not None:
        base = base.with_overrides(train={"epochs": args.epochs})
    space = parse_pairs(args.space)
    variants = {}
    for text in args.variant or ["plait:"]:
        name, _, rest = text.partition(":")
        variants[name] = parse_pairs([p for p in rest.split(",") if p])
    figures: dict[str, dict[str, list[float]]] = {}
    start = time.perf_counter()
    scratch = tempfile.TemporaryDirectory(prefix="plait-bench-space-")
    for name, options in variants.items():
        config = variant_config(base, space, options)
        figures[name] = defaultdict(list)
        for seed in range(args.seeds):
            run_config = config
            if args.label_fraction is not None:  # the same labels kept for every variant of a seed
                run_config = few_labels(config, args.label_fraction, seed, Path(scratch.name))
            row = one_run(run_config, base.train.seed + seed)
            print(
                f"[{name} seed {seed}] "
                + ", ".join(f"{k} {v:.3f}" for k, v in row.items() if "R@1" in k or k in ("accuracy", "rmse"))
            )
            for key, value in row.items():
                figures[name][key].append(value)
    seconds = time.perf_counter() - start
    scratch.cleanup()
    few = "" if args.label_fraction is None else f", {args.label_fraction:g} of the training labels"
    print(f"\n{args.config}: the config's split{few}, {args.seeds} seeds, {seconds:.0f} s; space {space}")
    keys = list(dict.fromkeys(k for f in figures.values() for k in f))
    print("| figure | " + " | ".join(figures) + " |")
    print("|---|" + "---:|" * len(figures))
    for key in keys:
        cells = []
        for f in figures.values():
            values = f.get(key, [])
            if not values:
                cells.append("—")
            elif len(values) > 1:
                cells.append(f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}")
            else:
                cells.append(f"{values[0]:.3f}")
        print(f"| {key} | " + " | ".join(cells) + " |")
    first = next(iter(figures))
    for name, f in list(figures.items())[1:]:
        metric = next((k for k in ("accuracy", "rmse") if k in f and k in figures[first]), None)
        if metric is None:
            continue
        gaps = [a - b for a, b in zip(f[metric], figures[first][metric], strict=True)]
        print(f"{name} − {first} ({metric}, paired by seed): {paired_text(gaps)}")
    return 0


def paired_text(gaps: list[float]) -> str:
    """Mean of paired differences with its t interval (95 %)."""
    mean = statistics.mean(gaps)
    if len(gaps) < 2:
        return f"{mean:+.3f}"
    t = {2: 12.706, 3: 4.303, 4: 3.182, 5: 2.776, 6: 2.571, 8: 2.365, 10: 2.262}.get(len(gaps), 2.0)
    half = t * statistics.stdev(gaps) / len(gaps) ** 0.5
    return f"{mean:+.3f} [{mean - half:+.3f}, {mean + half:+.3f}]"


if __name__ == "__main__":
    raise SystemExit(main())
