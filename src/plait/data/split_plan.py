"""Which split a run uses, and making it from a table.

`plan_split(config)` turns `data.split` into a `SplitPlan`: the kind the config names; with none,
an aligned table's anchor key as the group (samples of one entity share its signal, so they must
not sit on both sides); else random by row, with a reason that says what that risks.
`make_split(plan, table, labels)` is the one function training and evaluation both call, so the
held-out rows `plait evaluate` recomputes are exactly those training held out.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import polars as pl

from plait.config import Config
from plait.data.split import Split, split_rows
from plait.data.split_group import group_codes, group_split
from plait.data.split_time import check_time_order, time_seconds, time_split
from plait.data.split_unlabelled import unlabelled_rows
from plait.data.table import LabelInfo
from plait.errors import DataError
from plait.registry import suggest

RANDOM_WHY = (
    "nothing else is known; if rows share a subject, recording, machine or time, set data.split.group "
    "or data.split.time, or the held-out figures will flatter the model"
)


@dataclass(frozen=True)
class SplitPlan:
    kind: str  # random | group | time | column
    column: str | None
    val_fraction: float
    test_fraction: float
    seed: int
    gap_s: float = 0.0
    why: str = ""  # why this kind, when the config did not name it


def plan_split(config: Config) -> SplitPlan:
    spec, data, seed = config.data.split, config.data, config.train.seed
    fractions = (data.val_fraction, data.test_fraction)
    named = spec.named
    if named:
        kind, column = next(iter(named.items()))
        return SplitPlan(kind, column, *fractions, seed, gap_s=spec.gap_s)
    key = config.streams.anchors.key if config.streams is not None else None
    if spec.kind == "auto" and key is not None:
        why = f"the anchors' key '{key}' of the aligned table (set data.split to choose another)"
        return SplitPlan("group", key, *fractions, seed, why=why)
    return SplitPlan("random", None, *fractions, seed, why="" if spec.kind == "random" else RANDOM_WHY)


def check_split_column(plan: SplitPlan, df: pl.DataFrame, source: str) -> None:
    if plan.column is not None and plan.column not in df.columns:
        hint = suggest(plan.column, df.columns)
        raise DataError(
            f"data.split.{plan.kind}: {source} has no column '{plan.column}';{hint} "
            f"Columns: {', '.join(df.columns)}"
        )


def make_split(
    plan: SplitPlan, df: pl.DataFrame, labels: LabelInfo, source: str, *, unlabelled: bool = False
) -> Split:
    """The train/validation/test rows of `df` under `plan`; with `unlabelled`, also the rows
    without a label that a contrastive stage may train on without leaking (split_unlabelled)."""
    split = _make_split(plan, df, labels, source)
    if not unlabelled:
        return split
    return replace(split, unlabelled=unlabelled_rows(split, df, labels.valid, source))


def _make_split(plan: SplitPlan, df: pl.DataFrame, labels: LabelInfo, source: str) -> Split:
    check_split_column(plan, df, source)
    where = f" in {source}" if source else ""
    classification = labels.task.is_classification
    if plan.kind == "group":
        assert plan.column is not None
        codes = group_codes(df[plan.column].to_list(), labels.valid, plan.column, where)
        split = group_split(
            codes,
            labels.target,
            labels.valid,
            column=plan.column,
            classification=classification,
            val_fraction=plan.val_fraction,
            test_fraction=plan.test_fraction,
            seed=plan.seed,
            where=where,
        )
    elif plan.kind == "time":
        assert plan.column is not None
        seconds = time_seconds(df[plan.column], labels.valid, where)
        split = time_split(
            seconds,
            labels.valid,
            column=plan.column,
            val_fraction=plan.val_fraction,
            test_fraction=plan.test_fraction,
            gap_s=plan.gap_s,
            seed=plan.seed,
        )
        check_time_order(split, where, needs_val=plan.val_fraction > 0)
    else:
        values = None if plan.kind == "random" else df[str(plan.column)].cast(pl.Utf8).to_list()
        split = split_rows(
            labels.target,
            labels.valid,
            classification=classification,
            val_fraction=plan.val_fraction,
            test_fraction=plan.test_fraction,
            seed=plan.seed,
            split_values=values,
            path=source,
        )
        split = replace(split, kind=plan.kind, column=plan.column, seed=plan.seed)
    return replace(split, why=plan.why)
