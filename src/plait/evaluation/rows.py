"""Which rows of a table an evaluation measures.

Evaluating a model on the rows it was trained on says little. When the table given is the very
table the bundle was trained on (same content fingerprint as its provenance), the split is
recomputed from the bundle's config — the split is a pure function of the labels, the seed, the
fractions and the split column — and only the held-out rows are used. Any other table is new data:
every labelled row counts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from plait.bundle import TrainedModel
from plait.data.split import Split
from plait.data.split_plan import make_split, plan_split
from plait.data.table import LabelInfo
from plait.errors import ConfigError, DataError
from plait.provenance.fingerprint import fingerprint_table
from plait.registry import unknown_name_message

CHOICES = ("auto", "all", "test", "val")


@dataclass(frozen=True)
class RowChoice:
    rows: np.ndarray  # sorted 0-based table rows
    selection: str  # for people: which rows and why


def training_split(
    trained: TrainedModel, df: pl.DataFrame, target: np.ndarray, valid: np.ndarray, source: str
) -> Split:
    """The split `trained` was trained with, recomputed on its training table `df`."""
    labels = LabelInfo(task=trained.task, target=target, valid=valid, missing_rows=())
    return make_split(plan_split(trained.config), df, labels, source)


def choose_rows(
    trained: TrainedModel,
    df: pl.DataFrame,
    target: np.ndarray,
    valid: np.ndarray,
    source: str,
    which: str = "auto",
) -> RowChoice:
    """auto: the held-out test rows when `df` is the training table, else every labelled row;
    all: every labelled row; test / val: that split of the training table (error on another table)."""
    if which not in CHOICES:
        raise ConfigError(f"--rows: {unknown_name_message('choice', which, list(CHOICES))}")
    labelled = np.flatnonzero(valid).astype(np.int64)
    same = trained.provenance.get("table_sha256") == fingerprint_table(df)
    if which == "all" or (which == "auto" and not same):
        why = "" if which == "all" else " (not the table this bundle was trained on)"
        if which == "auto" and df.height == trained.provenance.get("table_rows"):
            why += (
                f" — but it has as many rows as the training table ({df.height}): if it is a copy (re-saved, "
                "re-typed, read through pandas), these rows include the training rows and flatter the model; "
                "evaluate the original file to score only its held-out rows"
            )
        return RowChoice(labelled, f"every labelled row{why}")
    if not same:
        raise DataError(
            f"--rows {which}: {source} is not the table this bundle was trained on (its content differs "
            f"from {trained.provenance.get('table_path', 'the training table')}), so it has no {which} "
            "split; use --rows all"
        )
    split = training_split(trained, df, target, valid, source)
    if which == "val" or (which == "auto" and not len(split.test)):
        if not len(split.val):
            raise DataError(f"{source}: the bundle's split has no validation or test rows; use --rows all")
        why = "" if which == "val" else "; the split has no test rows"
        return RowChoice(split.val, selection_text("validation", split, why))
    if not len(split.test):
        raise DataError(f"{source}: the bundle's split has no test rows; use --rows val or --rows all")
    return RowChoice(split.test, selection_text("test", split))


def selection_text(split_name: str, split: Split, why: str = "") -> str:
    """What the rows of one split of the training table are, for people (`Split.held_out` names)."""
    how = split.describe()
    if split_name == "test":
        return f"test rows of the training table ({how})"
    if split_name == "validation":
        return (
            f"validation rows of the training table ({how}; they chose the best epoch and fitted "
            f"the calibration, so they flatter the model{why})"
        )
    return f"training rows of the training table ({how}; no held-out rows: they say little{why})"
