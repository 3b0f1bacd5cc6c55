"""Issue 13 (6) and (4): configs that would hang or fail late fail now, naming the key or line; a
field no training row has a value for never reaches the model."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from plait.config import Config, load_config
from plait.config_yaml import expanded_size, load_yaml
from plait.errors import ConfigError, DataError
from plait.workflow.train import train

BASE = "task: {label: y}\nfields: {x: {kind: tabular, numeric: [x]}}\n"


def test_a_billion_laughs_config_is_refused_at_once(tmp_path: Path) -> None:
    levels = ['a0: &a0 ["lol"]']
    for i in range(1, 10):
        levels.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]")
    path = tmp_path / "bomb.yaml"
    path.write_text(BASE + "\n".join(levels) + "\n")
    start = time.perf_counter()
    with pytest.raises(ConfigError, match=r"bomb\.yaml: expands to more than 100,000 values"):
        load_config(path)
    assert time.perf_counter() - start < 5  # a bound, not a benchmark: unbounded it never returns
    assert expanded_size({"a": [1, 2], "b": "c"}, 100) == 5


def test_duplicate_keys_are_an_error_naming_both_lines(tmp_path: Path) -> None:
    path = tmp_path / "dup.yaml"
    path.write_text(BASE + "train:\n  epochs: 5\n  lr: 0.01\n  epochs: 50\n")
    with pytest.raises(ConfigError, match=r"dup\.yaml: line 6: key 'epochs' is given twice.*first on line 4"):
        load_config(path)
    assert load_yaml("a: &x {b: 1}\nc: *x\n") == {"a": {"b": 1}, "c": {"b": 1}}  # aliases still work


@pytest.mark.parametrize(
    ("section", "fragment"),
    [
        ({"train": {"lr": float("inf")}}, "train.lr: expected a positive number, got inf"),
        ({"train": {"lr": float("nan")}}, "train.lr: expected a positive number, got nan"),
        ({"train": {"weight_decay": float("inf")}}, "train.weight_decay"),
        ({"train": {"aux_loss": float("inf")}}, "train.aux_loss"),
        (
            {"train": {"stages": [{"kind": "end_to_end", "epochs": 1, "lr": float("inf")}]}},
            r"train.stages\[0\].lr",
        ),
    ],
)
def test_non_finite_numbers_are_refused(section: dict, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        Config.from_dict({"task": {"label": "y"}, "fields": {"x": "tabular"}, **section})


def test_an_image_size_that_cannot_fit_fails_before_training() -> None:
    from plait.build import check_config

    cfg = Config.from_dict({"task": {"label": "y"}, "fields": {"photo": {"kind": "image", "size": 100000}}})
    with pytest.raises(ConfigError, match=r"fields\.photo\.size: expected an integer <= 1024.*got 100000"):
        check_config(cfg, paths=False)


def _table(n: int = 60) -> pl.DataFrame:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, n)
    return pl.DataFrame(
        {
            "x": y + rng.normal(size=n),
            "photo": [f"missing/{i}.png" for i in range(n)],
            "y": [f"c{v}" for v in y],
        }
    )


def _config(**data: object) -> Config:
    return Config.from_dict(
        {
            "data": {"root": "/nonexistent-root", **data},
            "task": {"label": "y"},
            "fields": {"num": {"kind": "tabular", "numeric": ["x"]}, "photo": {"kind": "image", "size": 8}},
            "model": {"dim": 8, "hidden": 8},
            "train": {"epochs": 1, "progress": False},
        }
    )


def test_a_field_no_training_row_has_is_an_error_or_dropped_on_request() -> None:
    """Regression: a wrong data.root made every image unreadable; training said one line and went on,
    and sending an image later changed answers through an encoder that had never seen one."""
    with pytest.raises(
        DataError, match=r"no training row has a value for fields\.photo: photo \(image\): 60 of 60"
    ):
        train(_config(), table=_table())
    messages: list[str] = []
    result = train(_config(drop_empty_fields=True), table=_table(), say=messages.append)
    assert result.trained.field_names == ("num",)
    assert result.trained.config.field_names == ("num",)
    assert any(m.startswith("warning: dropped photo from the model") for m in messages)


def test_copies_of_training_rows_in_the_test_split_are_reported() -> None:
    """Regression: duplicated rows were kept silently; copies of training rows landed in the test split."""
    base = _table().drop("photo")
    doubled = pl.concat([base, base])
    cfg = Config.from_dict(
        {
            "task": {"label": "y"},
            "fields": {"num": {"kind": "tabular", "numeric": ["x"]}},
            "model": {"dim": 8, "hidden": 8},
            "train": {"epochs": 1, "progress": False},
        }
    )
    messages: list[str] = []
    train(cfg, table=doubled, say=messages.append)
    warning = next(m for m in messages if "exact copies of training rows" in m)
    assert "test rows" in warning and "Deduplicate" in warning
    messages.clear()
    train(cfg, table=base, say=messages.append)
    assert not any("exact copies" in m for m in messages)
