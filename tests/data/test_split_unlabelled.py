"""Rows without a label for contrastive stages: only those that cannot leak into the held-out
rows, under every kind of split (a property for groups), and only when asked."""

from __future__ import annotations

import numpy as np
import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from plait.config import Config
from plait.data.split_plan import make_split, plan_split
from plait.data.table import prepare_labels


def _split(df: pl.DataFrame, split: object):
    cfg = Config.from_dict({"task": {"label": "y"}, "fields": {"x": "tabular"}, "data": {"split": split}})
    labels = prepare_labels(df, "y", "classification", "t")
    return make_split(plan_split(cfg), df, labels, "t", unlabelled=True), labels


def _table(n: int, seed: int, hidden: float) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    y = [f"c{v}" for v in rng.integers(0, 2, n)]
    y = [None if rng.random() < hidden else v for v in y]
    return pl.DataFrame(
        {
            "g": [f"g{v}" for v in rng.integers(0, 12, n)],
            "t": np.arange(n, dtype=float),
            "s": ["train" if i < 0.6 * n else ("val" if i < 0.8 * n else "test") for i in range(n)],
            "x": rng.normal(size=n),
            "y": y,
        }
    )


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 1000), hidden=st.sampled_from([0.2, 0.5, 0.8]))
def test_group_split_unlabelled_rows_share_no_group_with_held_out_rows(seed: int, hidden: float) -> None:
    df = _table(200, seed, hidden)
    split, labels = _split(df, {"group": "g"})
    groups = df["g"].to_numpy()
    held = set(groups[np.concatenate([split.val, split.test])])
    assert not set(groups[split.unlabelled]) & held
    assert not labels.valid[split.unlabelled].any()
    assert not set(split.unlabelled) & set(np.concatenate([split.train, split.val, split.test]))


def test_random_time_and_column_splits() -> None:
    df = _table(300, 1, 0.5)
    missing = np.flatnonzero(df["y"].is_null().to_numpy())
    random, _ = _split(df, {"kind": "random"})
    assert random.unlabelled.tolist() == missing.tolist()  # rows are independent: all of them
    timed, _ = _split(df, {"time": "t"})
    first_held = df["t"].to_numpy()[np.concatenate([timed.val, timed.test])].min()
    assert len(timed.unlabelled) and (df["t"].to_numpy()[timed.unlabelled] < first_held).all()
    column, _ = _split(df, {"column": "s"})
    assert len(column.unlabelled) and (df["s"].to_numpy()[column.unlabelled] == "train").all()
    assert column.to_json()["unlabelled"] == len(column.unlabelled)
    assert "unlabelled rows for contrastive stages" in column.describe()


def test_not_computed_unless_asked() -> None:
    df = _table(100, 2, 0.5)
    cfg = Config.from_dict({"task": {"label": "y"}, "fields": {"x": "tabular"}})
    labels = prepare_labels(df, "y", "classification", "t")
    split = make_split(plan_split(cfg), df, labels, "t")
    assert len(split.unlabelled) == 0 and "unlabelled" not in split.to_json()
