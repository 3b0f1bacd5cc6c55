"""Train/validation/test split of the labelled rows: the `Split` record, a split column, or a
seeded stratified split by row. Group and time splits are in split_group.py and split_time.py,
the choice between them in split_plan.py, K folds in folds.py.

Only rows with a label take part. In a stratified split every class is split in proportion on its
own, so rare classes reach every split: a class with ≥ 3 rows gets ≥ 1 row in each split whose
fraction is non-zero, and every class keeps ≥ 1 training row. Counts per class are within one row
of `n * fraction`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from plait.errors import ConfigError, DataError

SPLIT_NAMES = {
    "train": "train",
    "training": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "dev": "val",
    "test": "test",
    "testing": "test",
}
_MAX_LISTED = 5


@dataclass(frozen=True, eq=False)
class Split:
    """Sorted 0-based row indices of the table for each split (disjoint), and how they were made:
    `kind` random | group | time | column, the `column` it read, distinct `groups` per split
    (group splits), rows `left_out` by a time split's gap, `fold` (0-based) when one of K folds,
    and `why` this kind was chosen when the config did not say."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    kind: str = "random"
    column: str | None = None
    seed: int = 0
    groups: Mapping[str, int] = field(default_factory=dict)
    left_out: int = 0
    gap_s: float = 0.0
    fold: int | None = None
    folds: int | None = None
    why: str = ""
    # rows without a label a contrastive stage may train on (plait.data.split_unlabelled); not in
    # sizes(): no supervised stage, metric or calibration sees them
    unlabelled: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.train), "val": len(self.val), "test": len(self.test)}

    def to_json(self) -> dict[str, Any]:
        """What the bundle and the report keep: kind, column, counts (and groups) per split."""
        out: dict[str, Any] = {"kind": self.kind, "column": self.column, "seed": self.seed}
        out["counts"] = self.sizes()
        if self.groups:
            out["groups"] = dict(self.groups)
        if self.kind == "time":
            out.update(gap_s=self.gap_s, left_out=self.left_out)
        if self.fold is not None:
            out.update(fold=self.fold, folds=self.folds)
        if self.why:
            out["why"] = self.why
        if len(self.unlabelled):
            out["unlabelled"] = len(self.unlabelled)
        return out

    def describe(self) -> str:
        """One line for people: the kind, its column, rows (and groups) per split, and a warning
        when the split is random by row."""
        names = {"train": "train", "val": "validation", "test": "test"}
        parts = []
        for key, n in self.sizes().items():
            groups = f" ({self.groups[key]} groups)" if key in self.groups else ""
            parts.append(f"{n} {names[key]}{groups}")
        counts = ", ".join(parts)
        fold = "" if self.fold is None else f"fold {self.fold + 1}/{self.folds}: "
        if self.kind == "group":
            head = f"split by group '{self.column}' (no {self.column} in two splits)"
        elif self.kind == "time":
            gap = f", gap {self.gap_s:g} s: {self.left_out} rows left out" if self.gap_s > 0 else ""
            head = f"split by time '{self.column}' (train before validation before test{gap})"
        elif self.kind == "column":
            head = f"split by column '{self.column}'"
        else:
            head = f"random split by row (seed {self.seed})"
        why = f" — {self.why}" if self.why else ""
        extra = (
            f"; {len(self.unlabelled)} unlabelled rows for contrastive stages" if len(self.unlabelled) else ""
        )
        return f"{fold}{head}: {counts}{extra}{why}"

    def held_out(self) -> tuple[str, np.ndarray]:
        """The rows reported metrics are measured on: test, else validation, else (say so loudly) train."""
        if len(self.test):
            return "test", self.test
        if len(self.val):
            return "validation", self.val
        return "train", self.train


def split_rows(
    target: np.ndarray,
    valid: np.ndarray,
    *,
    classification: bool,
    val_fraction: float,
    test_fraction: float,
    seed: int,
    split_values: Sequence[str | None] | None = None,
    path: str = "",
) -> Split:
    """Split the valid rows. With `split_values` (one per table row, from data.split.column) the
    table decides; otherwise a seeded shuffle, stratified by class for classification."""
    valid = np.asarray(valid, dtype=bool)
    if len(target) != len(valid):
        raise ValueError(f"target has {len(target)} rows but valid has {len(valid)}")
    where = f" in {path}" if path else ""
    if split_values is not None:
        split = _from_column(split_values, valid, where)
    else:
        split = _random(np.asarray(target), valid, classification, val_fraction, test_fraction, seed)
    if len(split.train) == 0:
        raise DataError(
            f"no labelled row{where} is assigned to the training split ({split.sizes()}, "
            f"{int(valid.sum())} labelled rows); add labelled rows, lower data.val_fraction/test_fraction, "
            "or put some rows in 'train' in data.split.column"
        )
    return split


def _from_column(values: Sequence[str | None], valid: np.ndarray, where: str) -> Split:
    if len(values) != len(valid):
        raise ValueError(f"split_values has {len(values)} rows but the table has {len(valid)}")
    names: list[str | None] = []
    unknown: list[tuple[int, str]] = []
    empty: list[int] = []
    for row, value in enumerate(values):
        text = value.strip().lower() if isinstance(value, str) else None
        if text is None or text == "":
            names.append(None)
            if valid[row]:
                empty.append(row)
            continue
        name = SPLIT_NAMES.get(text)
        if name is None:
            unknown.append((row, str(value)))
        names.append(name)
    if unknown:
        shown = ", ".join(f"row {r}: {v!r}" for r, v in unknown[:_MAX_LISTED])
        more = f" and {len(unknown) - _MAX_LISTED} more" if len(unknown) > _MAX_LISTED else ""
        raise DataError(
            f"data.split.column{where}: expected train, val or test (also validation/valid/dev), got "
            f"{shown}{more}; fix those cells or remove data.split.column to split another way"
        )
    if empty:
        shown = ", ".join(str(r) for r in empty[:_MAX_LISTED])
        more = f" and {len(empty) - _MAX_LISTED} more" if len(empty) > _MAX_LISTED else ""
        raise DataError(
            f"data.split.column{where}: labelled rows {shown}{more} have no split value; "
            "expected train, val or test — fill them in"
        )
    labels = np.array(names, dtype=object)

    def rows(name: str) -> np.ndarray:
        return np.flatnonzero(valid & (labels == name)).astype(np.int64)

    return Split(train=rows("train"), val=rows("val"), test=rows("test"))


def split_counts(n: int, val_fraction: float, test_fraction: float) -> tuple[int, int, int]:
    """(train, val, test) counts for one group of n rows: rounded, with ≥ 1 val/test row when
    n ≥ 3 and the fraction is non-zero, and ≥ 1 train row whenever n ≥ 1."""
    exact = {"val": n * val_fraction, "test": n * test_fraction}
    counts = {k: round(v) for k, v in exact.items()}
    fractions = {"val": val_fraction, "test": test_fraction}
    if n >= 3:
        for key in counts:
            if fractions[key] > 0 and counts[key] == 0:
                counts[key] = 1
    floor = 1 if n >= 3 else 0  # val/test keep one row each when n ≥ 3
    while n > 0 and n - counts["val"] - counts["test"] < 1:
        # Take the row back from the split rounded furthest above its exact share.
        candidates = [k for k in counts if counts[k] > (floor if fractions[k] > 0 else 0)]
        key = max(candidates, key=lambda k: counts[k] - exact[k])
        counts[key] -= 1
    return n - counts["val"] - counts["test"], counts["val"], counts["test"]


def _random(
    target: np.ndarray,
    valid: np.ndarray,
    classification: bool,
    val_fraction: float,
    test_fraction: float,
    seed: int,
) -> Split:
    for key, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not 0.0 <= value < 1.0:
            raise ConfigError(f"data.{key}: expected a fraction in [0, 1), got {value}")
    if val_fraction + test_fraction >= 1.0:
        raise ConfigError(
            f"data: val_fraction + test_fraction = {val_fraction + test_fraction} leaves no training rows; "
            "keep their sum below 1"
        )
    rows = np.flatnonzero(valid)
    # Stratify: each class is split on its own so rare classes reach every split.
    groups = [rows[target[rows] == c] for c in np.unique(target[rows])] if classification else [rows]
    rng = np.random.default_rng(seed)
    parts: dict[str, list[np.ndarray]] = {"train": [], "val": [], "test": []}
    for group in groups:
        shuffled = rng.permutation(group)
        n_train, n_val, _ = split_counts(len(group), val_fraction, test_fraction)
        parts["train"].append(shuffled[:n_train])
        parts["val"].append(shuffled[n_train : n_train + n_val])
        parts["test"].append(shuffled[n_train + n_val :])

    def merge(name: str) -> np.ndarray:
        chunks = parts[name]
        return np.sort(np.concatenate(chunks)).astype(np.int64) if chunks else np.zeros(0, dtype=np.int64)

    return Split(train=merge("train"), val=merge("val"), test=merge("test"))
