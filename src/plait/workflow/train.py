"""`train(config)`: what `plait train` does — prepare and train (plait.training), then evaluate the
held-out rows, calibrate, write the metrics and the report, and save the bundle (plait.evaluation,
plait.bundle). `fit_prepared` is the same for data prepared once (`plait compare` trains many
models from one `Prepared`)."""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from plait.baseline.boosting import BoostingResult, fit_boosting
from plait.baseline.features import summary_table
from plait.bundle import TrainedModel, bundle_content_id, save_bundle
from plait.config import Config
from plait.data.dataset import LoadReport, TensorTable
from plait.data.split import Split
from plait.evaluation.balance import BalanceReport
from plait.evaluation.evaluate import Evaluation, evaluate_tensors
from plait.evaluation.full import full_evaluation
from plait.evaluation.result import EvaluationReport
from plait.evaluation.rows import selection_text
from plait.evaluation.space import SpaceEvaluation, evaluate_space
from plait.evaluation.subset_temperatures import fit_subset_temperatures
from plait.models.calibration import SubsetTemperatures
from plait.provenance.fingerprint import fingerprint_table
from plait.provenance.record import collect_provenance
from plait.training.checkpoint import Checkpoints
from plait.training.fit import FitResult, Prepared, fit_model, prepare
from plait.training.stages import Say
from plait.workflow.balance import balance_report
from plait.workflow.evaluate import EVALUATION_JSON, write_report


@dataclass(frozen=True)
class TrainResult:
    trained: TrainedModel  # evaluated and calibrated: metrics, provenance (and calibration) filled in
    load_report: LoadReport
    split: Split
    seconds: float
    bundle_path: Path | None
    report: EvaluationReport | None = None  # the full evaluation written into the bundle, when asked
    boosting: BoostingResult | None = None  # gradient boosting on the same split, when asked


def train(
    config: Config,
    *,
    table: pl.DataFrame | None = None,
    out: Path | str | None = None,
    say: Say | None = None,
    report: bool = False,
    checkpoints: Path | str | None = None,
    resume: bool = False,
    boosting: bool = False,
) -> TrainResult:
    """Train the model `config` describes; write a bundle to `out` when given, with the full
    evaluation report (report.html, evaluation.json) of the held-out rows in it when `report`.
    With `checkpoints` (a folder), every epoch is saved there; with `resume`, a run that was killed
    goes on from its last epoch and ends as the uninterrupted run would (training/checkpoint.py).
    The folder is removed once the bundle is written. With `boosting`, gradient boosting on the
    fields' summary features is fitted on the same split (and retrained without each field), for
    the report and the terminal to show beside the model."""
    prepared = prepare(config, table=table, say=say)
    saved = None
    if checkpoints is not None:
        fingerprint = Checkpoints.fingerprint_of(
            prepared.config.to_yaml(), fingerprint_table(prepared.table), json.dumps(prepared.split.to_json())
        )
        saved = Checkpoints(Path(checkpoints), fingerprint, resume=resume)
    result = fit_prepared(prepared, out=out, say=say, checkpoints=saved)
    if saved is not None and result.bundle_path is not None:
        saved.remove()
    if boosting and prepared.task.predicts:
        result = replace(result, boosting=_boosting(prepared, say or (lambda _msg: None)))
    if not report or result.bundle_path is None:
        return result
    if not prepared.task.predicts:
        return replace(result, report=_space_report(prepared, result, say or (lambda _msg: None)))
    return replace(result, report=_bundle_report(prepared, result, say or (lambda _msg: None)))


def _boosting(prepared: Prepared, tell: Say) -> BoostingResult:
    assert prepared.tensors.target is not None  # training tables are labelled
    tell("fitting the boosting baseline on summary features (and without each field)…")
    fit = fit_boosting(
        summary_table(prepared.modalities, prepared.tensors),
        prepared.tensors.target,
        prepared.split,
        prepared.task,
        seed=prepared.config.train.seed,
    )
    tell(f"boosting baseline: {prepared.task.headline_metric} {fit.metric:.4f} in {fit.seconds:.1f} s")
    return fit


def fit_prepared(
    prepared: Prepared,
    *,
    config: Config | None = None,
    fields: Sequence[str] | None = None,
    out: Path | str | None = None,
    say: Say | None = None,
    checkpoints: Checkpoints | None = None,
) -> TrainResult:
    """Train one model on prepared data (`plait.training.fit.fit_model`: `config` may change the
    model and training sections, `fields` trains on a subset of the fields), then evaluate it on
    the held-out rows, calibrate it on the validation rows, and save it to `out` when given."""
    start = time.perf_counter()
    tell: Say = say or (lambda _msg: None)
    fit = fit_model(prepared, config=config, fields=fields, say=tell, checkpoints=checkpoints)
    trained, split = fit.trained, prepared.split
    held_out, held_out_rows = split.held_out()
    if held_out == "train":
        tell("no validation or test rows: the metrics below are on the TRAINING rows and say little")
    if not trained.task.predicts:  # a shared space without labels: retrieval is what there is to measure
        return _space_only(prepared, fit, held_out, held_out_rows, out, start)
    evaluation = evaluate_tensors(trained, fit.tensors, held_out_rows)
    balance = balance_report(
        trained.model,
        fit.fitted.probes,
        fit.tensors,
        held_out=held_out_rows,
        train_rows=split.train,
        task=trained.task,
        share_history=fit.fitted.shares,
        evaluation=evaluation,
        mitigation={"aux_loss": trained.config.train.aux_loss, "ogm_ge": trained.config.train.ogm_ge},
    )
    for warning in balance.warnings:
        tell(f"warning: {warning}")
    calibration = _calibrate(trained, fit.tensors, split)
    if calibration is not None:
        trained = replace(trained, calibration=calibration)
        tell(calibration.summary())
    metrics = _metrics(prepared, fit, held_out, evaluation, balance, calibration)
    if fit.members:
        metrics["ensemble"] = _members(trained, fit, held_out_rows, evaluation)
        tell(_ensemble_line(metrics["ensemble"]))
    return _finish(prepared, trained, metrics, out, start)


def _finish(
    prepared: Prepared, trained: TrainedModel, metrics: dict[str, Any], out: Path | str | None, start: float
) -> TrainResult:
    """The trained model with its metrics and provenance, saved to `out` when given."""
    split = prepared.split
    provenance = collect_provenance(
        config_text=trained.config.to_yaml(),
        table=prepared.table,
        table_path=prepared.source,
        seed=trained.config.train.seed,
        split_sizes=split.sizes(),
        media=prepared.media,
    ).to_json()
    trained = replace(trained, metrics=metrics, provenance=provenance)
    bundle_path = None
    if out is not None:
        bundle_path = save_bundle(trained, out)
        trained = replace(trained, model_id=bundle_content_id(bundle_path))
    return TrainResult(
        trained=trained,
        load_report=prepared.load_report,
        split=split,
        seconds=prepared.seconds + time.perf_counter() - start,
        bundle_path=bundle_path,
    )


def _training_record(fit: FitResult) -> dict[str, Any]:
    """metrics.json's `training`: the stages, the history, and the imputer's fit."""
    fitted = fit.fitted
    return {
        "best_epoch": fitted.stages[-1]["best_epoch"],
        "epochs_run": len(fitted.history),
        "best_val_loss": fitted.stages[-1]["best_val_loss"],
        "seconds": round(fitted.seconds, 3),
        "stages": fitted.stages,
        "history": fitted.history,
        **({} if fitted.imputer is None else {"imputer": fitted.imputer.to_json()}),
    }


def _space_only(
    prepared: Prepared, fit: FitResult, held_out: str, rows: np.ndarray, out: Path | str | None, start: float
) -> TrainResult:
    """A label-free shared space: its retrieval on the held-out rows, the training record,
    provenance, and the bundle when `out` is given."""
    trained = fit.trained
    space = evaluate_space(trained, fit.tensors, rows)
    metrics: dict[str, Any] = {
        "split": held_out,
        "metrics": {},
        **({} if space is None else {"space": space.to_json()}),
        "load_report": prepared.load_report.to_json(),
        "training": _training_record(fit),
    }
    return _finish(prepared, trained, metrics, out, start)


def _members(
    trained: TrainedModel, fit: FitResult, rows: np.ndarray, evaluation: Evaluation
) -> dict[str, Any]:
    """metrics.json's `ensemble`: each member's headline metric on the held-out rows (uncalibrated,
    as the ensemble's own figure is), their mean ± std, and the ensemble's."""
    name = trained.task.headline_metric
    seed = trained.config.train.seed
    scores = [
        float(evaluate_tensors(replace(trained, model=m), fit.tensors, rows).metrics[name])
        for m in fit.members
    ]
    mean, std = statistics.mean(scores), statistics.stdev(scores)  # an ensemble has ≥ 2 members
    return {
        "members": len(scores),
        "seeds": [seed + i for i in range(len(scores))],
        "metric": name,
        "member_metrics": [round(v, 6) for v in scores],
        "member_mean": round(mean, 6),
        "member_std": round(std, 6),
        "ensemble": float(evaluation.metrics[name]),
    }


def _ensemble_line(record: dict[str, Any]) -> str:
    return (
        f"ensemble of {record['members']} (seeds {record['seeds'][0]}…{record['seeds'][-1]}): "
        f"{record['metric']} {record['ensemble']:.4f}; members {record['member_mean']:.4f} ± "
        f"{record['member_std']:.4f}"
    )


def _calibrate(trained: TrainedModel, tensors: TensorTable, split: Split) -> SubsetTemperatures | None:
    """Temperatures per subset of fields, fitted on the validation rows; None for a regression, or
    without validation rows to fit them on."""
    if not trained.task.is_classification or len(split.val) == 0:
        return None
    return fit_subset_temperatures(trained.model, tensors, split.val, list(trained.modalities))


def _metrics(
    prepared: Prepared,
    fit: FitResult,
    held_out: str,
    evaluation: Evaluation,
    balance: BalanceReport,
    calibration: SubsetTemperatures | None,
) -> dict[str, Any]:
    """metrics.json: the held-out evaluation, balance, the data checks and the training record."""
    return {
        "split": held_out,
        "metrics": evaluation.metrics,
        "single_field": evaluation.single_field,
        "without_field": evaluation.without_field,
        "interval": evaluation.interval,
        "confusion_matrix": evaluation.confusion,
        "balance": balance.to_json(),
        "load_report": prepared.load_report.to_json(),
        "leak_check": prepared.leaks.to_json(),
        "training": _training_record(fit),
        **({} if calibration is None else {"calibration": calibration.to_json()}),
        **({} if evaluation.space is None else {"space": evaluation.space.to_json()}),
    }


def _space_report(prepared: Prepared, result: TrainResult, tell: Say) -> EvaluationReport:
    """A label-free bundle's report: the shared space's retrieval on the held-out rows only."""
    from datetime import UTC, datetime

    from plait import __version__
    from plait.evaluation.result import FieldKind, RowSelection

    assert result.bundle_path is not None
    trained = result.trained
    held_out, rows = result.split.held_out()
    raw = trained.metrics.get("space")
    data = EvaluationReport(
        model_id=trained.model_id,
        plait_version=__version__,
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        data=RowSelection(prepared.source, len(rows), selection_text(held_out, result.split)),
        fields=tuple(FieldKind(n, m.kind) for n, m in trained.modalities.items()),
        fusion=trained.config.model.fusion,
        space=None if raw is None else SpaceEvaluation.from_json(raw),
    )
    _, html = write_report(data, result.bundle_path, json_name=EVALUATION_JSON)
    tell(f"report: {html}")
    return data


def _bundle_report(prepared: Prepared, result: TrainResult, tell: Say) -> EvaluationReport:
    """The full evaluation of the held-out rows, written into the bundle (report.html, evaluation.json)."""
    assert result.bundle_path is not None
    held_out, rows = result.split.held_out()
    raw_space = result.trained.metrics.get("space")
    data = full_evaluation(
        result.trained,
        prepared.tensors,
        rows,
        source=prepared.source,
        selection=selection_text(held_out, result.split),
        progress=prepared.config.train.progress,
        say=tell,
        boosting=result.boosting,
        space=None if raw_space is None else SpaceEvaluation.from_json(raw_space),  # measured in training
    )
    _, html = write_report(data, result.bundle_path, json_name=EVALUATION_JSON)
    tell(f"report: {html}")
    return data
