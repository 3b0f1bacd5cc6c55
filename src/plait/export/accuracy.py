"""The accuracy of an export per subset of fields, on labelled rows: torch against the fp32 graph
and (when the export has one) the int8 graph.

`accuracy_by_subset(trained, folder, "table.parquet")` reads the table as `plait evaluate` does —
the held-out test rows when it is the table the bundle was trained on, else every labelled row —
and hands back one `SubsetCheck` per subset of fields (plait.export.check).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl

from plait.bundle import TrainedModel
from plait.evaluation.evaluate import model_tensors, read_labelled
from plait.evaluation.rows import choose_rows
from plait.export.check import SubsetCheck, check_on_table
from plait.export.manifest import INT8_FILE, read_manifest
from plait.export.session import OnnxModel


@dataclass(frozen=True)
class SubsetAccuracy:
    selection: str  # which rows, for people (as `plait evaluate` says it)
    metric: str  # the task's headline metric: accuracy, rmse
    subsets: tuple[SubsetCheck, ...]


def accuracy_by_subset(
    trained: TrainedModel,
    folder: Path,
    data: Path | str | pl.DataFrame,
    *,
    root: Path | None = None,
    rows: str = "auto",
    threads: int | None = None,
) -> SubsetAccuracy:
    """Every subset of fields on the chosen rows of `data` (see the module doc)."""
    manifest = read_manifest(folder)
    manifest.require_model(trained.model_id, folder)
    graphs = {"fp32": OnnxModel.load(folder, threads=threads)}
    if any(f.name == INT8_FILE for f in manifest.files):
        graphs["int8"] = OnnxModel.load(folder, int8=True, threads=threads)
    table = read_labelled(trained, data, root)
    choice = choose_rows(trained, table.df, table.target, table.valid, table.source, rows)
    tensors, _ = model_tensors(trained, table.df, table.target, table.root)
    checks = check_on_table(trained.model, trained.task, graphs, tensors, choice.rows)
    return SubsetAccuracy(choice.selection, trained.task.headline_metric, tuple(checks))
