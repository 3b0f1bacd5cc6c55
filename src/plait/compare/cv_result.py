"""The records of a cross-validation: one `CVRun` per model × fold × seed, the out-of-fold
predictions, and `CrossValidation`, which summarises them (mean ± std per model, per fold and per
seed; paired differences against the best model with a corrected 95 % interval)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from plait.compare.result import BASELINE, CompareRow
from plait.compare.retrain_gap import comparison_gaps
from plait.compare.stats import Interval, corrected_interval, mean_std
from plait.task import Task


@dataclass(frozen=True)
class CVRun:
    fold: int  # 0-based
    seed: int
    row: CompareRow  # the model's figures on this fold's test rows
    split: Mapping[str, Any]  # the fold's Split.to_json()


@dataclass(frozen=True, eq=False)
class OutOfFold:
    """One model's predictions on one fold's test rows, for one seed."""

    model: str
    fold: int
    seed: int
    rows: np.ndarray  # (N,) 0-based table rows
    truth: np.ndarray  # (N,) class index (classification) or value (regression)
    predicted: np.ndarray  # (N,) class index (classification) or value (regression)
    probabilities: np.ndarray | None  # (N, K) calibrated where the model has temperatures


@dataclass(frozen=True)
class ModelSummary:
    name: str
    kind: str  # "fusion" | "unimodal"
    runs: int  # successful runs
    failed: int
    mean: float | None
    std: float | None
    per_fold: tuple[float | None, ...]  # mean over seeds, per fold
    per_seed: tuple[float | None, ...]  # mean over folds, per seed
    ece: float | None  # mean expected calibration error (classification)
    train_seconds: float | None  # mean per run
    versus_best: Interval | None = None  # this model − the best model, paired over runs

    @property
    def within_noise_of_best(self) -> bool:
        """True when the interval of the difference to the best contains 0 (or cannot be told)."""
        return self.versus_best is None or not self.versus_best.excludes_zero

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "kind": self.kind,
            "runs": self.runs,
            "failed": self.failed,
            "mean": self.mean,
            "std": self.std,
            "per_fold": list(self.per_fold),
            "per_seed": list(self.per_seed),
            "ece": self.ece,
            "train_seconds": self.train_seconds,
            "within_noise_of_best": self.within_noise_of_best,
        }
        if self.versus_best is not None:
            v = self.versus_best
            out["versus_best"] = {"mean": v.mean, "low": v.low, "high": v.high, "runs": v.runs}
        return out


@dataclass(frozen=True)
class RetrainGap:
    """One fusion's retrain gap for one field over the cross-validation runs (positive: the field
    missing costs the fused model more than retraining without it)."""

    model: str
    field: str
    mean: float
    std: float
    runs: int
    interval: Interval

    @property
    def closed(self) -> bool:
        """≤ 0 within noise: the interval reaches 0 or below (or cannot be told)."""
        return self.interval.low is None or self.interval.low <= 0

    def to_json(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "field": self.field,
            "mean": self.mean,
            "std": self.std,
            "runs": self.runs,
            "low": self.interval.low,
            "high": self.interval.high,
            "closed": self.closed,
        }


@dataclass(frozen=True)
class CrossValidation:
    config: Mapping[str, Any]
    task: Task
    fields: tuple[str, ...]
    models: tuple[str, ...]  # in training order
    kinds: tuple[str, ...]  # "fusion" | "unimodal", per model
    folds: int
    seeds: tuple[int, ...]
    split_kind: str  # random | group | time | column
    split_column: str | None
    split_why: str
    runs: tuple[CVRun, ...]
    out_of_fold: tuple[OutOfFold, ...]
    seconds: float
    source: str

    @property
    def metric_name(self) -> str:
        return self.task.headline_metric

    @property
    def higher_is_better(self) -> bool:
        return self.task.higher_is_better

    def _metric(self, model: str) -> dict[tuple[int, int], float]:
        return {(r.fold, r.seed): float(r.row.metric) for r in self.runs if r.row.name == model and r.row.ok}  # type: ignore[arg-type]

    def test_train_ratio(self) -> float:
        """Mean n_test / n_train over the folds (for the corrected interval)."""
        ratios = []
        for r in self.runs:
            counts = r.split.get("counts", {})
            if counts.get("train"):
                ratios.append(counts.get("test", 0) / counts["train"])
        return float(np.mean(ratios)) if ratios else 0.0

    def summaries(self) -> list[ModelSummary]:
        """One summary per model, best first (by mean), models with no successful run last."""
        plain = [self._summary(m, k) for m, k in zip(self.models, self.kinds, strict=True)]
        sign = -1.0 if self.higher_is_better else 1.0
        ok = sorted((s for s in plain if s.mean is not None), key=lambda s: sign * float(s.mean))  # type: ignore[arg-type]
        if not ok:
            return plain
        out = [ok[0]]
        for s in ok[1:]:
            out.append(replace(s, versus_best=self.paired(s.name, ok[0].name)))
        return out + [s for s in plain if s.mean is None]

    def paired(self, model: str, versus: str) -> Interval | None:
        """model − versus, paired over the runs both finished, with its corrected 95 % interval.
        Seeds reuse a fold's rows, so they are averaged within each fold first and the folds are
        the resamples (J = K); with one split, the seeds are (J = S)."""
        mine, theirs = self._metric(model), self._metric(versus)
        return self._interval({k: mine[k] - theirs[k] for k in sorted(set(mine) & set(theirs))})

    def _interval(self, differences: Mapping[tuple[int, int], float]) -> Interval | None:
        """The corrected interval of per-run differences keyed by (fold, seed): seeds averaged
        within a fold (folds are the resamples), or the seeds themselves with one split."""
        if not differences:
            return None
        by: dict[int, list[float]] = {}
        for (fold, seed), value in differences.items():
            by.setdefault(fold if self.folds > 1 else seed, []).append(value)
        return corrected_interval([float(np.mean(v)) for v in by.values()], self.test_train_ratio())

    def retrain_gaps(self) -> list[RetrainGap]:
        """Each fusion's retrain gap per field (compare/retrain_gap.py) over the runs where both the
        fusion and its reference finished: mean ± std and the corrected interval."""
        by_run: dict[tuple[int, int], list[CompareRow]] = {}
        for r in self.runs:
            by_run.setdefault((r.fold, r.seed), []).append(r.row)
        values: dict[tuple[str, str], dict[tuple[int, int], float]] = {}
        for key, rows in by_run.items():
            for model, gaps in comparison_gaps(rows, self.fields, self.higher_is_better).items():
                for field_name, value in gaps.items():
                    values.setdefault((model, field_name), {})[key] = value
        out = []
        for model in self.models:
            for field_name in self.fields:
                runs = values.get((model, field_name))
                if not runs:
                    continue
                mean, std = mean_std(list(runs.values()))
                interval = self._interval(runs)
                assert interval is not None  # runs is not empty
                out.append(RetrainGap(model, field_name, mean, std, len(runs), interval))
        return out

    def _summary(self, model: str, kind: str) -> ModelSummary:
        runs = [r for r in self.runs if r.row.name == model]
        ok = [r for r in runs if r.row.ok]
        values = [float(r.row.metric) for r in ok]  # type: ignore[arg-type]
        mean, std = mean_std(values) if values else (None, None)

        def mean_of(selected: Sequence[CVRun]) -> float | None:
            vals = [float(r.row.metric) for r in selected if r.row.ok]  # type: ignore[arg-type]
            return float(np.mean(vals)) if vals else None

        eces = [r.row.ece for r in ok if r.row.ece is not None]
        seconds = [r.row.train_seconds for r in ok if r.row.train_seconds is not None]
        return ModelSummary(
            name=model,
            kind=kind,
            runs=len(ok),
            failed=len(runs) - len(ok),
            mean=mean,
            std=std,
            per_fold=tuple(mean_of([r for r in runs if r.fold == f]) for f in range(self.folds)),
            per_seed=tuple(mean_of([r for r in runs if r.seed == s]) for s in self.seeds),
            ece=float(np.mean(eces)) if eces else None,
            train_seconds=float(np.mean(seconds)) if seconds else None,
        )

    def pairs(self) -> list[dict[str, Any]]:
        """Every pair of models, the better-ranked first: their paired difference and interval."""
        ranked = [s.name for s in self.summaries() if s.mean is not None]
        out = []
        for i, a in enumerate(ranked):
            for b in ranked[i + 1 :]:
                gap = self.paired(a, b)
                if gap is not None:
                    out.append(
                        {
                            "model": a,
                            "versus": b,
                            "mean": gap.mean,
                            "low": gap.low,
                            "high": gap.high,
                            "units": gap.runs,
                        }
                    )
        return out

    def errors(self) -> list[str]:
        return sorted(
            {
                f"{r.row.name} (fold {r.fold + 1}, seed {r.seed}): {r.row.error}"
                for r in self.runs
                if not r.row.ok
            }
        )

    def split_text(self) -> str:
        how = {
            "group": f"grouped by '{self.split_column}' (no {self.split_column} in two splits)",
            "time": f"by time '{self.split_column}' (training always before testing)",
            "column": f"by the column '{self.split_column}'",
            "random": "random by row",
        }[self.split_kind]
        folds = f"{self.folds} folds" if self.folds > 1 else "the config's split"
        why = f"; {self.split_why}" if self.split_why else ""
        seeds = f"{len(self.seeds)} seed{'s' if len(self.seeds) != 1 else ''}"
        return f"{folds} {how} × {seeds} ({', '.join(map(str, self.seeds))}){why}"

    def verdict(self) -> str:
        """Which model is best, which are within noise of it, and whether fusion beats the best
        single field beyond the noise."""
        ranked = [s for s in self.summaries() if s.mean is not None]
        if not ranked:
            return "No model trained successfully; see the errors."
        best = ranked[0]
        name = self.metric_name
        text = f"Best: {best.name} ({name} {best.mean:.4f} ± {best.std:.4f} over {best.runs} runs)."
        untold = [s.name for s in ranked[1:] if s.versus_best is None or s.versus_best.low is None]
        ties = [s.name for s in ranked[1:] if s.name not in untold and s.within_noise_of_best]
        if ties:
            text += (
                f" Within noise of it (95 % interval of the paired difference contains 0): {', '.join(ties)}."
            )
        elif len(ranked) - 1 > len(untold):
            text += " Every other model is worse beyond the noise."
        if untold:
            text += f" Cannot tell for {', '.join(untold)} (fewer than two paired folds or seeds)."
        fusion = next((s for s in ranked if s.kind == "fusion"), None)
        alone = next((s for s in ranked if s.kind == "unimodal"), None)
        if fusion is not None and alone is not None:
            text += self._versus(
                fusion, alone, f"Best fusion {fusion.name} vs best single field {alone.name}", "fusion"
            )
        plait = next((s for s in ranked if s.kind != BASELINE), None)
        boosting = next((s for s in ranked if s.kind == BASELINE), None)
        if plait is not None and boosting is not None:
            text += self._versus(
                plait, boosting, f"Best plait model {plait.name} vs the boosting baseline", plait.name
            )
        return text

    def _versus(self, mine: ModelSummary, other: ModelSummary, head: str, who: str) -> str:
        """' HEAD: +gap [interval] — WHO wins/loses beyond the noise' (or within it), paired by run."""
        gap = self.paired(mine.name, other.name)
        if gap is None:
            return ""
        interval = "" if gap.low is None else f" [{gap.low:+.4f}, {gap.high:+.4f}]"
        better = (gap.mean > 0) == self.higher_is_better
        verdict = (
            f"{who} {'wins' if better else 'loses'} beyond the noise"
            if gap.excludes_zero
            else "within the noise"
        )
        return f" {head}: {gap.mean:+.4f}{interval} — {verdict}."

    def to_json(self) -> dict[str, Any]:
        return {
            "task": {"type": self.task.type, "label": self.task.label, "metric": self.metric_name},
            "higher_is_better": self.higher_is_better,
            "fields": list(self.fields),
            "folds": self.folds,
            "seeds": list(self.seeds),
            "split": {"kind": self.split_kind, "column": self.split_column, "why": self.split_why},
            "interval": (
                "corrected resampled t (Nadeau & Bengio 2003), 95 %, of the paired difference per fold "
                "(seeds averaged within a fold; per seed when there is one split)"
            ),
            "test_train_ratio": round(self.test_train_ratio(), 4),
            "source": self.source,
            "seconds": round(self.seconds, 3),
            "verdict": self.verdict(),
            "models": [s.to_json() for s in self.summaries()],
            "pairs": self.pairs(),
            "retrain_gap": [g.to_json() for g in self.retrain_gaps()],
            "runs": [
                {"fold": r.fold, "seed": r.seed, "split": dict(r.split), **r.row.to_json()} for r in self.runs
            ],
            "errors": self.errors(),
            "config": dict(self.config),
        }
