"""`compare(config, fusions)`: train every fusion strategy, and every field alone, on the same data.

The table is read, split and preprocessed ONCE (`prepare`), so every model sees the same rows, the
same split and the same seed; only the model section changes between rows. One strategy failing is
recorded as a failed row and the comparison goes on; every row failing is an error.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl
import torch

from plait.baseline.boosting import NAME as BOOSTING
from plait.baseline.boosting import BoostingResult, fit_boosting
from plait.baseline.features import FeatureTable, summary_table
from plait.compare.latency import latency_device, measure_latency
from plait.compare.result import BASELINE, FUSION, RETRAINED, UNIMODAL, CompareRow, Comparison
from plait.compare.retrain_gap import retrain_plans
from plait.config import Config
from plait.errors import ConfigError, PlaitError
from plait.evaluation.calibration import expected_calibration_error
from plait.evaluation.robustness import Curve, effective_robustness, relative_robustness, robustness_curves
from plait.evaluation.sweep import ALL_FIELDS
from plait.fusion import FUSIONS
from plait.models.inference import run_model
from plait.registry import unknown_name_message
from plait.task import EMBEDDING, Task

if TYPE_CHECKING:
    from plait.training.fit import Prepared
    from plait.workflow.train import TrainResult

Say = Callable[[str], None]
ALL = "all"
BASELINE_FUSION = "concat"  # a single field has nothing to fuse; concat of one field is the identity


def resolve_fusions(fusions: Sequence[str]) -> list[str]:
    """The fusion names to train, in the order given, without duplicates; "all" is every registered one."""
    available = FUSIONS.names()
    names: list[str] = []
    for name in fusions:
        for one in available if name == ALL else [name]:
            if one not in FUSIONS:
                raise ConfigError(f"compare: {unknown_name_message('fusion', one, [*available, ALL])}")
            if one not in names:
                names.append(one)
    if not names:
        raise ConfigError(f"compare: no fusion given; name one or more of {', '.join(available)}, or '{ALL}'")
    return names


def model_plans(
    fusions: Sequence[str],
    fields: Sequence[str],
    *,
    unimodal: bool,
    baseline: bool = True,
    retrain: bool = False,
) -> list[CompareRow]:
    """The rows to train: each fusion on every field, then (with `unimodal` and ≥ 2 fields) each
    field alone, then (with `retrain`) the first fusion on every field but one, for each field
    (the references of the retrain gap), then (with `baseline`) gradient boosting on every
    field's summary features."""
    plans = [CompareRow(name=n, kind=FUSION, fusion=n, fields=tuple(fields)) for n in fusions]
    alone = unimodal and len(fields) >= 2
    if alone:
        plans += [
            CompareRow(name=f"{f}-only", kind=UNIMODAL, fusion=BASELINE_FUSION, fields=(f,)) for f in fields
        ]
    if retrain:
        plans += retrain_plans(fusions[0], fields, unimodal_rows=alone, single_field_fusion=BASELINE_FUSION)
    if baseline:
        plans.append(CompareRow(name=BOOSTING, kind=BASELINE, fusion=BOOSTING, fields=tuple(fields)))
    return plans


def compare(
    config: Config,
    fusions: Sequence[str],
    *,
    unimodal: bool = True,
    baseline: bool = True,
    retrain: bool = False,
    out: Path | None = None,
    say: Say | None = None,
    table: pl.DataFrame | None = None,
) -> Comparison:
    """Train each of `fusions` on every field, (with `unimodal` and ≥ 2 fields) each field alone,
    (with `retrain`) the first fusion without each field, and (with `baseline`) gradient boosting
    on summary features, on the same rows and split. `out`: keep each model's bundle under
    out/bundles/NAME (None keeps none)."""
    from plait.training.distributed import require_one_process
    from plait.training.fit import prepare  # Lightning: only when training

    require_one_process(config.train, "plait compare")

    tell: Say = say or (lambda _msg: None)
    names = resolve_fusions(fusions)
    if not config.labelled:  # a label-free config compares nothing: say so before reading the table
        Task(EMBEDDING, "").require_prediction("plait compare")
    start = time.perf_counter()
    prepared = prepare(config, table=table, say=tell)
    fields = prepared.config.field_names
    plans = model_plans(names, fields, unimodal=unimodal, baseline=baseline, retrain=retrain)
    features = Features(prepared)
    rows: list[CompareRow] = []
    curves: dict[str, list[Curve]] = {}  # fusion row → its robustness curves
    device = "cpu"
    for number, plan in enumerate(plans, start=1):
        step = f"[{number}/{len(plans)}]"
        tell(f"{step} training {plan.name}…")
        bundle = None if out is None else Path(out) / "bundles" / plan.name
        trained = train_row(prepared, plan, bundle, lambda m: tell(f"    {m}"), features=features)
        row, curves[plan.name] = trained.row, trained.curves
        device = trained.device if row.ok else device
        tell(f"{step} {plan.name}: {outcome(row, prepared.task)}")
        rows.append(row)
    if not any(r.ok for r in rows if r.kind != BASELINE):
        failures = "; ".join(f"{r.name}: {r.error}" for r in rows if r.kind != BASELINE)
        raise PlaitError(f"compare: every plait model failed to train; fix these and run again: {failures}")
    rows = _with_effective_robustness(rows, curves)
    held_out, held_out_rows = prepared.split.held_out()
    return Comparison(
        config=prepared.config.to_dict(),
        task=prepared.task,
        fields=fields,
        held_out=held_out,
        held_out_rows=len(held_out_rows),
        split_sizes=prepared.split.sizes(),
        seed=prepared.config.train.seed,
        rows=tuple(rows),
        prepare_seconds=prepared.seconds,
        seconds=time.perf_counter() - start,
        latency_device=device,
        source=prepared.source,
    )


@dataclass(frozen=True)
class TrainedRow:
    """One model of a comparison: its measured row, where its latency was measured, its
    robustness curves (when measured) and the training result (None if it failed)."""

    row: CompareRow
    device: str
    curves: list[Curve]
    result: TrainResult | None
    baseline: BoostingResult | None = None  # the boosting row's fit, for its out-of-fold rows


class Features:
    """The summary features of one prepared table, computed when a boosting row first asks."""

    def __init__(self, prepared: Prepared) -> None:
        self.prepared = prepared
        self._table: FeatureTable | None = None

    def table(self) -> FeatureTable:
        if self._table is None:
            self._table = summary_table(self.prepared.modalities, self.prepared.tensors)
        return self._table


def train_row(
    prepared: Prepared,
    plan: CompareRow,
    bundle: Path | None,
    tell: Say,
    *,
    seed: int | None = None,
    extras: bool = True,
    features: Features | None = None,
) -> TrainedRow:
    """Train and measure one row; a PlaitError or RuntimeError becomes a failed row. `seed`
    overrides train.seed; `extras` adds latency and robustness (off in cross-validation runs)."""
    from plait.workflow.train import fit_prepared

    if plan.kind == BASELINE:
        return _boosting_row(prepared, plan, seed, features or Features(prepared))

    config = _with_fusion(prepared.config, plan.fusion)
    if seed is not None and seed != config.train.seed:
        config = config.with_overrides(train={"seed": seed})
    subset = list(plan.fields) if plan.kind in (UNIMODAL, RETRAINED) else None
    try:
        result = fit_prepared(prepared, config=config, fields=subset, out=bundle, say=tell)
        curves = _robustness(prepared, result, plan.fields) if extras else []
        row = replace(
            _measured(prepared, plan, result, latency=extras), relative_robustness=_all_fields_area(curves)
        )
        return TrainedRow(row, latency_device(result.trained.model), curves, result)
    except (PlaitError, RuntimeError) as exc:
        failed = CompareRow(
            name=plan.name,
            kind=plan.kind,
            fusion=plan.fusion,
            fields=plan.fields,
            error=f"{type(exc).__name__}: {exc}",
        )
        return TrainedRow(failed, "cpu", [], None)


def _boosting_row(prepared: Prepared, plan: CompareRow, seed: int | None, features: Features) -> TrainedRow:
    """Gradient boosting on the summary features of `plan.fields`, and retrained without each."""
    target = prepared.tensors.target
    try:
        if target is None:
            raise PlaitError("the boosting baseline needs a labelled table")
        fit = fit_boosting(
            features.table(),
            target,
            prepared.split,
            prepared.task,
            seed=prepared.config.train.seed if seed is None else seed,
            fields=plan.fields,
        )
    except (PlaitError, RuntimeError, ValueError) as exc:
        return TrainedRow(replace(plan, error=f"{type(exc).__name__}: {exc}"), "cpu", [], None)
    ece = None
    if prepared.task.is_classification:
        _, held_out = prepared.split.held_out()
        ece = expected_calibration_error(fit.output, target[torch.as_tensor(held_out, dtype=torch.long)])
    row = replace(
        plan,
        metric=fit.metric,
        metrics=dict(fit.metrics),
        ece=ece,
        train_seconds=fit.seconds,
        retrained_without=dict(fit.retrained_without),
        warnings=(),
    )
    return TrainedRow(row, "cpu", [], None, baseline=fit)


def _robustness(prepared: Prepared, result: TrainResult, fields: Sequence[str]) -> list[Curve]:
    """Every robustness curve of a row on the held-out rows (one encoding pass). A unimodal row's
    all-fields curves are its field's own, so its all-fields area is the baseline a fusion's
    is read against."""
    if prepared.tensors.target is None:
        return []
    _, rows = prepared.split.held_out()
    idx = torch.as_tensor(rows, dtype=torch.long)
    tensors = prepared.tensors.select(list(fields))  # a unimodal model sees its field only
    return robustness_curves(result.trained, tensors, idx, seed=prepared.config.train.seed)


def _all_fields_area(curves: Sequence[Curve]) -> float | None:
    every = relative_robustness([c for c in curves if c.field == ALL_FIELDS])
    return every.get(ALL_FIELDS)


def _with_effective_robustness(rows: list[CompareRow], curves: Mapping[str, list[Curve]]) -> list[CompareRow]:
    """Each fusion row's effective robustness against the `late` row (every field at once);
    unimodal rows perturb fewer fields than `late` does, so they get none."""
    late = curves.get("late")
    if not late:
        return rows
    return [
        replace(row, effective_robustness=effective_robustness(curves[row.name], late).get(ALL_FIELDS))
        if row.ok and row.kind == "fusion" and curves.get(row.name)
        else row
        for row in rows
    ]


def _with_fusion(config: Config, fusion: str) -> Config:
    """The config with model.fusion replaced; fusion_options belong to the configured fusion only."""
    if fusion == config.model.fusion:
        return config
    return config.with_overrides(model={"fusion": fusion, "fusion_options": {}})


def _measured(
    prepared: Prepared, plan: CompareRow, result: TrainResult, *, latency: bool = True
) -> CompareRow:
    trained = result.trained
    report = trained.metrics
    metric_name = trained.task.headline_metric
    tensors = prepared.tensors.select(list(plan.fields))
    _, held_out = prepared.split.held_out()
    rows = torch.as_tensor(held_out, dtype=torch.long)
    ece = None
    if trained.task.is_classification and tensors.target is not None:
        outputs = run_model(trained.model, tensors, rows)
        ece = expected_calibration_error(outputs.output, tensors.target[rows])
    timing = measure_latency(trained.model, tensors, rows) if latency else None
    return CompareRow(
        name=plan.name,
        kind=plan.kind,
        fusion=plan.fusion,
        fields=plan.fields,
        metric=float(report["metrics"][metric_name]),
        metrics=dict(report["metrics"]),
        ece=ece,
        parameters=sum(p.numel() for p in trained.model.parameters()),
        train_seconds=float(report["training"]["seconds"]),
        epochs_run=int(report["training"]["epochs_run"]),
        latency_ms=None if timing is None else timing.batched_ms,
        latency_single_ms=None if timing is None else timing.single_ms,
        without_field={f: float(m[metric_name]) for f, m in report["without_field"].items()},
        grad_share=dict(report["balance"].get("grad_share", {})),
        warnings=tuple(report["balance"].get("warnings", ())),
        bundle=result.bundle_path,
    )


def outcome(row: CompareRow, task: Task) -> str:
    if not row.ok:
        return f"FAILED — {row.error}"
    name = task.headline_metric
    ece = "" if row.ece is None else f", ECE {row.ece:.3f}"
    return f"{name} {row.metric:.4f}{ece} in {row.train_seconds:.1f} s"
