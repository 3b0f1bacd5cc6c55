"""Regression tests for defects found in review: label parsing in evaluation, leakage of held-out
labels into target scaling, runs without held-out rows, config roots, split-column typos, and the
encode-once evaluation being exact."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch

from plait import Predictor
from plait.config import Config
from plait.data.split import split_rows
from plait.errors import DataError
from plait.evaluation.evaluate import evaluate
from plait.fusion import FUSIONS
from plait.models.inference import only_fields, run_model, run_model_subsets
from plait.workflow.train import train


def table(n: int = 120, seed: int = 0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    return pl.DataFrame(
        {
            "x": x,
            "vec": [list(v) for v in rng.normal(size=(n, 3))],
            "flag": x > 0,  # a boolean label
            "y": 10.0 * x + 100.0,
        }
    )


def config(label: str, fusion: str = "concat", **train_options: object) -> Config:
    # x decides the label exactly (flag = x > 0, y = 10x + 100): for the leak check a copy, accepted here.
    return Config.from_dict(
        {
            "data": {"allow_leaks": ["x"]},
            "task": {"label": label},
            "fields": {"specs": {"kind": "tabular", "numeric": ["x"]}, "vec": "embedding"},
            "model": {"fusion": fusion, "dim": 8, "hidden": 8},
            "train": {"epochs": 2, "progress": False, **train_options},
        }
    )


def test_boolean_labels_evaluate_with_the_training_class_names():
    df = table()
    trained = train(config("flag"), table=df).trained
    assert trained.task.classes == ("false", "true")
    result = evaluate(trained, df, rows="all")  # the training table: every row, not the test split
    assert result.rows == 120 and 0.0 <= result.metrics["accuracy"] <= 1.0


def test_evaluation_rejects_regression_labels_that_are_not_numbers():
    df = table()
    trained = train(config("y"), table=df).trained
    text_labels = df.with_columns(pl.col("y").cast(pl.Utf8)).with_columns(
        pl.when(pl.int_range(pl.len()) == 3).then(pl.lit("n/a")).otherwise(pl.col("y")).alias("y")
    )
    with pytest.raises(DataError, match=r"(?s)non-numeric.*row 3.*'n/a'"):
        evaluate(trained, text_labels)


def test_regression_scaling_uses_training_rows_only():
    df = table(seed=1)
    cfg = config("y")
    trained = train(cfg, table=df).trained
    y = df["y"].to_numpy()
    split = split_rows(
        y, np.ones(len(y), dtype=bool), classification=False, val_fraction=0.15, test_fraction=0.15, seed=0
    )
    assert trained.task.target_mean == pytest.approx(float(y[split.train].mean()))
    assert trained.task.target_std == pytest.approx(float(y[split.train].std()))
    assert trained.task.target_mean != pytest.approx(float(y.mean()))


def test_no_held_out_rows_reports_training_metrics_instead_of_crashing():
    trained = train(config("flag", epochs=1), table=table().with_columns(pl.lit("train").alias("part")))
    assert trained.trained.metrics["split"] in ("test", "validation")
    cfg = config("flag", epochs=1).with_overrides(data={"val_fraction": 0.0, "test_fraction": 0.0})
    result = train(cfg, table=table())
    assert result.trained.metrics["split"] == "train"
    assert result.trained.metrics["metrics"]["n"] == 120


def test_split_column_typo_names_the_key_and_suggests():
    cfg = config("flag").with_overrides(data={"split": {"column": "prat"}})
    with pytest.raises(DataError, match=r"data\.split\.column: .* no column 'prat'; did you mean 'part'\?"):
        train(cfg, table=table().with_columns(pl.lit("train").alias("part")))


def test_predictor_with_config_keeps_its_media_root(tmp_path: Path):
    cfg = config("flag").with_overrides(data={"root": str(tmp_path / "media")})
    predictor = Predictor(config=cfg)
    resolved, _ = predictor._config_for(table(), None)
    assert resolved.media_root() == tmp_path / "media"


@pytest.mark.parametrize("fusion", FUSIONS.names())
def test_encode_once_subsets_equal_full_reruns(fusion: str):
    trained = train(config("flag", fusion=fusion), table=table()).trained
    from plait.data.dataset import load_table

    tensors, _ = load_table(table(), trained.modalities, Path("."))
    idx = torch.arange(len(tensors))
    once = run_model_subsets(trained.model, tensors, idx, {"all": None, "vec": ["vec"], "specs": ["specs"]})
    assert torch.allclose(once["all"].output, run_model(trained.model, tensors, idx).output, atol=1e-5)
    for name in ("vec", "specs"):
        again = run_model(trained.model, tensors, idx, edit_present=only_fields([name]))
        assert torch.allclose(once[name].output, again.output, atol=1e-5), name
