"""Evaluate a trained model on a table: task metrics on all fields, and with each field alone
(every other field marked absent through the presence mask — no retraining)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import torch
from torch import Tensor

from plait.bundle import TaskInfo, TrainedModel
from plait.data.dataset import LoadReport, TensorTable, load_table
from plait.data.table import check_columns, read_table
from plait.errors import DataError
from plait.evaluation.metrics import classification_metrics, regression_metrics
from plait.models.inference import only_fields, run_model


@dataclass(frozen=True)
class Evaluation:
    metrics: dict[str, float]
    single_field: dict[str, dict[str, float]]  # field → metrics with only that field present
    rows: int
    load_report: LoadReport | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"rows": self.rows, "metrics": self.metrics, "single_field": self.single_field}
        if self.load_report is not None:
            out["load_report"] = self.load_report.to_json()
        return out


def task_metrics(output: Tensor, target: Tensor, task: TaskInfo) -> dict[str, float]:
    if task.type == "classification":
        return classification_metrics(output, target)
    scale = lambda x: x.float().reshape(-1) * task.target_std + task.target_mean  # noqa: E731
    return regression_metrics(scale(output), scale(target))


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
    full = run_model(trained.model, tensors, idx)
    single = {
        name: task_metrics(
            run_model(trained.model, tensors, idx, edit_present=only_fields([name])).output,
            target,
            trained.task,
        )
        for name in trained.modalities
    }
    return Evaluation(
        metrics=task_metrics(full.output, target, trained.task), single_field=single, rows=len(idx)
    )


def evaluate(
    trained: TrainedModel, data: Path | str | pl.DataFrame, *, root: Path | None = None
) -> Evaluation:
    """Metrics of `trained` on a labelled table (a path, or a DataFrame with `root` for its media)."""
    if isinstance(data, pl.DataFrame):
        df, source, media_root = data, "<table>", root or Path.cwd()
    else:
        source = str(data)
        df, media_root = read_table(data), root or Path(data).parent
    check_columns(df, trained.task.label, {n: m.columns() for n, m in trained.modalities.items()}, source)
    valid = _has_label(df[trained.task.label])
    if not valid.any():
        raise DataError(
            f"{source}: column '{trained.task.label}' has no labels; evaluation needs labelled rows"
        )
    target = _target_for(trained.task, df, valid, source)
    rows = np.flatnonzero(valid)
    tensors, report = load_table(df, trained.modalities, media_root, target=target)
    result = evaluate_tensors(trained, tensors, rows)
    return Evaluation(
        metrics=result.metrics, single_field=result.single_field, rows=len(rows), load_report=report
    )


def _target_for(task: TaskInfo, df: pl.DataFrame, valid: np.ndarray, source: str) -> np.ndarray:
    """Targets in the TRAINED model's encoding (its class list, its scale)."""
    values = df[task.label]
    if task.type == "regression":
        numbers = values.cast(pl.Float64, strict=False).to_numpy()
        return ((np.nan_to_num(numbers) - task.target_mean) / task.target_std).astype(np.float32)
    index = {c: i for i, c in enumerate(task.classes)}
    labels = [None if v is None else str(v) for v in values.to_list()]
    unknown = sorted(
        {v for v, ok in zip(labels, valid, strict=True) if ok and v is not None and v not in index}
    )
    if unknown:
        raise DataError(
            f"{source}: column '{task.label}' has classes the model was not trained on: "
            f"{', '.join(unknown[:10])}; the model knows {', '.join(task.classes)}"
        )
    return np.array([index.get(v, 0) if v is not None else 0 for v in labels], dtype=np.int64)


def _has_label(values: pl.Series) -> np.ndarray:
    """Rows whose label is there (a test table may hold a single class, so no class checks here)."""
    out = []
    for v in values.to_list():
        missing = (
            v is None
            or (isinstance(v, float) and not np.isfinite(v))
            or (isinstance(v, str) and not v.strip())
        )
        out.append(not missing)
    return np.array(out, dtype=bool)
