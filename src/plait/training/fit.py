"""`train(config)`: table → checks → split → fit preprocessing on train → tensors → Lightning → evaluation."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import polars as pl
import torch

from plait.align.fields import fields_for
from plait.build import build_modalities, build_modality, build_model, check_config
from plait.bundle import TaskInfo, TrainedModel, bundle_content_id, save_bundle
from plait.config import Config
from plait.data.dataset import LoadReport, TensorTable, load_table
from plait.data.frames import to_polars
from plait.data.leaks import LeakError, LeakReport
from plait.data.split import Split
from plait.data.split_plan import make_split, plan_split
from plait.data.table import LabelInfo, check_columns, infer_task_type, prepare_labels, read_table
from plait.errors import ConfigError, DataError
from plait.evaluation.evaluate import evaluate_tensors
from plait.evaluation.full import full_evaluation
from plait.evaluation.rows import selection_text
from plait.evaluation.run import EVALUATION_JSON, write_report
from plait.evaluation.subset_temperatures import fit_subset_temperatures
from plait.modalities.base import ROW_COLUMN, Modality
from plait.modalities.contract import file_columns
from plait.provenance.fingerprint import FilesFingerprint, fingerprint_files, fingerprint_table
from plait.provenance.record import collect_provenance
from plait.training.balance import balance_report
from plait.training.checkpoint import Checkpoints
from plait.training.checks import check_leaks_and_copies, without_empty_fields
from plait.training.stages import Say, fit_stages


@dataclass(frozen=True)
class TrainResult:
    trained: TrainedModel
    load_report: LoadReport
    split: Split
    seconds: float
    bundle_path: Path | None
    report: dict[str, Any] | None = None  # the full evaluation written into the bundle, when asked


@dataclass(frozen=True)
class Prepared:
    """Everything training needs that does not depend on the model: the table read, checked,
    split, preprocessing fitted on the training rows and every row loaded as tensors once.
    `plait compare` trains many models from one."""

    config: Config  # with fields derived from the streams when the config left them out
    table: pl.DataFrame
    source: str  # the table's path, or "<table>"
    modalities: dict[str, Modality]  # fitted on the training rows
    tensors: TensorTable
    load_report: LoadReport
    split: Split
    task: TaskInfo
    media: FilesFingerprint | None  # fingerprints of every media file, for provenance
    seconds: float
    leaks: LeakReport = field(default_factory=lambda: LeakReport(findings=()))  # found, and accepted


def train(
    config: Config,
    *,
    table: pl.DataFrame | None = None,
    out: Path | str | None = None,
    say: Say | None = None,
    report: bool = False,
    checkpoints: Path | str | None = None,
    resume: bool = False,
) -> TrainResult:
    """Train the model `config` describes; write a bundle to `out` when given, with the full
    evaluation report (report.html, evaluation.json) of the held-out rows in it when `report`.
    With `checkpoints` (a folder), every epoch is saved there; with `resume`, a run that was killed
    goes on from its last epoch and ends as the uninterrupted run would (training/checkpoint.py).
    The folder is removed once the bundle is written."""
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
    if not report or result.bundle_path is None:
        return result
    return replace(result, report=_bundle_report(prepared, result, say or (lambda _msg: None)))


def _bundle_report(prepared: Prepared, result: TrainResult, tell: Say) -> dict[str, Any]:
    """The full evaluation of the held-out rows, written into the bundle (report.html, evaluation.json)."""
    assert result.bundle_path is not None
    held_out, rows = result.split.held_out()
    data = full_evaluation(
        result.trained,
        prepared.tensors,
        rows,
        source=prepared.source,
        selection=selection_text(held_out, result.split),
        progress=prepared.config.train.progress,
        say=tell,
    )
    _, html = write_report(data, result.bundle_path, json_name=EVALUATION_JSON)
    tell(f"report: {html}")
    return data


@dataclass(frozen=True)
class TrainingTable:
    """The table read and checked for training: the config (fields derived from the streams when
    it had none), the rows, where they came from, and the labels as targets."""

    config: Config
    table: pl.DataFrame
    source: str
    labels: LabelInfo


def read_training_table(
    config: Config, *, table: pl.DataFrame | None = None, say: Say | None = None
) -> TrainingTable:
    """Read the table, derive a streams config's fields, check the columns, encode the labels."""
    tell: Say = say or (lambda _msg: None)
    check_config(config, paths=table is None)  # names and options fail now, not after loading the rows
    source = str(config.table_path()) if table is None else "<table>"
    if table is None and config.streams is not None and not config.table_path().is_file():
        raise DataError(
            f"{config.table_path()} does not exist yet: this config reads raw streams; "
            "run `plait align CONFIG` first to write the sample table"
        )
    df = read_table(config.table_path()) if table is None else to_polars(table, "train(table=...)")
    if not config.fields:
        if config.streams is None:
            raise ConfigError("fields: missing; list the model's inputs")
        config = config.with_overrides(fields=fields_for(config.streams, df))
    if df.height == 0:
        raise DataError(f"{source} has no rows; training needs a table with labelled rows")
    columns = {spec.name: build_modality(spec).columns() for spec in config.fields}
    check_columns(df, config.task.label, columns, source)
    reading = [name for name, cols in columns.items() if config.task.label in cols]
    if reading:
        raise LeakError(
            f"fields.{reading[0]} reads the label column '{config.task.label}' as an input: the model "
            "would be handed the answer; remove it from the field's columns"
        )
    task_type = infer_task_type(df.get_column(config.task.label), config.task.type)
    labels = prepare_labels(df, config.task.label, task_type, source)
    if labels.missing_rows:
        rows = ", ".join(str(r) for r in labels.missing_rows[:5])
        tell(f"{len(labels.missing_rows)} rows have no label (rows {rows}…); they are not used for training")
    return TrainingTable(config=config, table=df, source=source, labels=labels)


def prepare(
    config: Config,
    *,
    table: pl.DataFrame | TrainingTable | None = None,
    say: Say | None = None,
    split: Split | None = None,
) -> Prepared:
    """Read, check and split the table, fit preprocessing on the training rows, load every row.
    `table` may be one read already (cross-validation reads it once); `split` replaces the
    config's split (one fold)."""
    start = time.perf_counter()
    tell: Say = say or (lambda _msg: None)
    read = table if isinstance(table, TrainingTable) else read_training_table(config, table=table, say=tell)
    config, df, source, labels = read.config, read.table, read.source, read.labels
    root = config.media_root()
    L.seed_everything(config.train.seed, workers=True, verbose=False)
    modalities = build_modalities(config)
    split = make_split(plan_split(config), df, labels, source) if split is None else split
    tell(f"{len(df)} rows, {split.describe()}")
    leaks = check_leaks_and_copies(config, df, labels, split, modalities, tell)
    task = _task(config, labels, split)

    train_df = df.with_row_index(ROW_COLUMN)[split.train.tolist()]
    for modality in modalities.values():
        modality.fit(train_df, root)
    target = _standardised(labels.target, task)
    tensors, report = load_table(df, modalities, root, target=target, progress=config.train.progress)
    for line in report.lines():
        tell(line)
    config, modalities, tensors = without_empty_fields(config, modalities, tensors, report, split, tell)
    media = _media_paths(df, modalities, root)
    return Prepared(
        config=config,
        table=df,
        source=source,
        modalities=modalities,
        tensors=tensors,
        load_report=report,
        split=split,
        task=task,
        media=fingerprint_files(media, root) if media else None,
        seconds=time.perf_counter() - start,
        leaks=leaks,
    )


def fit_prepared(
    prepared: Prepared,
    *,
    config: Config | None = None,
    fields: Sequence[str] | None = None,
    out: Path | str | None = None,
    say: Say | None = None,
    checkpoints: Checkpoints | None = None,
) -> TrainResult:
    """Train one model on prepared data. `config` may change the model and training sections
    (not the data, task or fields); `fields` trains on a subset of the fields (unimodal baselines)."""
    start = time.perf_counter()
    tell: Say = say or (lambda _msg: None)
    config = prepared.config if config is None else config
    modalities = prepared.modalities
    tensors = prepared.tensors
    if fields is not None:
        config = config.with_fields(fields)  # rejects an empty or unknown subset
        modalities = {f: modalities[f] for f in fields}
        tensors = tensors.select(list(fields))
    split, task = prepared.split, prepared.task
    L.seed_everything(config.train.seed, workers=True, verbose=False)
    torch.manual_seed(config.train.seed)
    model = build_model(config, modalities, task.n_outputs)
    fitted = fit_stages(config, model, task, tensors, split, tell, checkpoints)
    trained_model = TrainedModel(
        config=config, task=task, modalities=modalities, model=model, split=split.to_json()
    )
    held_out, held_out_rows = split.held_out()
    if held_out == "train":
        tell("no validation or test rows: the metrics below are on the TRAINING rows and say little")
    evaluation = evaluate_tensors(trained_model, tensors, held_out_rows)
    balance = balance_report(
        model,
        fitted.probes,
        tensors,
        held_out=held_out_rows,
        train_rows=split.train,
        task_type=task.type,
        share_history=fitted.shares,
        evaluation=evaluation,
        mitigation={"aux_loss": config.train.aux_loss, "ogm_ge": config.train.ogm_ge},
    )
    for warning in balance.warnings:
        tell(f"warning: {warning}")
    calibration = None  # regression, or no validation rows to fit temperatures on
    if task.type == "classification" and len(split.val) > 0:
        calibration = fit_subset_temperatures(model, tensors, split.val, list(modalities))
        trained_model = replace(trained_model, calibration=calibration)
        tell(calibration.summary())
    metrics: dict[str, Any] = {
        "split": held_out,
        "metrics": evaluation.metrics,
        "single_field": evaluation.single_field,
        "without_field": evaluation.without_field,
        "interval": evaluation.interval,
        "confusion_matrix": evaluation.confusion,
        "balance": balance.to_json(),
        "load_report": prepared.load_report.to_json(),
        "leak_check": prepared.leaks.to_json(),
        "training": {
            "best_epoch": fitted.stages[-1]["best_epoch"],
            "epochs_run": len(fitted.history),
            "best_val_loss": fitted.stages[-1]["best_val_loss"],
            "seconds": round(fitted.seconds, 3),
            "stages": fitted.stages,
            "history": fitted.history,
        },
        **({} if calibration is None else {"calibration": calibration.to_json()}),
    }
    provenance = collect_provenance(
        config_text=config.to_yaml(),
        table=prepared.table,
        table_path=prepared.source,
        seed=config.train.seed,
        split_sizes=split.sizes(),
        media=prepared.media,
    ).to_json()
    trained = replace(trained_model, metrics=metrics, provenance=provenance)
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


def _task(config: Config, labels: LabelInfo, split: Split) -> TaskInfo:
    """Regression targets are standardised with statistics of the TRAINING rows only."""
    mean, std = 0.0, 1.0
    if labels.task_type == "regression":
        train_values = labels.target[split.train]
        mean, std = float(train_values.mean()), float(train_values.std())
        if not std > 0.0:  # constant on the training rows: nothing to scale by
            std = 1.0
    return TaskInfo(
        type=labels.task_type,
        label=config.task.label,
        classes=tuple(labels.classes),
        target_mean=mean,
        target_std=std,
    )


def _standardised(target: np.ndarray, task: TaskInfo) -> np.ndarray:
    if task.type == "classification":
        return target.astype(np.int64)
    return ((target - task.target_mean) / task.target_std).astype(np.float32)


def _media_paths(df: pl.DataFrame, modalities: dict[str, Modality], root: Path) -> list[Path]:
    """Every file the table references through a media field (for the provenance fingerprint)."""
    paths: list[Path] = []
    for modality in modalities.values():
        for column in file_columns(modality):  # the modality says which columns name files
            series = df[column]
            if series.dtype != pl.Utf8:
                continue
            for value in series.drop_nulls().to_list():
                if value.strip():
                    candidate = (root / value).resolve()
                    if candidate.is_relative_to(root.resolve()):
                        paths.append(candidate)
    return paths
