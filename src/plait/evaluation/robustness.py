"""Robustness curves: the task metric as one field (or every field at once) is perturbed more and
more, and the summaries MultiBench introduced.

- A curve per field and per perturbation family that applies to the field's kind, at the family's
  levels (0 = clean, ~10 levels).
- Two all-fields curves: `missing` (each field dropped, independently, for a fraction of the samples)
  and `noise` (each field perturbed at once by its kind's noise family, the same level for all).
- **Relative robustness** of a curve: the area under metric-vs-level with the levels scaled to [0, 1]
  (trapezoid rule), so 1.0 means "perfect at every level" and a flat curve scores its clean metric.
  A field's figure is the mean over its families; "all" is the mean over the all-fields curves.
- **Effective robustness** against a baseline (MultiBench: late fusion) evaluated on the same rows
  with the same perturbations: the mean over levels of (drop of this model − drop of the baseline),
  the drop being metric(level) − metric(0). It equalises clean accuracy: a positive figure means
  this model loses less than the baseline does. MultiBench sums over levels; the mean keeps the
  figure comparable between families with 10 and 11 levels.

The metric is accuracy for classification and R² for regression (higher is better for both, so
areas compare; RMSE would reward the opposite direction).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from torch import Tensor

from plait.bundle import TrainedModel
from plait.data.dataset import TensorTable
from plait.errors import DataError
from plait.evaluation.perturb import PERTURBATIONS, perturbation_context, perturbations_for
from plait.evaluation.sweep import ALL_FIELDS, SweepPoint, sweep

NOISE = "noise"
NOISE_FAMILY = {  # the all-fields noise curve: each kind's noise family (levels 0…1 for every one)
    "timeseries": "gaussian_noise",
    "tabular": "gaussian_noise",
    "embedding": "gaussian_noise",
    "image": "pixel_noise",
    "audio": "background_noise",
    "text": "typo",
}
ALL_NOISE_LEVELS = tuple(round(i / 10, 6) for i in range(11))
ROBUSTNESS_METRIC = {"classification": "accuracy", "regression": "r2"}


@dataclass(frozen=True)
class CurvePlan:
    field: str  # a field name, or "all"
    perturbation: str  # a family name, or "noise" (all fields, each its kind's noise family)
    levels: tuple[float, ...]
    unit: str
    description: str
    points: tuple[SweepPoint, ...]  # one per level above 0


@dataclass(frozen=True)
class Curve:
    field: str
    perturbation: str
    unit: str
    description: str
    levels: tuple[float, ...]
    values: tuple[float, ...]

    @property
    def relative_robustness(self) -> float:
        return area(self.levels, self.values)

    def drops(self) -> np.ndarray:
        return np.asarray(self.values) - self.values[0]

    def to_json(self) -> dict[str, Any]:
        return {
            "field": self.field,
            "perturbation": self.perturbation,
            "unit": self.unit,
            "description": self.description,
            "levels": list(self.levels),
            "values": [round(v, 6) for v in self.values],
            "relative_robustness": round(self.relative_robustness, 6),
        }


def area(levels: Sequence[float], values: Sequence[float]) -> float:
    """Trapezoid area under values over levels scaled to [0, 1]."""
    x = np.asarray(levels, dtype=np.float64)
    y = np.asarray(values, dtype=np.float64)
    if len(x) < 2 or x[-1] <= x[0]:
        return float(y[0]) if len(y) else float("nan")
    x = (x - x[0]) / (x[-1] - x[0])
    return float(np.sum((x[1:] - x[:-1]) * (y[1:] + y[:-1]) / 2))


def plan_curves(kinds: Mapping[str, str]) -> list[CurvePlan]:
    """Every applicable family for every field, then the all-fields `missing` and `noise` curves."""
    plans: list[CurvePlan] = []
    for field, kind in kinds.items():
        for family in perturbations_for(kind):
            points = tuple(SweepPoint((field,), (family.name,), level) for level in family.levels if level)
            plans.append(
                CurvePlan(field, family.name, family.levels, family.unit, family.description, points)
            )
    fields = tuple(kinds)
    missing = PERTURBATIONS.get("missing")
    plans.append(
        CurvePlan(
            ALL_FIELDS,
            "missing",
            missing.levels,
            missing.unit,
            "every field dropped, independently, for this fraction of the samples that have it",
            tuple(SweepPoint(fields, ("missing",) * len(fields), lv) for lv in missing.levels if lv),
        )
    )
    noises = tuple(NOISE_FAMILY[kinds[f]] for f in fields)
    plans.append(
        CurvePlan(
            ALL_FIELDS,
            NOISE,
            ALL_NOISE_LEVELS,
            "noise level",
            "every field at once: " + ", ".join(f"{f} {n}" for f, n in zip(fields, noises, strict=True)),
            tuple(SweepPoint(fields, noises, lv) for lv in ALL_NOISE_LEVELS if lv),
        )
    )
    return plans


def robustness_metric(output: Tensor, target: Tensor, task_type: str) -> float:
    """Accuracy (logits (N, K) vs class indices) or R² (predictions (N, 1) vs targets; scale-free)."""
    if task_type == "classification":
        return float((output.argmax(dim=1) == target.long()).float().mean())
    pred = output.float().reshape(-1)
    y = target.float().reshape(-1)
    total = float(((y - y.mean()) ** 2).sum())
    return 1.0 - float(((pred - y) ** 2).sum()) / total if total > 0 else float("nan")


def build_curves(
    plans: Sequence[CurvePlan],
    clean: Tensor,
    points: Mapping[SweepPoint, Tensor],
    target: Tensor,
    task_type: str,
) -> list[Curve]:
    """The metric at every level of every plan; level 0 is the clean output."""
    clean_metric = robustness_metric(clean, target, task_type)
    curves = []
    for plan in plans:
        values = [clean_metric] + [robustness_metric(points[p], target, task_type) for p in plan.points]
        curves.append(
            Curve(plan.field, plan.perturbation, plan.unit, plan.description, plan.levels, tuple(values))
        )
    return curves


def relative_robustness(curves: Sequence[Curve]) -> dict[str, float]:
    """Per field (and "all"): the mean relative robustness of its curves."""
    by_field: dict[str, list[float]] = {}
    for curve in curves:
        by_field.setdefault(curve.field, []).append(curve.relative_robustness)
    return {field: round(float(np.mean(v)), 6) for field, v in by_field.items()}


def effective_robustness(curves: Sequence[Curve], baseline: Sequence[Curve]) -> dict[str, float]:
    """Per field (and "all"): mean over its curves of mean(drop − baseline drop) over the levels
    above 0. Curves are matched by (field, perturbation); unmatched ones are left out."""
    base = {(c.field, c.perturbation): c for c in baseline}
    by_field: dict[str, list[float]] = {}
    for curve in curves:
        other = base.get((curve.field, curve.perturbation))
        if other is None or other.levels != curve.levels:
            continue
        gain = curve.drops()[1:] - other.drops()[1:]
        by_field.setdefault(curve.field, []).append(float(gain.mean()) if len(gain) else 0.0)
    return {field: round(float(np.mean(v)), 6) for field, v in by_field.items()}


def all_points(plans: Sequence[CurvePlan]) -> list[SweepPoint]:
    return [p for plan in plans for p in plan.points]


def curves_json(curves: Sequence[Curve]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(per-field curves, all-fields curves) as JSON."""
    return (
        [c.to_json() for c in curves if c.field != ALL_FIELDS],
        [c.to_json() for c in curves if c.field == ALL_FIELDS],
    )


def robustness_curves(trained: TrainedModel, table: TensorTable, rows: Tensor, *, seed: int) -> list[Curve]:
    """Every curve of `plan_curves` for `trained` on `rows` of `table` (which holds targets), in one
    `sweep` pass; for a model measured on its own (a baseline, a `plait compare` row)."""
    if table.target is None:
        raise DataError("robustness_curves: the table has no targets; load it with target=labels")
    kinds = {n: m.kind for n, m in trained.modalities.items()}
    plans = plan_curves(kinds)
    result = sweep(
        trained.model,
        table,
        rows,
        subsets={ALL_FIELDS: None},
        points=all_points(plans),
        kinds=kinds,
        contexts={n: perturbation_context(m) for n, m in trained.modalities.items()},
        seed=seed,
    )
    target = table.target[rows]  # (N,)
    return build_curves(plans, result.subsets[ALL_FIELDS], result.points, target, trained.task.type)
