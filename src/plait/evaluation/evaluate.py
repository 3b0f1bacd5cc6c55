"""Evaluate a trained model on a table: task metrics on all fields, with each field alone and
with each field removed (fields marked absent through the presence mask — no retraining).

The rows scored are those `plait evaluate` scores (`choose_rows`): the held-out test rows of the
table the model was trained on, every labelled row of any other table."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl
import torch
from torch import Tensor

from plait.bundle import TrainedModel
from plait.data.dataset import LoadReport, TensorTable, load_table
from plait.data.frames import table_or_path
from plait.data.table import check_columns, encode_labels, read_table
from plait.errors import DataError
from plait.evaluation.metrics import bootstrap_interval, confusion_matrix
from plait.evaluation.rows import choose_rows
from plait.evaluation.space import SpaceEvaluation, evaluate_space
from plait.models.inference import run_model_subsets
from plait.task import Task

if TYPE_CHECKING:
    from plait.data.frames import DataFrame

ALL = "__all__"
_COLUMNS_LISTED = 30


@dataclass(frozen=True)
class Evaluation:
    metrics: dict[str, float]
    single_field: dict[str, dict[str, float]]  # field → metrics with only that field present
    rows: int
    load_report: LoadReport | None = None
    without_field: dict[str, dict[str, float]] = field(default_factory=dict)  # field → metrics without it
    interval: dict[str, Any] = field(default_factory=dict)  # headline metric's bootstrap 95 % interval
    confusion: list[list[int]] | None = None  # classification: counts[true][predicted], class order
    selection: str = ""  # which rows were scored and why (`choose_rows`); "" when the caller chose
    space: SpaceEvaluation | None = None  # retrieval (and zero-shot) in the shared space, when it has one

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "rows": self.rows,
            "selection": self.selection,
            "metrics": self.metrics,
            "single_field": self.single_field,
            "without_field": self.without_field,
            "interval": self.interval,
        }
        if self.confusion is not None:
            out["confusion_matrix"] = self.confusion
        if self.load_report is not None:
            out["load_report"] = self.load_report.to_json()
        if self.space is not None:
            out["space"] = self.space.to_json()
        return out


def evaluate_tensors(
    trained: TrainedModel, tensors: TensorTable, indices: Sequence[int] | np.ndarray | None = None
) -> Evaluation:
    if tensors.target is None:
        raise ValueError("evaluate_tensors needs targets")
    idx = (
        torch.arange(len(tensors))
        if indices is None
        else torch.as_tensor(np.asarray(indices), dtype=torch.long)
    )
    target = tensors.target[idx]
    names = list(trained.modalities)
    outputs = run_model_subsets(trained.model, tensors, idx, ablation_subsets(names))
    metrics = {key: trained.task.metrics(out.output, target) for key, out in outputs.items()}
    headline = trained.task.headline_metric
    without = {name: metrics[f"without:{name}"][headline] for name in names if f"without:{name}" in metrics}
    return Evaluation(
        metrics=metrics[ALL],
        single_field={name: metrics[f"only:{name}"] for name in names},
        rows=len(idx),
        without_field={name: metrics[f"without:{name}"] for name in names if f"without:{name}" in metrics},
        interval=headline_interval(outputs[ALL].output, target, trained.task),
        confusion=confusion_matrix(outputs[ALL].output, target) if trained.task.is_classification else None,
        space=evaluate_space(trained, tensors, idx.numpy(), without),
    )


def ablation_subsets(names: Sequence[str]) -> dict[str, Sequence[str] | None]:
    """ALL (every present field, None), "only:F" per field and, with ≥ 2 fields, "without:F"."""
    subsets: dict[str, Sequence[str] | None] = {ALL: None}
    subsets.update({f"only:{name}": [name] for name in names})
    if len(names) > 1:
        subsets.update({f"without:{name}": [n for n in names if n != name] for name in names})
    return subsets


def headline_interval(output: Tensor, target: Tensor, task: Task) -> dict[str, Any]:
    """The headline metric's bootstrap interval, in the target's own units."""
    output, target = task.to_target_units(output), task.to_target_units(target)
    low, high = bootstrap_interval(output, target, task)
    return {"metric": task.headline_metric, "low": round(low, 6), "high": round(high, 6), "level": 0.95}


def evaluate(
    trained: TrainedModel,
    data: Path | str | DataFrame,
    *,
    root: Path | None = None,
    rows: str = "auto",
) -> Evaluation:
    """Metrics of `trained` on a labelled table (a path, or a polars or pandas DataFrame with `root`
    for its media). `rows` as `plait evaluate --rows`: auto, all, test or val."""
    table = read_labelled(trained, data, root)
    choice = choose_rows(trained, table.df, table.target, table.valid, table.source, rows)
    tensors, report = model_tensors(trained, table.df, table.target, table.root)
    result = evaluate_tensors(trained, tensors, choice.rows)
    return replace(result, load_report=report, selection=choice.selection)


@dataclass(frozen=True)
class Labelled:
    """A table read and checked against a trained model: targets in its class encoding."""

    df: pl.DataFrame
    source: str  # the path, or "<table>"
    root: Path  # the media root
    target: np.ndarray  # class indices (-1 unlabelled) or values in the target's units (NaN unlabelled)
    valid: np.ndarray  # bool: rows with a label


def read_labelled(trained: TrainedModel, data: Path | str | DataFrame, root: Path | None) -> Labelled:
    """Read `data` (a DataFrame uses `root` or the working directory as its media root), check that
    it has the label column and some field's columns, and encode its labels as the model does. A
    field without its columns is absent in every row (`load_table` counts it)."""
    given = table_or_path(data, "evaluate")
    if isinstance(given, pl.DataFrame):
        df, source, media_root = given, "<table>", root or Path.cwd()
    else:
        df, source, media_root = read_table(given), str(given), root or given.parent
    task = trained.task
    check_columns(df, task.label, {}, source)
    fields = {n: m.columns() for n, m in trained.modalities.items()}
    if not any(c in df.columns for columns in fields.values() for c in columns):
        wanted = "; ".join(f"{n}: {', '.join(repr(c) for c in columns)}" for n, columns in fields.items())
        listed = ", ".join(df.columns[:_COLUMNS_LISTED]) + ("…" if df.width > _COLUMNS_LISTED else "")
        raise DataError(
            f"table {source} has none of the columns the model's fields read ({wanted}); its columns: "
            f"{listed}; evaluate on a table with the columns the model was trained on"
        )
    target, valid = encode_labels(df, task, source)
    return Labelled(df, source, media_root, target, valid)


def model_tensors(
    trained: TrainedModel, df: pl.DataFrame, target: np.ndarray, root: Path
) -> tuple[TensorTable, LoadReport]:
    """Every row through the model's fields, with targets as the model trained on them
    (regression: standardised)."""
    target = trained.task.encode_targets(np.nan_to_num(target))  # no label: NaN -> 0, never used
    return load_table(df, trained.modalities, root, target=target)
