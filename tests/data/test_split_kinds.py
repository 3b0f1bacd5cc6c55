"""Group, time and column splits from `data.split`, and K folds that keep the split's kind."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from plait.config import Config
from plait.data.folds import make_folds
from plait.data.split_plan import RANDOM_WHY, make_split, plan_split
from plait.data.table import prepare_labels
from plait.errors import ConfigError, DataError


def _config(split: object = None, **data: object) -> Config:
    section = dict(data)
    if split is not None:
        section["split"] = split
    return Config.from_dict({"task": {"label": "y"}, "fields": {"x": "tabular"}, "data": section})


def _labels(df: pl.DataFrame, task: str = "classification"):
    return prepare_labels(df, "y", task, "t")


def _partition(split, n_valid: int) -> None:
    rows = np.concatenate([split.train, split.val, split.test])
    assert len(rows) + split.left_out == n_valid
    assert len(set(rows.tolist())) == len(rows)


@settings(max_examples=80, deadline=None)
@given(
    sizes=st.lists(st.integers(min_value=1, max_value=30), min_size=3, max_size=25),
    n_classes=st.integers(min_value=2, max_value=4),
    per_group_label=st.booleans(),
    val_fraction=st.sampled_from([0.0, 0.1, 0.2]),
    test_fraction=st.sampled_from([0.1, 0.2, 0.3]),
    seed=st.integers(min_value=0, max_value=1000),
)
def test_group_split_never_puts_a_group_in_two_splits(
    sizes: list[int],
    n_classes: int,
    per_group_label: bool,
    val_fraction: float,
    test_fraction: float,
    seed: int,
) -> None:
    rng = np.random.default_rng(seed)
    group = np.repeat([f"g{i}" for i in range(len(sizes))], sizes)
    if per_group_label:
        y = np.repeat(rng.integers(0, n_classes, len(sizes)), sizes)
    else:
        y = rng.integers(0, n_classes, len(group))
    y[-1] = (y[0] + 1) % n_classes  # at least two classes
    df = pl.DataFrame({"g": group, "x": rng.normal(size=len(group)), "y": [f"c{v}" for v in y]})
    cfg = _config({"group": "g"}, val_fraction=val_fraction, test_fraction=test_fraction)
    split = make_split(plan_split(cfg), df, _labels(df), "t")
    _partition(split, df.height)
    seen = [set(group[part].tolist()) for part in (split.train, split.val, split.test)]
    assert not (seen[0] & seen[1]) and not (seen[0] & seen[2]) and not (seen[1] & seen[2])
    assert split.groups == {"train": len(seen[0]), "val": len(seen[1]), "test": len(seen[2])}
    assert len(split.train) > 0 and len(split.test) > 0
    if val_fraction > 0:
        assert len(split.val) > 0
    again = make_split(plan_split(cfg), df, _labels(df), "t")
    assert again.test.tolist() == split.test.tolist()


def test_group_split_is_stratified_where_groups_allow() -> None:
    # 60 subjects, 10 windows each, each subject doing one of 3 activities.
    subjects = np.repeat(np.arange(60), 10)
    activity = np.repeat(np.arange(60) % 3, 10)
    df = pl.DataFrame({"s": subjects, "x": np.zeros(600), "y": [f"a{a}" for a in activity]})
    split = make_split(plan_split(_config({"group": "s"})), df, _labels(df), "t")
    for part in (split.val, split.test):
        counts = np.bincount(activity[part], minlength=3)
        assert counts.min() >= 20, counts  # every activity in every held-out split
    assert abs(len(split.test) - 90) <= 10 and abs(len(split.val) - 90) <= 10
    assert "split by group 's'" in split.describe() and "(9 groups)" in split.describe()


def test_group_split_errors_name_the_column_and_the_fix() -> None:
    df = pl.DataFrame({"g": ["a", "a", "b", "b"], "x": [0.0] * 4, "y": ["p", "q", "p", "q"]})
    with pytest.raises(DataError, match=r"column 'g' has 2 group\(s\).*at least 3.*val_fraction: 0"):
        make_split(plan_split(_config({"group": "g"})), df, _labels(df), "t")
    holes = pl.DataFrame({"g": ["a", None, "b"], "x": [0.0] * 3, "y": ["p", "q", "p"]})
    with pytest.raises(DataError, match=r"1 labelled rows have no value in column 'g' \(rows 1"):
        make_split(plan_split(_config({"group": "g"})), holes, _labels(holes), "t")
    with pytest.raises(DataError, match=r"data\.split\.group: t has no column 'gg'; did you mean 'g'\?"):
        make_split(plan_split(_config({"group": "gg"})), df, _labels(df), "t")


def test_time_split_orders_train_val_test_and_leaves_a_gap() -> None:
    n = 200
    start = pl.datetime(2024, 1, 1)
    times = pl.datetime_range(start, start + pl.duration(seconds=n - 1), "1s", eager=True).shuffle(seed=1)
    df = pl.DataFrame({"t": times, "x": np.zeros(n), "y": ["a", "b"] * (n // 2)})
    split = make_split(plan_split(_config({"time": "t", "gap_s": 5})), df, _labels(df), "t")
    seconds = df["t"].dt.epoch("s").to_numpy()
    assert seconds[split.train].max() < seconds[split.val].min() - 5
    assert seconds[split.val].max() < seconds[split.test].min() - 5
    assert split.left_out == 10  # 5 s of rows before each of the two later splits
    _partition(split, n)
    assert "gap 5 s: 10 rows left out" in split.describe()


def test_time_split_keeps_equal_times_together_and_reads_numbers_and_strings() -> None:
    df = pl.DataFrame({"t": [0, 0, 0, 1, 1, 1, 2, 2, 2, 3], "x": [0.0] * 10, "y": ["a", "b"] * 5})
    split = make_split(
        plan_split(_config({"time": "t"}, val_fraction=0.2, test_fraction=0.2)), df, _labels(df), "t"
    )
    t = df["t"].to_numpy()
    for part in (split.train, split.val, split.test):
        for other in (split.train, split.val, split.test):
            if part is not other:
                assert not set(t[part].tolist()) & set(t[other].tolist())
    text = pl.DataFrame(
        {"t": ["2024-01-02T00:00:00", "oops", "2024-01-01T00:00:00"], "x": [0.0] * 3, "y": ["a", "b", "a"]}
    )
    with pytest.raises(DataError, match=r"no readable time in column 't' \(rows 1, 0-based; e.g. 'oops'\)"):
        make_split(plan_split(_config({"time": "t"})), text, _labels(text), "t")


def test_random_split_says_what_it_risks_unless_asked_for() -> None:
    df = pl.DataFrame({"x": np.zeros(40), "y": ["a", "b"] * 20})
    split = make_split(plan_split(_config()), df, _labels(df), "t")
    assert split.kind == "random" and split.why == RANDOM_WHY and "data.split.group" in split.describe()
    asked = make_split(plan_split(_config("random")), df, _labels(df), "t")
    assert asked.why == "" and asked.test.tolist() == split.test.tolist()


def test_old_split_column_key_still_works() -> None:
    df = pl.DataFrame(
        {"p": ["train"] * 6 + ["test"] * 2 + ["val"] * 2, "x": np.zeros(10), "y": ["a", "b"] * 5}
    )
    old = _config(split_column="p")
    assert old.data.split.column == "p" and old.to_dict()["data"]["split"] == {
        "kind": "column",
        "column": "p",
    }
    split = make_split(plan_split(old), df, _labels(df), "t")
    assert (split.kind, split.sizes()) == ("column", {"train": 6, "val": 2, "test": 2})
    with pytest.raises(ConfigError, match=r"old name of data\.split\.column"):
        _config({"group": "g"}, split_column="p")


def test_aligned_table_defaults_to_the_anchor_key_as_group() -> None:
    cfg = Config.from_dict(
        {
            "task": {"label": "y"},
            "streams": {
                "anchors": {"path": "events.csv", "key": "machine", "label": "y"},
                "sources": {
                    "v": {
                        "kind": "timeseries",
                        "path": "v.csv",
                        "columns": ["a"],
                        "window_s": 1,
                        "rate_hz": 10,
                    }
                },
            },
        }
    )
    plan = plan_split(cfg)
    assert (plan.kind, plan.column) == ("group", "machine") and "anchors' key" in plan.why
    assert plan_split(cfg.with_overrides(data={"split": "random"})).kind == "random"


@settings(max_examples=40, deadline=None)
@given(
    n_groups=st.integers(min_value=6, max_value=20),
    k=st.integers(min_value=2, max_value=5),
    seed=st.integers(min_value=0, max_value=1000),
)
def test_group_folds_test_every_group_once_and_never_train_on_it(n_groups: int, k: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    group = np.repeat(np.arange(n_groups), rng.integers(2, 9, n_groups))
    df = pl.DataFrame({"g": group, "x": np.zeros(len(group)), "y": rng.choice(["a", "b", "c"], len(group))})
    folds = make_folds(plan_split(_config({"group": "g"})), df, _labels(df), k, "t")
    tested = np.concatenate([f.test for f in folds])
    assert sorted(tested.tolist()) == list(range(len(group)))  # every row tested exactly once
    for fold in folds:
        parts = [set(group[p].tolist()) for p in (fold.train, fold.val, fold.test)]
        assert not (parts[0] & parts[2]) and not (parts[1] & parts[2]) and not (parts[0] & parts[1])
        assert len(fold.train) and len(fold.val) and fold.kind == "group"


def test_random_folds_are_stratified_and_cover_every_row() -> None:
    df = pl.DataFrame({"x": np.zeros(100), "y": ["a"] * 80 + ["b"] * 20})
    folds = make_folds(plan_split(_config()), df, _labels(df), 5, "t")
    assert sorted(np.concatenate([f.test for f in folds]).tolist()) == list(range(100))
    for i, fold in enumerate(folds):
        assert (fold.fold, fold.folds) == (i, 5)
        assert int((fold.test >= 80).sum()) == 4  # 20 'b' rows dealt over 5 folds
        assert not set(fold.test.tolist()) & (set(fold.train.tolist()) | set(fold.val.tolist()))


def test_time_folds_chain_forward() -> None:
    df = pl.DataFrame({"t": np.arange(120, dtype=np.float64), "x": np.zeros(120), "y": ["a", "b"] * 60})
    folds = make_folds(plan_split(_config({"time": "t", "gap_s": 2})), df, _labels(df), 3, "t")
    for fold in folds:
        assert df["t"].to_numpy()[fold.train].max() < df["t"].to_numpy()[fold.val].min() - 2
        assert df["t"].to_numpy()[fold.val].max() < df["t"].to_numpy()[fold.test].min() - 2
    assert [len(f.test) for f in folds] == [30, 30, 30]


def test_folds_refuse_a_fixed_split_column_and_too_few_groups() -> None:
    df = pl.DataFrame(
        {"p": ["train", "test"] * 5, "g": list("aabbccddee"), "x": np.zeros(10), "y": ["a", "b"] * 5}
    )
    with pytest.raises(ConfigError, match="fixes one split"):
        make_folds(plan_split(_config({"column": "p"})), df, _labels(df), 3, "t")
    with pytest.raises(DataError, match=r"'g' has 5 groups.*need at least 6.*--folds 4"):
        make_folds(plan_split(_config({"group": "g"})), df, _labels(df), 5, "t")


def test_time_folds_with_tied_times_test_each_row_once() -> None:
    """Regression: a fold's window reached into the next period, so rows tied with the next start
    were tested twice (and others never)."""
    t = [0, 0, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 4, 4, 5, 5]
    df = pl.DataFrame({"t": t, "x": np.zeros(len(t)), "y": ["a", "b"] * (len(t) // 2)})
    folds = make_folds(plan_split(_config({"time": "t"}, val_fraction=0.0)), df, _labels(df), 3, "t")
    tested = np.concatenate([f.test for f in folds]).tolist()
    assert len(tested) == len(set(tested))
    times = np.array(t)
    for fold in folds:
        assert times[fold.train].max() < times[fold.test].min()
        assert len(set(times[fold.test].tolist()) & set(times[np.setdiff1d(tested, fold.test)].tolist())) == 0
    with pytest.raises(DataError, match=r"no (training|validation) rows.*fold"):
        make_folds(plan_split(_config({"time": "t", "gap_s": 2})), df, _labels(df), 3, "t")


def test_group_folds_refuse_a_fold_without_validation_groups() -> None:
    df = pl.DataFrame({"g": list("aabbcc"), "x": np.zeros(6), "y": ["p", "q"] * 3})
    with pytest.raises(DataError, match=r"leaves 1 for training and validation"):
        make_folds(plan_split(_config({"group": "g"})), df, _labels(df), 2, "t")
    folds = make_folds(plan_split(_config({"group": "g"}, val_fraction=0.0)), df, _labels(df), 2, "t")
    assert all(len(f.val) == 0 and len(f.train) for f in folds)
