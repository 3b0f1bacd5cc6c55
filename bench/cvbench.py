"""What the cross-validating benches share: their command-line arguments and the config they
give, the intervals as text, and cross-validations of the same folds and seeds merged into one (the
variants of a bench side by side, so paired differences come from one `CrossValidation`)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import torch
import yaml

from plait.compare.cv_result import CrossValidation
from plait.config import Config, load_config


def add_cv_arguments(parser: argparse.ArgumentParser) -> None:
    """CONFIG, --fusion, --folds, --seeds, --group, --epochs, --threads."""
    parser.add_argument("config", type=Path)
    parser.add_argument("--fusion", default=None, help="comma-separated fusions (default: the config's)")
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--group", default=None, help="fold by this column (e.g. speaker)")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--threads", type=int, default=2)


def cv_config(args: argparse.Namespace) -> tuple[Config, list[str]]:
    """The config those arguments ask for (no progress bars; epochs and grouping overridden) and the
    fusions to train; sets torch's thread count."""
    torch.set_num_threads(args.threads)
    config = load_config(args.config).with_overrides(train={"progress": False})
    if args.epochs is not None:
        config = config.with_overrides(train={"epochs": args.epochs})
    if args.group is not None:
        config = config.with_overrides(data={"split": {"group": args.group}})
    return config, args.fusion.split(",") if args.fusion else [config.model.fusion]


def span(low: float | None, high: float | None) -> str:
    """' [low, high]' of an interval, or nothing when it has none."""
    return "" if low is None or high is None else f" [{low:+.3f}, {high:+.3f}]"


def interval_text(cv: CrossValidation, model: str, versus: str) -> str:
    """model − versus, paired over the runs, with its interval; '—' when they share no run."""
    gap = cv.paired(model, versus)
    return "—" if gap is None else f"{gap.mean:+.3f}{span(gap.low, gap.high)}"


def renamed(cv: CrossValidation, suffix: str, keep: tuple[str, ...] = ("boosting",)) -> CrossValidation:
    """The same runs with every model named `NAME suffix`, but the models in `keep`."""

    def name(model: str) -> str:
        return model if model in keep else f"{model} {suffix}"

    runs = tuple(replace(r, row=replace(r.row, name=name(r.row.name))) for r in cv.runs)
    return replace(cv, runs=runs, models=tuple(name(m) for m in cv.models))


def merged(first: CrossValidation, second: CrossValidation) -> CrossValidation:
    models = list(first.models) + [m for m in second.models if m not in first.models]
    kinds = list(first.kinds) + [
        k for m, k in zip(second.models, second.kinds, strict=True) if m not in first.models
    ]
    runs = first.runs + tuple(r for r in second.runs if r.row.name not in first.models)
    return replace(
        first, models=tuple(models), kinds=tuple(kinds), runs=runs, seconds=first.seconds + second.seconds
    )


def absent_table(cv: CrossValidation) -> list[str]:
    """Markdown lines: per field, each non-unimodal model's metric with the field absent (mean over
    its runs; the boosting baseline's is retrained without the field)."""
    from plait.compare.result import UNIMODAL

    names = [m for m, kind in zip(cv.models, cv.kinds, strict=True) if kind != UNIMODAL]
    lines = [
        f"A field left out ({cv.metric_name}, mean over runs; boosting retrained without it):",
        "",
        "| field | " + " | ".join(f"{m} absent" for m in names) + " |",
        "|---|" + "---:|" * len(names),
    ]
    for field in cv.fields:
        cells = []
        for model in names:
            got = [
                v
                for r in cv.runs
                if r.row.name == model and r.row.ok
                if (v := r.row.left_out(field)) is not None
            ]
            cells.append(f"{sum(got) / len(got):.3f}" if got else "—")
        lines.append(f"| {field} | " + " | ".join(cells) + " |")
    return lines


def summary_table(cv: CrossValidation, columns: dict[str, Callable[[str], str]]) -> list[str]:
    """Markdown lines: per model its metric mean ± std, one cell per `columns` (header → the cell
    for a model's name) and its training seconds per run."""
    head = f"| model | {cv.metric_name} mean ± std | " + "".join(f"{h} | " for h in columns) + "s/run |"
    lines = [head, "|---|---:|" + "---:|" * len(columns) + "---:|"]
    for s in cv.summaries():
        if s.mean is None:
            lines.append(f"| {s.name} | failed | " + "— | " * len(columns) + "— |")
            continue
        per_run = "—" if s.train_seconds is None else f"{s.train_seconds:.1f}"
        cells = [f"{s.mean:.3f} ± {s.std:.3f}", *(cell(s.name) for cell in columns.values()), per_run]
        lines.append(f"| {s.name} | " + " | ".join(cells) + " |")
    return lines


def parse_options(texts: list[str]) -> dict[str, dict[str, object]]:
    """['audio.centre_bands=true'] -> {'audio': {'centre_bands': True}} (values read as YAML; the
    first part names a kind or a field, as the bench says)."""
    out: dict[str, dict[str, object]] = {}
    for text in texts:
        key, _, value = text.partition("=")
        kind, _, option = key.partition(".")
        if not option or not value:
            raise SystemExit(f"{text!r}: expected NAME.KEY=VALUE, e.g. audio.centre_bands=true")
        out.setdefault(kind, {})[option] = yaml.safe_load(value)
    return out
