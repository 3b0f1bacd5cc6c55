"""The boosting baseline (plait.baseline): summary features per kind, LightGBM on the same split,
retrained without each field, and its row in `plait compare`, cross-validation and the report."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch

from plait.baseline.boosting import fit_boosting
from plait.baseline.features import summary_table
from plait.config import Config
from plait.modalities.summary import QUANTILES, SERIES_STATS, series_stats, spectrogram_stats, token_stats


def _config(fusion: str = "concat", epochs: int = 2) -> Config:
    return Config.from_dict(
        {
            "task": {"label": "y"},
            "fields": {"vec": "embedding", "specs": {"kind": "tabular", "numeric": ["x"]}},
            "model": {"fusion": fusion, "dim": 8, "hidden": 8},
            "train": {"epochs": epochs, "progress": False},
        }
    )


def test_series_statistics_read_only_the_real_steps():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(30, 2)).astype(np.float32)
    values = torch.zeros(2, 40, 2)
    values[0, :30] = torch.from_numpy(a)
    values[0, 30:] = 99.0  # padding: must not enter a statistic
    values[1] = torch.from_numpy(rng.normal(size=(40, 2)).astype(np.float32))
    mask = torch.zeros(2, 40, dtype=torch.bool)
    mask[0, :30] = True
    mask[1] = True
    out = series_stats(values, mask).reshape(2, 2, SERIES_STATS)  # (B, C, stats)
    first = out[0].numpy()
    assert first[:, 0] == pytest.approx(a.mean(axis=0), abs=1e-5)
    assert first[:, 1] == pytest.approx(a.std(axis=0), abs=1e-5)
    assert first[:, 2] == pytest.approx(a.min(axis=0)) and first[:, 3] == pytest.approx(a.max(axis=0))
    assert first[:, 4] == pytest.approx(np.abs(np.diff(a, axis=0)).mean(axis=0), abs=1e-5)
    assert first[:, 5] == pytest.approx(a[-1])  # the last real step, not the padding
    median = first[:, 7 + QUANTILES.index(0.5)]
    assert median == pytest.approx(np.quantile(a, 0.5, axis=0), abs=1e-5)
    alone = series_stats(values[:1, :30], None)  # the same series without padding
    assert torch.allclose(alone, out[:1].reshape(1, -1), atol=1e-4)


def test_spectrogram_and_token_features_have_a_fixed_width():
    spec = spectrogram_stats(torch.randn(3, 16, 20), torch.ones(3, 20, dtype=torch.bool))
    assert spec.shape == (3, 2 * 16 + 4)
    tokens = torch.tensor([[5, 6, 6, 0], [7, 0, 0, 0]])
    feats = token_stats(tokens, tokens > 0, buckets=8)
    assert feats.shape == (2, 10)
    assert feats[0, 8].item() == 3 and feats[1, 8].item() == 1  # lengths
    assert feats[0, 9].item() == pytest.approx(2 / 3)  # distinct share
    assert feats[0, :8].sum().item() == pytest.approx(1.0)


def test_absent_fields_are_missing_values_never_zeros(three_class_table):
    from plait.training.fit import prepare

    table = three_class_table(90).with_columns(
        pl.when(pl.int_range(pl.len()) % 3 == 0).then(None).otherwise(pl.col("x")).alias("x")
    )
    prepared = prepare(_config(), table=table)
    features = summary_table(prepared.modalities, prepared.tensors)
    x = features.matrix[:, features.columns_of(["specs"])]
    absent = ~prepared.tensors.present["specs"].numpy()
    assert absent.sum() == 30
    assert np.isnan(x[absent]).all() and not np.isnan(x[~absent]).any()
    assert set(features.fields) == {"vec", "specs"} and len(features.names()) == features.matrix.shape[1]


def test_boosting_learns_and_is_retrained_without_each_field(three_class_table):
    from plait.training.fit import prepare

    prepared = prepare(_config(), table=three_class_table(300))
    assert prepared.tensors.target is not None
    features = summary_table(prepared.modalities, prepared.tensors)
    fit = fit_boosting(features, prepared.tensors.target, prepared.split, prepared.task, seed=0)
    assert fit.metric > 0.6  # chance is 1/3; the vector carries the class
    assert set(fit.retrained_without) == {"vec", "specs"}
    assert fit.retrained_without["vec"] < fit.metric  # without the informative vector it is worse
    assert fit.output.shape == (len(prepared.split.test), 3)
    assert sum(fit.importance.values()) == pytest.approx(1.0, abs=1e-3)
    again = fit_boosting(features, prepared.tensors.target, prepared.split, prepared.task, seed=0)
    assert again.metric == fit.metric  # deterministic for a seed
    alone = fit_boosting(
        features, prepared.tensors.target, prepared.split, prepared.task, fields=["specs"], without=False
    )
    assert alone.retrained_without == {} and alone.metric == pytest.approx(fit.retrained_without["vec"])


def test_every_compare_leaderboard_has_the_boosting_row(three_class_table, tmp_path: Path):
    from plait.compare import compare, write_reports

    comparison = compare(_config(), ["concat"], table=three_class_table(150))
    rows = {r.name: r for r in comparison.rows}
    boosting = rows["boosting"]
    assert boosting.ok and boosting.kind == "baseline" and set(boosting.retrained_without) == {"vec", "specs"}
    assert "gradient boosting" in comparison.verdict()
    paths = write_reports(comparison, tmp_path)
    md = paths.markdown.read_text()
    assert "| boosting | baseline | all |" in md and "*" in md and "retrained without the field" in md
    assert 'class="bar baseline"' in paths.html.read_text()
    saved = json.loads(paths.json.read_text())
    assert saved["baseline"] == "boosting"
    without = compare(_config(), ["concat"], table=three_class_table(150), baseline=False, unimodal=False)
    assert [r.name for r in without.rows] == ["concat"]


def test_cross_validation_pairs_the_boosting_baseline_with_the_models(three_class_table):
    from plait.compare import cross_validate

    cv = cross_validate(_config(), ["concat"], folds=3, seeds=1, unimodal=False, table=three_class_table(150))
    assert cv.models == ("concat", "boosting") and cv.kinds == ("fusion", "baseline")
    runs = [r for r in cv.runs if r.row.name == "boosting"]
    assert len(runs) == 3 and all(r.row.ok for r in runs)
    oof = [o for o in cv.out_of_fold if o.model == "boosting"]
    assert len(oof) == 3 and all(o.probabilities is not None for o in oof)
    assert sum(len(o.rows) for o in oof) == 150  # every row predicted once, out of fold
    assert cv.paired("concat", "boosting") is not None
    assert "boosting baseline" in cv.verdict()


def test_train_with_boosting_puts_it_in_the_report(three_class_table, tmp_path: Path):
    from plait.workflow.train import train

    result = train(_config(), table=three_class_table(150), out=tmp_path / "b", report=True, boosting=True)
    assert result.boosting is not None and result.report is not None and result.report.boosting is not None
    assert result.report.boosting.value == pytest.approx(result.boosting.metric, abs=1e-6)
    saved = json.loads((tmp_path / "b" / "evaluation.json").read_text())
    assert saved["boosting"]["retrained_without"].keys() == {"vec", "specs"}
    page = (tmp_path / "b" / "report.html").read_text()
    assert "Simple baseline: gradient boosting" in page and "boosting retrained without" in page
