"""split_rows: stratified, seeded, disjoint, complete; and the split-column path."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from plait.data.split import split_counts, split_rows
from plait.errors import DataError


def _check_partition(split_train: np.ndarray, val: np.ndarray, test: np.ndarray, valid: np.ndarray) -> None:
    together = np.concatenate([split_train, val, test])
    assert len(together) == len(set(together.tolist())), "splits overlap"
    assert sorted(together.tolist()) == np.flatnonzero(valid).tolist(), (
        "splits must cover exactly the valid rows"
    )
    for part in (split_train, val, test):
        assert part.tolist() == sorted(part.tolist())


@settings(max_examples=60, deadline=None)
@given(
    labels=st.lists(st.integers(min_value=0, max_value=4), min_size=1, max_size=80),
    missing=st.lists(st.booleans(), min_size=80, max_size=80),
    val_fraction=st.floats(min_value=0.0, max_value=0.4),
    test_fraction=st.floats(min_value=0.0, max_value=0.4),
    seed=st.integers(min_value=0, max_value=2**31),
)
def test_stratified_split_properties(
    labels: list[int], missing: list[bool], val_fraction: float, test_fraction: float, seed: int
) -> None:
    target = np.array(labels, dtype=np.int64)
    valid = ~np.array(missing[: len(labels)])
    if not valid.any():
        valid[0] = True
    split = split_rows(
        target, valid, classification=True, val_fraction=val_fraction, test_fraction=test_fraction, seed=seed
    )
    _check_partition(split.train, split.val, split.test, valid)
    again = split_rows(
        target, valid, classification=True, val_fraction=val_fraction, test_fraction=test_fraction, seed=seed
    )
    assert again.train.tolist() == split.train.tolist() and again.test.tolist() == split.test.tolist()
    for c in np.unique(target[valid]):
        n = int((target[valid] == c).sum())
        n_val = int((target[split.val] == c).sum())
        n_test = int((target[split.test] == c).sum())
        assert abs(n_val - n * val_fraction) <= 1.0
        assert abs(n_test - n * test_fraction) <= 1.0
        assert (target[split.train] == c).sum() >= 1, "every class keeps a training row"
        if n >= 3:
            assert n_val >= 1 or val_fraction == 0.0
            assert n_test >= 1 or test_fraction == 0.0


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(min_value=0, max_value=500),
    val_fraction=st.floats(min_value=0.0, max_value=0.98),
    test_fraction=st.floats(min_value=0.0, max_value=0.98),
)
def test_split_counts_always_partition(n: int, val_fraction: float, test_fraction: float) -> None:
    if val_fraction + test_fraction >= 0.99:
        test_fraction = 0.0
    n_train, n_val, n_test = split_counts(n, val_fraction, test_fraction)
    assert n_train + n_val + n_test == n
    assert min(n_train, n_val, n_test) >= 0
    if n >= 1:
        assert n_train >= 1
    if n >= 3:
        assert n_val >= 1 or val_fraction == 0.0
        assert n_test >= 1 or test_fraction == 0.0


def test_regression_split_fractions_and_seed_changes_assignment() -> None:
    target = np.linspace(0.0, 1.0, 100)
    valid = np.ones(100, dtype=bool)
    a = split_rows(target, valid, classification=False, val_fraction=0.2, test_fraction=0.1, seed=0)
    b = split_rows(target, valid, classification=False, val_fraction=0.2, test_fraction=0.1, seed=1)
    assert a.sizes() == {"train": 70, "val": 20, "test": 10}
    assert a.val.tolist() != b.val.tolist()


def test_rare_class_reaches_every_split() -> None:
    target = np.array([0] * 50 + [1] * 3)
    split = split_rows(
        target, np.ones(53, bool), classification=True, val_fraction=0.1, test_fraction=0.1, seed=3
    )
    for part in (split.train, split.val, split.test):
        assert 1 in target[part].tolist()


def test_split_column_accepts_aliases_and_skips_unlabelled_rows() -> None:
    values = ["train", "Validation", "TEST", "dev", " valid ", "train", None]
    valid = np.array([True, True, True, True, True, True, False])
    split = split_rows(
        np.zeros(7),
        valid,
        classification=False,
        val_fraction=0.1,
        test_fraction=0.1,
        seed=0,
        split_values=values,
    )
    assert split.train.tolist() == [0, 5]
    assert split.val.tolist() == [1, 3, 4]
    assert split.test.tolist() == [2]


def test_split_column_bad_values_named_with_rows() -> None:
    values = ["train", "tset", "val", "holdout"]
    with pytest.raises(DataError) as info:
        split_rows(
            np.zeros(4), np.ones(4, bool), classification=False, val_fraction=0.1, test_fraction=0.1, seed=0,
            split_values=values, path="data.csv",
        )  # fmt: skip
    message = str(info.value)
    assert "data.split.column in data.csv" in message
    assert "row 1: 'tset'" in message and "row 3: 'holdout'" in message
    assert "expected train, val or test" in message


def test_split_column_empty_value_on_labelled_row() -> None:
    with pytest.raises(DataError, match=r"labelled rows 1 have no split value"):
        split_rows(
            np.zeros(2), np.ones(2, bool), classification=False, val_fraction=0.1, test_fraction=0.1, seed=0,
            split_values=["train", ""],
        )  # fmt: skip


def test_empty_train_split_is_an_error() -> None:
    with pytest.raises(DataError, match=r"no labelled row in data.csv is assigned to the training split"):
        split_rows(
            np.zeros(2), np.ones(2, bool), classification=False, val_fraction=0.1, test_fraction=0.1, seed=0,
            split_values=["val", "test"], path="data.csv",
        )  # fmt: skip
    with pytest.raises(DataError, match=r"training split"):
        split_rows(
            np.zeros(3), np.zeros(3, bool), classification=True, val_fraction=0.1, test_fraction=0.1, seed=0
        )
