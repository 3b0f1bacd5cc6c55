"""K-fold cross-validation splits that keep the run's split kind.

Each fold's test rows are one K-th of the labelled rows; the validation rows (early stopping,
calibration) come from the rest, the way the single split takes them:
- random: stratified by label, every row in exactly one test fold;
- group: the groups are dealt into K parts (stratified where the groups allow), so every group is
  tested exactly once and never trained on in the same fold;
- time: forward chaining — the rows are cut into K + 1 periods in time; fold i trains on the
  periods before period i + 1 (its last stretch validates) and tests on period i + 1, with the
  plan's gap before each later part;
- column: the user's own split has no folds (an error saying what to do instead).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import polars as pl

from plait.data.split import Split, split_rows
from plait.data.split_group import assign_groups, group_codes, split_from_parts
from plait.data.split_plan import SplitPlan, check_split_column
from plait.data.split_time import check_time_order, cut_in_time, time_seconds
from plait.data.table import LabelInfo
from plait.errors import ConfigError, DataError


def make_folds(plan: SplitPlan, df: pl.DataFrame, labels: LabelInfo, k: int, source: str) -> list[Split]:
    """K splits of `df`'s labelled rows under `plan` (see the module doc)."""
    if k < 2:
        raise ConfigError(f"--folds: expected 2 or more folds, got {k}")
    if plan.kind == "column":
        raise ConfigError(
            f"--folds {k}: data.split.column '{plan.column}' fixes one split, so there are no folds to "
            "make; drop --folds, or set data.split.group / data.split.time instead of the column"
        )
    check_split_column(plan, df, source)
    where = f" in {source}" if source else ""
    if plan.kind == "group":
        folds = _group_folds(plan, df, labels, k, where)
    elif plan.kind == "time":
        folds = _time_folds(plan, df, labels, k, where)
    else:
        folds = _random_folds(plan, labels, k)
    return [replace(f, why=plan.why) for f in folds]


def _val_share(plan: SplitPlan, k: int) -> float:
    """The validation fraction of a fold's non-test rows that keeps val at plan.val_fraction overall."""
    return min(plan.val_fraction / (1.0 - 1.0 / k), 0.5)


def _random_folds(plan: SplitPlan, labels: LabelInfo, k: int) -> list[Split]:
    rows = np.flatnonzero(labels.valid)
    if len(rows) < k:
        raise DataError(f"--folds {k}: only {len(rows)} labelled rows; use fewer folds")
    rng = np.random.default_rng(plan.seed)
    fold_of = np.full(len(labels.valid), -1, dtype=np.int64)
    classification = labels.task.is_classification
    strata = np.unique(labels.target[rows]) if classification else [None]
    offset = 0
    for c in strata:  # deal each class round-robin so every fold gets its share
        members = rows if c is None else rows[labels.target[rows] == c]
        shuffled = rng.permutation(members)
        fold_of[shuffled] = (np.arange(len(shuffled)) + offset) % k
        offset += len(shuffled)
    out = []
    for i in range(k):
        rest = labels.valid & (fold_of != i)
        inner = split_rows(
            labels.target,
            rest,
            classification=classification,
            val_fraction=_val_share(plan, k),
            test_fraction=0.0,
            seed=plan.seed + i,
        )
        test = np.flatnonzero(fold_of == i).astype(np.int64)
        out.append(Split(train=inner.train, val=inner.val, test=test, seed=plan.seed, fold=i, folds=k))
    return out


def _group_folds(plan: SplitPlan, df: pl.DataFrame, labels: LabelInfo, k: int, where: str) -> list[Split]:
    assert plan.column is not None
    codes = group_codes(df[plan.column].to_list(), labels.valid, plan.column, where)
    n_groups = len(np.unique(codes[labels.valid]))
    needed = k + (1 if plan.val_fraction > 0 else 0)
    if n_groups < needed:
        raise DataError(
            f"--folds {k}: data.split.group '{plan.column}' has {n_groups} groups among the labelled rows; "
            f"{k} folds{' with validation groups' if plan.val_fraction > 0 else ''} need at least {needed}. "
            f"Use --folds {max(2, n_groups - 1)} or fewer"
        )
    classification = labels.task.is_classification
    strata = np.where(labels.valid, labels.target, -1).astype(np.int64) if classification else None
    fold_of_group = assign_groups(codes, strata, [1.0] * k, plan.seed)
    out = []
    for i in range(k):
        test_group = fold_of_group == i
        rest = np.where(test_group[np.maximum(codes, 0)], -1, codes)
        v = _val_share(plan, k) if plan.val_fraction > 0 else 0.0
        left = len(np.unique(rest[rest >= 0]))
        if left < (2 if v > 0 else 1):
            raise DataError(
                f"--folds {k}: fold {i + 1} tests {int(test_group.sum())} of the {n_groups} groups of "
                f"'{plan.column}' and leaves {left} for training{' and validation' if v > 0 else ''}; "
                "use fewer folds, or set data.val_fraction: 0"
            )
        inner = assign_groups(rest, strata, [1.0 - v, v], plan.seed + i + 1, size=len(fold_of_group))
        part = np.where(test_group, 2, inner)  # 0 train, 1 val, 2 test
        out.append(
            split_from_parts(codes, labels.valid, part, column=plan.column, seed=plan.seed, fold=i, folds=k)
        )
    return out


def _time_folds(plan: SplitPlan, df: pl.DataFrame, labels: LabelInfo, k: int, where: str) -> list[Split]:
    assert plan.column is not None
    seconds = time_seconds(df[plan.column], labels.valid, where)
    rows = np.flatnonzero(labels.valid)
    order = rows[np.argsort(seconds[rows], kind="stable")]
    t = seconds[order]  # sorted times of the labelled rows
    if len(np.unique(t)) < k + 1:
        raise DataError(
            f"--folds {k}: only {len(np.unique(t))} distinct times in '{plan.column}' for {k + 1} periods; "
            "use fewer folds"
        )
    # K + 1 periods of about equal size, each edge moved back to the first row of its time so rows
    # sharing a timestamp stay in one period.
    edges = [
        int(np.searchsorted(t, t[e], "left")) for e in np.linspace(0, len(t), k + 2).round().astype(int)[1:-1]
    ]
    starts = [float(t[e]) for e in edges]  # the start time of periods 2 … K + 1
    out = []
    for i in range(k):
        test_start = starts[i]
        test_end = starts[i + 1] if i + 1 < len(starts) else np.inf
        history = t[t < test_start]
        n_val = round(len(history) * _val_share(plan, k)) if plan.val_fraction > 0 else 0
        val_start = float(history[len(history) - n_val]) if n_val else test_start
        window = order[seconds[order] < test_end]
        parts, left = cut_in_time(seconds, window, [val_start, test_start], plan.gap_s)
        fold = Split(
            train=parts[0],
            val=parts[1],
            test=parts[2],
            kind="time",
            column=plan.column,
            seed=plan.seed,
            left_out=left,
            gap_s=plan.gap_s,
            fold=i,
            folds=k,
        )
        check_time_order(fold, where, needs_val=plan.val_fraction > 0)
        out.append(fold)
    return out
