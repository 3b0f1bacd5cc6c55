"""The records of a comparison: one `CompareRow` per trained model, and the `Comparison` of them all.

A row is a fusion strategy trained on every field (kind "fusion"), one field trained alone (kind
"unimodal", the baseline a fusion has to beat), or gradient boosting on every field's summary
features (kind "baseline", the simple model a user already has; plait.baseline), or (with
`--retrain-ablation`) a plait model trained on every field but one (kind "retrained", named
`without-FIELD`: the reference of the retrain gap, compare/retrain_gap.py). A row whose training
failed keeps its error and no figures.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from plait.task import Task, gain

FUSION, UNIMODAL, BASELINE, RETRAINED = "fusion", "unimodal", "baseline", "retrained"


@dataclass(frozen=True)
class CompareRow:
    name: str  # the fusion's name, "FIELD-only" for a unimodal baseline, "without-FIELD", or "boosting"
    kind: str  # FUSION | UNIMODAL | BASELINE | RETRAINED
    fusion: str
    fields: tuple[str, ...]
    metric: float | None = None  # the task metric on the held-out rows (None: failed)
    metrics: Mapping[str, float] = field(default_factory=dict)  # every task metric
    ece: float | None = None  # expected calibration error (classification only)
    parameters: int | None = None
    train_seconds: float | None = None
    epochs_run: int | None = None
    latency_ms: float | None = None  # per sample, batches of LATENCY_BATCH held-out rows
    latency_single_ms: float | None = None  # one row per call
    without_field: Mapping[str, float] = field(default_factory=dict)  # field → metric with it removed
    # field → metric of the same kind of model trained without the field (the boosting baseline)
    retrained_without: Mapping[str, float] = field(default_factory=dict)
    grad_share: Mapping[str, float] = field(default_factory=dict)
    # Robustness: MultiBench's relative robustness with every field perturbed at once (every row;
    # a unimodal row's is its field's: the mean of the all-fields `missing` and `noise` areas), and, for
    # fusion rows, effective robustness against the `late` row (mean drop difference; > 0: loses less).
    relative_robustness: float | None = None
    effective_robustness: float | None = None
    warnings: tuple[str, ...] = ()
    bundle: Path | None = None
    error: str | None = None  # why training failed

    @property
    def ok(self) -> bool:
        return self.error is None and self.metric is not None

    def left_out(self, field: str) -> float | None:
        """The metric without `field`: retrained without it where that was measured (the boosting
        baseline), else with it absent at test time; None when neither was."""
        return self.retrained_without.get(field, self.without_field.get(field))

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "fusion": self.fusion,
            "fields": list(self.fields),
            "metric": self.metric,
            "metrics": dict(self.metrics),
            "ece": self.ece,
            "parameters": self.parameters,
            "train_seconds": self.train_seconds,
            "epochs_run": self.epochs_run,
            "latency_ms": self.latency_ms,
            "latency_single_ms": self.latency_single_ms,
            "without_field": dict(self.without_field),
            "retrained_without": dict(self.retrained_without),
            "grad_share": dict(self.grad_share),
            "relative_robustness": self.relative_robustness,
            "effective_robustness": self.effective_robustness,
            "warnings": list(self.warnings),
            "bundle": None if self.bundle is None else str(self.bundle),
            "error": self.error,
        }


@dataclass(frozen=True)
class Comparison:
    config: Mapping[str, Any]  # the config every row started from, as plain data
    task: Task
    fields: tuple[str, ...]
    held_out: str  # the split the metrics are measured on: "test", "validation" or "train"
    held_out_rows: int
    split_sizes: Mapping[str, int]
    seed: int
    rows: tuple[CompareRow, ...]
    prepare_seconds: float
    seconds: float
    latency_device: str  # where latency was measured, e.g. "cpu, 1 thread"
    source: str  # the table's path

    @property
    def metric_name(self) -> str:
        return self.task.headline_metric

    @property
    def higher_is_better(self) -> bool:
        return self.task.higher_is_better

    def ranked(self) -> list[CompareRow]:
        """Successful rows best first (ties keep the training order), then the failed rows."""
        ok = [r for r in self.rows if r.ok]
        sign = -1.0 if self.higher_is_better else 1.0
        ok.sort(key=lambda r: sign * float(r.metric))  # type: ignore[arg-type]  # ok rows have one
        return ok + [r for r in self.rows if not r.ok]

    def best(self, kind: str) -> CompareRow | None:
        """The best successful row of `kind` ("fusion" | "unimodal"), or None."""
        return next((r for r in self.ranked() if r.ok and r.kind == kind), None)

    def verdict(self) -> str:
        """Does the best fusion beat the best unimodal baseline, and the boosting baseline."""
        return self._fusion_verdict() + self._baseline_verdict()

    def _baseline_verdict(self) -> str:
        boosting, fusion = self.best(BASELINE), self.best(FUSION)
        if boosting is None or fusion is None:
            return ""
        assert boosting.metric is not None and fusion.metric is not None  # ok rows have one
        margin = gain(fusion.metric, boosting.metric, self.higher_is_better)
        said = "beats" if margin > 0 else ("ties with" if margin == 0 else "does NOT beat")
        return (
            f" Against the simple model: {fusion.name} {said} gradient boosting on summary features "
            f"({self.metric_name} {boosting.metric:.4f}) by {margin:+.4f}; run `plait compare --folds 5 "
            "--seeds 3` to tell a gap from noise."
        )

    def _fusion_verdict(self) -> str:
        fusion, alone = self.best("fusion"), self.best("unimodal")
        name = self.metric_name
        if fusion is None:
            return "No fusion strategy trained successfully; see the errors below."
        if alone is None:
            return (
                f"Best fusion: {fusion.name} ({name} {fusion.metric:.4f}). No unimodal baseline was trained "
                "(turned off, or the config has a single field)."
            )
        assert fusion.metric is not None and alone.metric is not None  # ok rows have one
        margin = gain(fusion.metric, alone.metric, self.higher_is_better)
        direction = "higher" if self.higher_is_better else "lower"
        relative = f" ({margin / abs(alone.metric):+.1%})" if alone.metric != 0 else ""
        head = (
            f"The best fusion, {fusion.name} ({name} {fusion.metric:.4f}), "
            f"vs the best unimodal baseline, {alone.name} ({alone.metric:.4f}):"
        )
        if margin > 0:
            tail = f"fusion wins by {abs(margin):.4f}{relative}"
        elif margin < 0:
            tail = f"fusion does NOT beat it; it is {abs(margin):.4f} worse{relative}"
        else:
            tail = "a tie; fusion adds nothing here"
        return (
            f"{head} {tail} ({direction} is better; {self.held_out_rows} {self.held_out} rows, "
            "so small gaps may be noise)."
        )

    def to_json(self) -> dict[str, Any]:
        best_alone = self.best("unimodal")
        best_fusion = self.best("fusion")
        boosting = self.best(BASELINE)
        return {
            "task": {"type": self.task.type, "label": self.task.label, "metric": self.metric_name},
            "higher_is_better": self.higher_is_better,
            "fields": list(self.fields),
            "held_out": self.held_out,
            "held_out_rows": self.held_out_rows,
            "split": dict(self.split_sizes),
            "seed": self.seed,
            "source": self.source,
            "prepare_seconds": round(self.prepare_seconds, 3),
            "seconds": round(self.seconds, 3),
            "latency_device": self.latency_device,
            "best_fusion": None if best_fusion is None else best_fusion.name,
            "best_unimodal": None if best_alone is None else best_alone.name,
            "baseline": None if boosting is None else boosting.name,
            "verdict": self.verdict(),
            "rows": [r.to_json() for r in self.ranked()],
            "config": dict(self.config),
        }
