"""Write a cross-validation out: cv.json (everything), cv.md (the leaderboard with mean ± std,
the paired difference to the best with its interval, per-fold and per-seed figures) and
oof.parquet (every out-of-fold prediction: row, fold, seed, model, truth, prediction,
probabilities)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from plait import __version__
from plait.compare.cv_result import CrossValidation, ModelSummary
from plait.json_safe import finite
from plait.provenance.record import utc_now

NONE = "—"
TIE = "≈"  # within noise of the best
MATRIX_MAX = 8  # models up to which cv.md shows every pair's difference (cv.json always has them)


@dataclass(frozen=True)
class CVPaths:
    json: Path
    markdown: Path
    out_of_fold: Path


def write_cv_reports(cv: CrossValidation, out_dir: Path | str) -> CVPaths:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    date = utc_now()
    paths = CVPaths(json=out / "cv.json", markdown=out / "cv.md", out_of_fold=out / "oof.parquet")
    data = {"plait_version": __version__, "date": date, **cv.to_json()}
    paths.json.write_text(json.dumps(finite(data), indent=2, allow_nan=False) + "\n")
    paths.markdown.write_text(render_cv_markdown(cv, date))
    oof_table(cv).write_parquet(paths.out_of_fold)
    return paths


def leaderboard_rows(cv: CrossValidation) -> list[tuple[str, ...]]:
    """Rank, model, kind, mean ± std, difference to the best [interval], ECE, seconds per run —
    compact enough for an 80-column terminal."""
    rows: list[tuple[str, ...]] = []
    rank = 0
    for s in cv.summaries():
        if s.mean is None:
            rows.append((NONE, s.name, s.kind, "failed", NONE, NONE, NONE))
            continue
        rank += 1
        tie = TIE if rank > 1 and s.within_noise_of_best else ""
        rows.append(
            (
                f"{rank}{tie}",
                s.name,
                s.kind,
                f"{s.mean:.3f} ± {s.std:.3f}",
                _versus(s),
                NONE if s.ece is None else f"{s.ece:.3f}",
                NONE if s.train_seconds is None else f"{s.train_seconds:.1f}",
            )
        )
    return rows


LEADERBOARD_HEADERS = ("#", "model", "kind", "mean ± std", "vs best [95 % CI]", "ECE", "s/run")


def _versus(s: ModelSummary) -> str:
    v = s.versus_best
    if v is None:
        return "best" if s.mean is not None else NONE
    if v.low is None or v.high is None:
        return f"{v.mean:+.3f}"
    return f"{v.mean:+.3f} [{v.low:+.3f}, {v.high:+.3f}]"


def render_cv_markdown(cv: CrossValidation, date: str) -> str:
    direction = "higher" if cv.higher_is_better else "lower"
    lines = [
        f"# Cross-validated comparison: {cv.task.label} ({cv.task.type})",
        "",
        cv.verdict(),
        "",
        f"{cv.metric_name} on each fold's test rows ({direction} is better); {cv.split_text()}. "
        f"`{TIE}`: within noise of the best — the 95 % interval of the paired difference (corrected "
        "resampled t, Nadeau & Bengio 2003) contains 0, so the ranking between them is not a ranking.",
        "",
        "| " + " | ".join(LEADERBOARD_HEADERS) + " |",
        "|---:|---|---|---:|---:|---:|---:|",
    ]
    lines += ["| " + " | ".join(row) + " |" for row in leaderboard_rows(cv)]
    summaries = [s for s in cv.summaries() if s.mean is not None]
    if cv.folds > 1:
        lines += ["", "## Per fold (mean over seeds)", ""]
        lines += _grid(summaries, [f"fold {i + 1}" for i in range(cv.folds)], lambda s: s.per_fold)
    if len(cv.seeds) > 1:
        lines += ["", "## Per seed (mean over folds)", ""]
        lines += _grid(summaries, [f"seed {s}" for s in cv.seeds], lambda s: s.per_seed)
    pairs = cv.pairs()
    names = [s.name for s in summaries]
    if 2 < len(names) <= MATRIX_MAX and pairs:
        lines += ["", "## Paired differences (row − column, 95 % interval; `≈` contains 0)", ""]
        cell = {(p["model"], p["versus"]): p for p in pairs}
        lines += ["| | " + " | ".join(names[1:]) + " |", "|---|" + "---:|" * (len(names) - 1)]
        for a in names[:-1]:
            cells = []
            for b in names[1:]:
                pair = cell.get((a, b))
                if pair is None:
                    cells.append("")
                    continue
                tie = TIE if pair["low"] is None or pair["low"] <= 0 <= pair["high"] else ""
                span = "" if pair["low"] is None else f" [{pair['low']:+.3f}, {pair['high']:+.3f}]"
                cells.append(f"{tie}{pair['mean']:+.3f}{span}")
            lines.append(f"| {a} | " + " | ".join(cells) + " |")
    gaps = cv.retrain_gaps()
    if gaps:
        lines += [
            "",
            "## Retrain gap per field",
            "",
            "A plait model trained without the field minus the fused model with the field absent at "
            "test time, per run (positive: the missing field costs the fused model more than "
            f"retraining would; ≤ 0 is the target). `{TIE}`: the 95 % interval reaches 0 or below.",
            "",
            "| model | field | gap mean ± std | 95 % CI | runs |",
            "|---|---|---:|---:|---:|",
        ]
        lines += [
            f"| {g.model} | {g.field} | {TIE if g.closed else ''}{g.mean:+.3f} ± {g.std:.3f} | "
            f"{_span(g.interval.low, g.interval.high)} | {g.runs} |"
            for g in gaps
        ]
    errors = cv.errors()
    if errors:
        lines += ["", "## Failed runs", ""] + [f"- {e}" for e in errors]
    lines += [
        "",
        f"Table {cv.source}; {len(cv.runs)} runs in {cv.seconds:.0f} s. plait {__version__}, {date}.",
        "",
    ]
    return "\n".join(lines)


def _span(low: float | None, high: float | None) -> str:
    return NONE if low is None or high is None else f"[{low:+.3f}, {high:+.3f}]"


def _grid(summaries: list[ModelSummary], columns: list[str], values: Any) -> list[str]:
    out = ["| model | " + " | ".join(columns) + " |", "|---|" + "---:|" * len(columns)]
    for s in summaries:
        cells = [NONE if v is None else f"{v:.3f}" for v in values(s)]
        out.append(f"| {s.name} | " + " | ".join(cells) + " |")
    return out


def oof_table(cv: CrossValidation) -> pl.DataFrame:
    """One row per (model, seed, test row): the out-of-fold predictions."""
    frames = []
    for o in cv.out_of_fold:
        n = len(o.rows)
        data: dict[str, Any] = {
            "row": o.rows.astype(np.int64),
            "fold": np.full(n, o.fold + 1, dtype=np.int32),
            "seed": np.full(n, o.seed, dtype=np.int64),
            "model": [o.model] * n,
        }
        if cv.task.is_classification:
            data["truth"] = [cv.task.classes[int(t)] for t in o.truth]
            data["prediction"] = [cv.task.classes[int(p)] for p in o.predicted]
            assert o.probabilities is not None
            for k, name in enumerate(cv.task.classes):
                data[f"prob_{name}"] = o.probabilities[:, k].astype(np.float64)
        else:
            data["truth"] = o.truth.astype(np.float64)
            data["prediction"] = o.predicted.astype(np.float64)
        frames.append(pl.DataFrame(data))
    return pl.concat(frames) if frames else pl.DataFrame({"row": [], "fold": [], "seed": [], "model": []})
