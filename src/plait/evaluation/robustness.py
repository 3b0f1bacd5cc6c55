"""Robustness curves: the task metric as one field (or every field at once) is perturbed more and
more, and the summaries MultiBench introduced.

- A curve per field and per perturbation family its modality declares (and `missing`), at the family's
  levels (0 = clean, ~10 levels); families marked `default=False` (pixel_gaussian) run only when
  chosen.
- Two all-fields curves: `missing` (each field dropped, independently, for a fraction of the samples)
  and `noise` (each field perturbed at once by its modality's noise family, the same level for all;
  a field whose modality declares none is left out of it).
  With one field they are that field's own `missing` and noise curves: their points are the
  field's, run once (the sweep runs each distinct point once), and reported under both names, so
  a unimodal model's "all" figure is its field's and compares with a fusion's (`plait compare`).
- **Relative robustness** of a curve: the area under metric-vs-level with the levels scaled to [0, 1]
  (trapezoid rule), so 1.0 means "perfect at every level" and a flat curve scores its clean metric.
  A field's figure is the mean over its families; "all" is the mean over the all-fields curves.
  `AREA_METHOD` says so in metrics.json.
- **Effective robustness** against a baseline (MultiBench: late fusion) evaluated on the same rows
  with the same perturbations: the mean over levels of (drop of this model − drop of the baseline),
  the drop being metric(level) − metric(0). It equalises clean accuracy: a positive figure means
  this model loses less than the baseline does. MultiBench sums over levels; the mean keeps the
  figure comparable between families with 10 and 11 levels. `EFFECTIVE_METHOD` says so.

The metric is accuracy for classification and R² for regression (higher is better for both, so
areas compare; RMSE would reward the opposite direction).

A `RobustnessPlan` of `PerturbationChoice`s (perturb/choice.py) replaces the default curves with
chosen families at chosen levels (`plait evaluate --perturb photo:pixel_gaussian=0:0.9:10`), e.g.
to sit beside published figures; `plan_curves` checks them against the model's fields.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from torch import Tensor

from plait.bundle import TrainedModel
from plait.data.dataset import TensorTable
from plait.errors import ConfigError, DataError
from plait.evaluation.perturb import PERTURBATIONS, Perturbation, perturbations_for
from plait.evaluation.perturb.apply import applies_to, kind_name, noise_perturbation
from plait.evaluation.perturb.choice import NOISE, PerturbationChoice, RobustnessPlan
from plait.evaluation.sweep import ALL_FIELDS, Advance, SweepPoint, sweep, unique_points
from plait.registry import suggest
from plait.task import Task

ALL_NOISE_LEVELS = tuple(round(i / 10, 6) for i in range(11))
AREA_METHOD = {  # how relative robustness is computed, written into metrics.json beside the figures
    "levels": "scaled to [0, 1] per curve: (level - first level) / (last level - first level)",
    "rule": "trapezoid",
    "perfect": 1.0,
    "meaning": "1.0 = a perfect metric at every level; a flat curve scores its clean metric",
    "per_field": "the mean over the field's curves; 'all': the mean over the all-fields curves",
}
EFFECTIVE_METHOD = (
    "mean over levels above 0 of (this model's drop from its clean metric - the baseline's drop), "
    "averaged over a field's curves; > 0: loses less than the baseline"
)


@dataclass(frozen=True)
class CurvePlan:
    field: str  # a field name, or "all"
    perturbation: str  # a family name, or "noise" (all fields, each its modality's noise family)
    levels: tuple[float, ...]
    unit: str
    description: str
    points: tuple[SweepPoint, ...]  # one per level above 0


@dataclass(frozen=True)
class Curve:
    """The metric at each level of one perturbation of one field (or "all"); values rounded to 6
    decimals and the relative robustness computed from them, so a curve read back from JSON is the
    curve that was written."""

    field: str
    perturbation: str
    unit: str
    description: str
    levels: tuple[float, ...]
    values: tuple[float, ...]
    relative_robustness: float

    @classmethod
    def measured(cls, plan: CurvePlan, values: Sequence[float]) -> Curve:
        rounded = tuple(round(float(v), 6) for v in values)
        return cls(
            plan.field,
            plan.perturbation,
            plan.unit,
            plan.description,
            plan.levels,
            rounded,
            round(area(plan.levels, rounded), 6),
        )

    def drops(self) -> np.ndarray:
        return np.asarray(self.values) - self.values[0]

    def to_json(self) -> dict[str, Any]:
        return {
            "field": self.field,
            "perturbation": self.perturbation,
            "unit": self.unit,
            "description": self.description,
            "levels": list(self.levels),
            "values": list(self.values),
            "relative_robustness": self.relative_robustness,
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Curve:
        return cls(
            field=str(raw["field"]),
            perturbation=str(raw["perturbation"]),
            unit=str(raw.get("unit", "")),
            description=str(raw.get("description", "")),
            levels=tuple(float(x) for x in raw["levels"]),
            values=tuple(float(x) for x in raw["values"]),
            relative_robustness=float(raw["relative_robustness"]),
        )


def area(levels: Sequence[float], values: Sequence[float]) -> float:
    """Trapezoid area under values over levels scaled to [0, 1]."""
    x = np.asarray(levels, dtype=np.float64)
    y = np.asarray(values, dtype=np.float64)
    if len(x) < 2 or x[-1] <= x[0]:
        return float(y[0]) if len(y) else float("nan")
    x = (x - x[0]) / (x[-1] - x[0])
    return float(np.sum((x[1:] - x[:-1]) * (y[1:] + y[:-1]) / 2))


def plan_curves(modalities: Mapping[str, Any], plan: RobustnessPlan | None = None) -> list[CurvePlan]:
    """The curves of `plan` for these fields (field → its modality, or the modality's class). The
    default plan: every default family for every field it applies to, then the all-fields `missing`
    and `noise` curves (no `noise` curve when no field's modality declares a noise family)."""
    if plan is not None and plan.choices:
        plans = [curve for choice in plan.choices for curve in _chosen(choice, modalities)]
        seen: set[tuple[str, str]] = set()
        for curve in plans:
            if (curve.field, curve.perturbation) in seen:
                raise ConfigError(
                    f"robustness plan: the {curve.perturbation} curve of {curve.field} is chosen twice; "
                    "give each field and family once"
                )
            seen.add((curve.field, curve.perturbation))
        return plans
    plans = [
        _field_plan(field, family, family.levels)
        for field, modality in modalities.items()
        for family in perturbations_for(modality)
        if family.default
    ]
    missing = PERTURBATIONS.get("missing")
    plans.append(_all_fields_plan(missing, modalities, missing.levels))
    noise = _noise_plan(modalities, ALL_NOISE_LEVELS)
    return plans if noise is None else [*plans, noise]


def _field_plan(field: str, family: Perturbation, levels: tuple[float, ...]) -> CurvePlan:
    points = tuple(SweepPoint((field,), (family.name,), level) for level in levels if level)
    return CurvePlan(field, family.name, levels, family.unit, family.description, points)


def _all_fields_plan(family: Perturbation, fields: Collection[str], levels: tuple[float, ...]) -> CurvePlan:
    fields = tuple(fields)
    description = (
        "every field dropped, independently, for this fraction of the samples that have it"
        if family.name == "missing"
        else f"every field at once, independently: {family.description}"
    )
    if len(fields) == 1:
        description = f"{fields[0]}, the model's only field: {family.description}"
    points = tuple(SweepPoint(fields, (family.name,) * len(fields), lv) for lv in levels if lv)
    return CurvePlan(ALL_FIELDS, family.name, levels, family.unit, description, points)


def _noise_families(modalities: Mapping[str, Any]) -> dict[str, Perturbation]:
    """Each field's noise family, for the fields whose modality declares one."""
    noises = {field: noise_perturbation(modality) for field, modality in modalities.items()}
    return {field: family for field, family in noises.items() if family is not None}


def _noise_plan(modalities: Mapping[str, Any], levels: tuple[float, ...]) -> CurvePlan | None:
    """The all-fields noise curve over the fields with a noise family; None when none has one."""
    noises = _noise_families(modalities)
    if not noises:
        return None
    fields = tuple(noises)
    each = ", ".join(f"{f} {n.name} ({n.unit})" for f, n in noises.items())
    description = f"every field at once, each by its kind's noise family at the same level: {each}"
    left_out = [f for f in modalities if f not in noises]
    if left_out:
        description += f"; {', '.join(left_out)} left out (no noise family)"
    if len(modalities) == 1:
        only = noises[fields[0]]
        description = f"{fields[0]}, the model's only field, by {only.name}: {only.description}"
    return CurvePlan(
        ALL_FIELDS,
        NOISE,
        levels,
        "level of each field's noise family",
        description,
        tuple(SweepPoint(fields, tuple(n.name for n in noises.values()), lv) for lv in levels if lv),
    )


def single_field_note(fields: Collection[str], curves: Sequence[Curve]) -> str | None:
    """For a one-field model, what its all-fields curves are (None otherwise, or without them)."""
    every = [c.perturbation for c in curves if c.field == ALL_FIELDS]
    if len(fields) != 1 or not every:
        return None
    field = next(iter(fields))
    return (
        f"the model has one field, {field}: perturbing every field at once perturbs {field} alone, so "
        f"the all-fields curves ({', '.join(every)}) are {field}'s own curves under those families "
        "(their runs shared, each run once); 'all' is their mean area, comparable with a fusion's "
        "all-fields robustness"
    )


def robustness_metric(output: Tensor, target: Tensor, task: Task) -> float:
    """The task's robustness metric: accuracy (logits (N, K) vs class indices) or R² (predictions
    (N, 1) vs targets; scale-free, so standardised values give the same figure)."""
    if task.is_classification:
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
    task: Task,
) -> list[Curve]:
    """The metric at every level of every plan; level 0 is the clean output."""
    clean_metric = robustness_metric(clean, target, task)
    curves = []
    for plan in plans:
        values = [clean_metric] + [robustness_metric(points[p], target, task) for p in plan.points]
        curves.append(Curve.measured(plan, values))
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
    """The sweep points of `plans`, each once: curves may share points (with one field, the
    all-fields curves are the field's own), and each is run and counted once."""
    return list(unique_points([p for plan in plans for p in plan.points]))


def robustness_curves(
    trained: TrainedModel,
    table: TensorTable,
    rows: Tensor,
    *,
    seed: int,
    plan: RobustnessPlan | None = None,
    advance: Advance | None = None,
) -> list[Curve]:
    """Every curve of `plan_curves` for `trained` on `rows` of `table` (which holds targets), in one
    `sweep` pass; for a model measured on its own (a baseline, a `plait compare` row)."""
    if table.target is None:
        raise DataError("robustness_curves: the table has no targets; load it with target=labels")
    plans = plan_curves(trained.modalities, plan)
    result = sweep(
        trained.model,
        table,
        rows,
        subsets={ALL_FIELDS: None},
        points=all_points(plans),
        modalities=trained.modalities,
        seed=seed,
        advance=advance,
    )
    target = table.target[rows]  # (N,)
    return build_curves(plans, result.subsets[ALL_FIELDS], result.points, target, trained.task)


# ---------------------------------------------------------------- chosen curves (--perturb)


def _levels(
    choice: PerturbationChoice, default: tuple[float, ...], maximum: float, unit: str
) -> tuple[float, ...]:
    """The choice's levels (or `default`), checked: finite, increasing, within [0, maximum]; 0 first."""
    levels = default if choice.levels is None else tuple(float(v) for v in choice.levels)
    where = f"--perturb {choice.text()!r}"
    bound = "[0, ∞)" if math.isinf(maximum) else f"[0, {maximum:g}]"
    for level in levels:
        if not (math.isfinite(level) and 0.0 <= level <= maximum):
            raise ConfigError(
                f"{where}: level {level:g} is outside {choice.family}'s range {bound} ({unit}); "
                "choose levels inside it"
            )
    if any(b <= a for a, b in itertools.pairwise(levels)):
        raise ConfigError(
            f"{where}: levels must increase, each once; got {', '.join(f'{v:g}' for v in levels)}"
        )
    if not levels or levels[0] != 0.0:
        levels = (0.0, *levels)  # every curve starts from the clean run
    return levels


def _chosen(choice: PerturbationChoice, modalities: Mapping[str, Any]) -> list[CurvePlan]:
    """The curves one choice asks for, its field, family and levels checked against the model."""
    fields = list(modalities)
    where = f"--perturb {choice.text()!r}"
    if choice.family == NOISE:
        if choice.field not in (None, ALL_FIELDS):
            raise ConfigError(f"{where}: 'noise' is the all-fields curve; write all:noise or noise")
        families = _noise_families(modalities)
        if not families:
            raise ConfigError(
                f"{where}: no field of this model has a noise family ("
                + ", ".join(f"{f}: {kind_name(m)}" for f, m in modalities.items())
                + "); choose a family by name, e.g. all:missing"
            )
        top = min(f.max_level for f in families.values())
        levels = _levels(choice, ALL_NOISE_LEVELS, top, "each field's noise family")
        return [plan for plan in (_noise_plan(modalities, levels),) if plan is not None]
    family = PERTURBATIONS.get(choice.family)
    levels = _levels(choice, family.levels, family.max_level, family.unit)
    applies = {f: family.name in _family_names(m) for f, m in modalities.items()}
    if choice.field == ALL_FIELDS:
        other = [f for f, ok in applies.items() if not ok]
        if other:
            raise ConfigError(
                f"{where}: {family.name} applies to {applies_to(family.name)}, and "
                + ", ".join(f"{f} is {kind_name(modalities[f])}" for f in other)
                + "; perturb every field at once with all:missing or all:noise, or name a field"
            )
        return [_all_fields_plan(family, fields, levels)]
    if choice.field is None:
        chosen = [f for f, ok in applies.items() if ok]
        if not chosen:
            raise ConfigError(
                f"{where}: {family.name} applies to {applies_to(family.name)} and this model has none ("
                + ", ".join(f"{f}: {kind_name(m)}" for f, m in modalities.items())
                + ")"
            )
        return [_field_plan(f, family, levels) for f in chosen]
    if choice.field not in modalities:
        raise ConfigError(
            f"{where}: the model has no field '{choice.field}';{suggest(choice.field, fields)} "
            f"Fields: {', '.join(fields)}, or all"
        )
    if not applies[choice.field]:
        kind = kind_name(modalities[choice.field])
        raise ConfigError(
            f"{where}: {family.name} applies to {applies_to(family.name)}, not to {kind} field "
            f"'{choice.field}'; families for {kind}: {', '.join(_family_names(modalities[choice.field]))}"
        )
    return [_field_plan(choice.field, family, levels)]


def _family_names(modality: Any) -> list[str]:
    return [p.name for p in perturbations_for(modality)]
