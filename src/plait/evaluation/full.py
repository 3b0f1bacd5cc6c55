"""The whole evaluation of a trained model on chosen rows, as one `EvaluationReport` (the records
report.html is rendered from and evaluation.json holds): metrics with a bootstrap interval,
ablation per field, robustness curves, calibration per subset of fields, interpretation, timing.

All model runs share one pass (`sweep`): each batch is encoded once, fused under every subset of
fields and every robustness perturbation, re-encoding only the field a signal perturbation changed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import torch
from torch import Tensor

from plait import __version__
from plait.baseline.boosting import BoostingResult
from plait.bundle import TrainedModel
from plait.data.dataset import TensorTable
from plait.errors import DataError
from plait.evaluation.calibration import reliability_curve
from plait.evaluation.evaluate import ALL, ablation_subsets, headline_interval
from plait.evaluation.interpret import Interpretation, inconsistencies, weight_distribution
from plait.evaluation.metrics import confusion_matrix
from plait.evaluation.perturb.choice import RobustnessPlan
from plait.evaluation.result import (
    Ablation,
    BoostingBaseline,
    Calibration,
    EffectiveRobustness,
    EvaluationReport,
    FieldAblation,
    FieldKind,
    Headline,
    Robustness,
    RowSelection,
    SubsetCalibration,
    TaskSummary,
    Timing,
)
from plait.evaluation.robustness import (
    AREA_METHOD,
    EFFECTIVE_METHOD,
    Curve,
    all_points,
    build_curves,
    effective_robustness,
    plan_curves,
    relative_robustness,
    robustness_curves,
    single_field_note,
)
from plait.evaluation.space import SpaceEvaluation, evaluate_space
from plait.evaluation.subset_temperatures import group_by_present, plan_subsets
from plait.evaluation.sweep import ALL_FIELDS, Advance, SweepResult, model_runs, sweep, tracked
from plait.models.answers import calibrated
from plait.models.calibration import subset_key
from plait.task import Task

N_BINS = 15
Say = Callable[[str], None]


@dataclass(frozen=True)
class Baseline:
    """A second model (usually late fusion) on the same rows, for effective robustness; its own
    tensors, since its preprocessing was fitted on its own."""

    trained: TrainedModel
    tensors: TensorTable


def full_evaluation(
    trained: TrainedModel,
    tensors: TensorTable,
    rows: Sequence[int] | np.ndarray,
    *,
    source: str,
    selection: str,
    seed: int = 0,
    robustness: bool = True,
    plan: RobustnessPlan | None = None,
    baseline: Baseline | None = None,
    retrained_without: Mapping[str, float] | None = None,
    say: Say | None = None,
    progress: bool = False,
    boosting: BoostingResult | None = None,
    space: SpaceEvaluation | None = None,
) -> EvaluationReport:
    """Evaluate `trained` on `rows` of `tensors` (which hold targets in the model's encoding).
    `plan` chooses the robustness curves (None: the default ones). While the model runs, a
    progress bar when `progress`, else a line through `say` at each quarter of a long sweep.
    `space`: the shared space's section when the caller has it for these rows already (training's
    held-out evaluation); None evaluates it here."""
    start = time.perf_counter()
    tell: Say = say or (lambda _msg: None)
    if tensors.target is None:
        raise DataError(
            "full_evaluation: the table has no targets; load it with load_table(..., target=labels)"
        )
    task = trained.task
    names = list(trained.modalities)
    idx = torch.as_tensor(np.asarray(rows), dtype=torch.long)  # (N,)
    target = tensors.target[idx]  # (N,)
    present = {f: tensors.present[f][idx].bool() for f in names}  # field -> (N,)
    plans = plan_curves(trained.modalities, plan) if robustness else []
    subsets = _subsets(names, task)
    points = all_points(plans)
    tell(f"evaluating {len(idx)} rows: {len(subsets)} field subsets, {len(points)} perturbed runs")
    total = model_runs(len(idx), len(subsets), len(points))
    with tracked("evaluation", total, progress=progress, say=say) as advance:
        result = sweep(
            trained.model,
            tensors,
            idx,
            subsets=subsets,
            points=points,
            modalities=trained.modalities,
            seed=seed,
            advance=advance,
        )
    metrics = {key: task.metrics(result.subsets[key], target) for key in ablation_subsets(names)}
    curves = build_curves(plans, result.subsets[ALL], result.points, target, task)
    effective = None
    if baseline is not None and robustness:
        tell(f"baseline {baseline.trained.config.model.fusion}: {len(points)} perturbed runs")
        with tracked("baseline", model_runs(len(idx), 1, len(points)), progress=progress, say=say) as advance:
            effective = _effective(baseline, idx, seed, names, curves, plan, advance)
    all_out = result.subsets[ALL]
    seconds = time.perf_counter() - start
    return EvaluationReport(
        model_id=trained.model_id,
        plait_version=__version__,
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        data=RowSelection(source, len(idx), selection),
        task=TaskSummary(task.type, task.label, tuple(task.classes)),
        fields=tuple(FieldKind(n, trained.modalities[n].kind) for n in names),
        fusion=trained.config.model.fusion,
        headline=_headline(metrics[ALL], all_out, target, task),
        metrics=metrics[ALL],
        confusion_matrix=_confusion(all_out, target) if task.is_classification else None,
        ablation=_ablation(metrics, names, task, retrained_without or {}),
        robustness=Robustness(
            metric=task.robustness_metric,
            seed=seed,
            curves=tuple(c for c in curves if c.field != ALL_FIELDS),
            all_fields=tuple(c for c in curves if c.field == ALL_FIELDS),
            relative_robustness=relative_robustness(curves),
            plan=_chosen(plan),
            note=single_field_note(names, curves),
            relative_robustness_method=AREA_METHOD,
            effective=effective,
            effective_method=EFFECTIVE_METHOD,
        )
        if robustness
        else None,
        calibration=_calibration(trained, result, subsets, names, present, target),
        interpretation=Interpretation(
            weights=None
            if result.weights is None
            else weight_distribution(result.weights, trained.model.field_order, present, target, task),
            inconsistencies=inconsistencies(
                {f: result.subsets[f"only:{f}"] for f in names}, present, all_out, target, task, idx
            ),
        ),
        timing=Timing(round(seconds, 3), round(result.encoding_seconds, 3)),
        boosting=None if boosting is None else _boosting(boosting, task),
        space=space if space is not None else _space(trained, tensors, idx, metrics),
    )


def _space(
    trained: TrainedModel, tensors: TensorTable, idx: Tensor, metrics: Mapping[str, Mapping[str, float]]
) -> SpaceEvaluation | None:
    """The shared space's section, imputing compared against the ablation's own without-field runs."""
    metric = trained.task.headline_metric
    without = {
        key.removeprefix("without:"): m[metric] for key, m in metrics.items() if key.startswith("without:")
    }
    return evaluate_space(trained, tensors, idx.numpy(), without)


def _boosting(fit: BoostingResult, task: Task) -> BoostingBaseline:
    return BoostingBaseline(
        metric=task.headline_metric,
        value=round(fit.metric, 6),
        metrics={k: round(float(v), 6) for k, v in fit.metrics.items()},
        retrained_without={f: round(v, 6) for f, v in fit.retrained_without.items()},
        importance=dict(fit.importance),
        rounds=fit.rounds,
        seconds=round(fit.seconds, 3),
    )


def _subsets(names: Sequence[str], task: Task) -> dict[str, Sequence[str] | None]:
    """Ablation subsets, and for classification every subset calibration is reported on."""
    subsets = ablation_subsets(names)
    if task.is_classification:
        for subset in plan_subsets(names):
            if len(subset) not in (1, len(names) - 1, len(names)):
                subsets[f"subset:{subset_key(subset, names)}"] = list(subset)
    return subsets


def _planned_outputs(
    result: SweepResult, subsets: Mapping[str, Sequence[str] | None], names: Sequence[str]
) -> dict[tuple[str, ...], Tensor]:
    """Outputs keyed by the tuple of fields each subset run kept (model order)."""
    out: dict[tuple[str, ...], Tensor] = {}
    for name, keep in subsets.items():
        kept = set(names if keep is None else keep)
        out.setdefault(tuple(n for n in names if n in kept), result.subsets[name])
    return out


def _headline(metrics: Mapping[str, float], output: Tensor, target: Tensor, task: Task) -> Headline:
    return Headline.from_interval(headline_interval(output, target, task), metrics[task.headline_metric])


def _confusion(output: Tensor, target: Tensor) -> tuple[tuple[int, ...], ...]:
    return tuple(tuple(row) for row in confusion_matrix(output, target))


def _chosen(plan: RobustnessPlan | None) -> tuple[str, ...] | None:
    """The --perturb choices in their command-line form; None for the default curves."""
    choices = None if plan is None else plan.to_json()
    return None if choices is None else tuple(choices)


def _ablation(
    metrics: Mapping[str, Mapping[str, float]],
    names: Sequence[str],
    task: Task,
    retrained: Mapping[str, float],
) -> Ablation:
    metric = task.headline_metric
    higher = task.higher_is_better
    every = metrics[ALL][metric]
    fields: dict[str, FieldAblation] = {}
    for n in names:
        without = metrics.get(f"without:{n}", {}).get(metric)
        marginal = None if without is None else (every - without if higher else without - every)
        fields[n] = FieldAblation(
            alone=metrics[f"only:{n}"][metric],
            without=without,
            marginal=None if marginal is None else round(marginal, 6),
            retrained_without=retrained.get(n),
        )
    return Ablation(
        metric=metric,
        higher_is_better=higher,
        all=every,
        fields=fields,
        single_field={n: dict(metrics[f"only:{n}"]) for n in names},
        without_field={n: dict(metrics[f"without:{n}"]) for n in names if f"without:{n}" in metrics},
    )


def _calibration(
    trained: TrainedModel,
    result: SweepResult,
    subsets_run: Mapping[str, Sequence[str] | None],
    names: Sequence[str],
    present: Mapping[str, Tensor],
    target: Tensor,
) -> Calibration | None:
    """ECE/MCE and reliability before and after the bundle's per-subset temperatures, on these rows,
    overall (every row with the fields it has) and per set of fields present."""
    if not trained.task.is_classification:
        return None
    temps = trained.calibration
    logits = result.subsets[ALL]
    y = target.long()
    scaled = calibrated(logits, present, temps)
    before, after = reliability_curve(logits, y, N_BINS), reliability_curve(scaled, y, N_BINS)
    mask = torch.stack([present[f] for f in names], dim=1)  # (N, F)
    groups = group_by_present(_planned_outputs(result, subsets_run, names), mask, tuple(names))
    subsets: list[SubsetCalibration] = []
    for fields, parts in groups.items():
        group_logits = torch.cat([o for o, _ in parts])  # (n, K)
        group_y = torch.cat([y[r] for _, r in parts])  # (n,)
        t = 1.0 if temps is None else temps.temperature_for(fields)
        ordered = [f for f in names if f in fields]
        subsets.append(
            SubsetCalibration(
                key=subset_key(ordered, names),
                fields=tuple(ordered),
                rows=len(group_y),
                temperature=round(t, 6),
                ece_before=round(reliability_curve(group_logits, group_y, N_BINS).ece, 6),
                ece_after=round(reliability_curve(group_logits / t, group_y, N_BINS).ece, 6),
            )
        )
    subsets.sort(key=lambda s: (-len(s.fields), s.key))
    return Calibration(
        calibrated=temps is not None,
        ece_before=round(before.ece, 6),
        ece_after=round(after.ece, 6),
        mce_before=round(before.mce, 6),
        mce_after=round(after.mce, 6),
        reliability_before=before,
        reliability_after=after,
        subsets=tuple(subsets),
    )


def _effective(
    baseline: Baseline,
    idx: Tensor,
    seed: int,
    names: Sequence[str],
    curves: Sequence[Curve],
    plan: RobustnessPlan | None,
    advance: Advance,
) -> EffectiveRobustness | None:
    """The baseline's curves under the same plan, and this model's effective robustness against them."""
    other = baseline.trained
    if set(other.modalities) != set(names):
        return None
    base_curves = robustness_curves(other, baseline.tensors, idx, seed=seed, plan=plan, advance=advance)
    return EffectiveRobustness(
        other.model_id, other.config.model.fusion, effective_robustness(curves, base_curves)
    )
