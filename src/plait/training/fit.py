"""Training only: `prepare(config)` (table → checks → split → preprocessing fitted on the training
rows → tensors), then `fit_model(prepared)` (Lightning) → a trained model. Evaluating,
calibrating, reporting and saving it is plait.workflow's job; nothing here imports evaluation."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import lightning as L
import polars as pl
import torch

from plait.align.fields import fields_for
from plait.build import build_modalities, build_modality, build_model, check_config
from plait.bundle import TrainedModel
from plait.config import Config
from plait.data.dataset import LoadReport, TensorTable, load_table
from plait.data.frames import to_polars
from plait.data.leaks import LeakError, LeakReport
from plait.data.split import Split
from plait.data.split_plan import make_split, plan_split
from plait.data.table import (
    LabelInfo,
    check_columns,
    infer_task_type,
    no_labels,
    prepare_labels,
    read_table,
)
from plait.errors import ConfigError, DataError
from plait.modalities.base import ROW_COLUMN, Modality
from plait.models.ensemble import ensemble_model, ensemble_probes
from plait.models.fusion_model import FusionModel
from plait.provenance.fingerprint import FilesFingerprint, fingerprint_files
from plait.provenance.media import media_paths
from plait.task import Task
from plait.training.checkpoint import Checkpoints
from plait.training.checks import check_leaks_and_copies, without_empty_fields
from plait.training.distributed import check_ranks_agree, is_distributed, part_processes
from plait.training.stages import Fitted, Say, fit_stages


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
    task: Task  # regression: standardised on the training rows
    media: FilesFingerprint | None  # fingerprints of every media file, for provenance
    seconds: float
    leaks: LeakReport = field(default_factory=lambda: LeakReport(findings=()))  # found, and accepted


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
    columns = {spec.name: build_modality(spec, base_dir=config.base_dir).columns() for spec in config.fields}
    if not config.labelled:  # a shared space alone: contrastive stages need no label
        check_columns(df, None, columns, source)
        return TrainingTable(config=config, table=df, source=source, labels=no_labels(df.height))
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
    contrastive = any(s.kind == "contrastive" for s in config.train.stages)
    split = (
        make_split(plan_split(config), df, labels, source, unlabelled=contrastive) if split is None else split
    )
    tell(f"{len(df)} rows, {split.describe()}")
    leaks = (
        check_leaks_and_copies(config, df, labels, split, modalities, tell)
        if config.labelled
        else LeakReport(())
    )
    task = _task(labels, split)

    train_df = df.with_row_index(ROW_COLUMN)[split.train.tolist()]
    for modality in modalities.values():
        modality.fit(train_df, root)
    target = task.encode_targets(labels.target)
    tensors, report = load_table(df, modalities, root, target=target, progress=config.train.progress)
    for line in report.lines():
        tell(line)
    config, modalities, tensors = without_empty_fields(config, modalities, tensors, report, split, tell)
    media = media_paths(df, modalities, root)
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


@dataclass(frozen=True)
class FitResult:
    """A model trained on prepared data — not yet evaluated, calibrated or saved (plait.workflow
    does that) — with what its training leaves behind."""

    trained: TrainedModel  # no metrics, provenance or calibration yet
    tensors: TensorTable  # the prepared rows, restricted to the model's fields
    fitted: Fitted  # the training record: field probes, history, stages, gradient shares
    seconds: float  # training only (preparation is `Prepared.seconds`)
    members: tuple[FusionModel, ...] = ()  # an ensemble's members (train.ensemble > 1), in seed order


def fit_model(
    prepared: Prepared,
    *,
    config: Config | None = None,
    fields: Sequence[str] | None = None,
    say: Say | None = None,
    checkpoints: Checkpoints | None = None,
) -> FitResult:
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
    members: tuple[FusionModel, ...] = ()
    if config.train.ensemble > 1:
        model, fitted, members = _fit_ensemble(config, modalities, task, tensors, split, tell, checkpoints)
    else:
        model, fitted = _fit_one(config, modalities, task, tensors, split, tell, checkpoints)
    if is_distributed(config.train):  # the model is trained: the main process goes on alone
        check_ranks_agree(torch.cat([p.detach().flatten() for p in model.parameters()]))
        part_processes()
    trained = TrainedModel(
        config=config, task=task, modalities=modalities, model=model, split=split.to_json()
    )
    return FitResult(
        trained=trained,
        tensors=tensors,
        fitted=fitted,
        seconds=time.perf_counter() - start,
        members=members,
    )


def _fit_one(
    config: Config,
    modalities: dict[str, Modality],
    task: Task,
    tensors: TensorTable,
    split: Split,
    tell: Say,
    checkpoints: Checkpoints | None,
) -> tuple[FusionModel, Fitted]:
    """One model, seeded with train.seed, built and trained through its stages."""
    L.seed_everything(config.train.seed, workers=True, verbose=False)
    torch.manual_seed(config.train.seed)
    model = build_model(config, modalities, task.n_outputs)
    return model, fit_stages(config, model, task, tensors, split, tell, checkpoints)


def _fit_ensemble(
    config: Config,
    modalities: dict[str, Modality],
    task: Task,
    tensors: TensorTable,
    split: Split,
    tell: Say,
    checkpoints: Checkpoints | None,
) -> tuple[FusionModel, Fitted, tuple[FusionModel, ...]]:
    """`train.ensemble` members, member i trained exactly as a one-model run with seed `seed + i`
    would be, assembled into one model; the training record holds every member's."""
    n, seed = config.train.ensemble, config.train.seed
    members, records = [], []
    for i in range(n):
        tell(f"ensemble member {i + 1}/{n} (seed {seed + i})…")
        member_config = config.with_overrides(train={"ensemble": 1, "seed": seed + i})
        saved = None if checkpoints is None else checkpoints.member(i)
        member, record = _fit_one(member_config, modalities, task, tensors, split, tell, saved)
        members.append(member)
        records.append(record)
    model = ensemble_model(members, classification=task.is_classification)
    fitted = Fitted(
        probes=ensemble_probes([r.probes for r in records], model),
        history=[{**row, "member": i} for i, r in enumerate(records) for row in r.history],
        stages=[{**stage, "member": i} for i, r in enumerate(records) for stage in r.stages],
        shares=[share for r in records for share in r.shares],
        seconds=sum(r.seconds for r in records),
    )
    return model, fitted, tuple(members)


def _task(labels: LabelInfo, split: Split) -> Task:
    """Regression targets are standardised with statistics of the TRAINING rows only."""
    return labels.task.standardised_on(labels.target[split.train])
