"""Cross-validation over folds × seeds: grouped folds, mean ± std, paired differences, out-of-fold
predictions, and the `--folds`/`--seeds` commands."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from plait.cli.main import app
from plait.compare import cross_validate, write_cv_reports
from plait.compare.stats import corrected_interval, mean_std
from plait.config import Config


def _table(n_groups: int = 8, per_group: int = 12, seed: int = 0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    group = np.repeat(np.arange(n_groups), per_group)
    y = rng.integers(0, 3, len(group))
    centres = rng.normal(size=(3, 6)) * 2
    return pl.DataFrame(
        {
            "subject": [f"s{g}" for g in group],
            "vec": [list(v) for v in centres[y] + rng.normal(size=(len(group), 6))],
            "x": y + rng.normal(size=len(group)),
            "y": [f"c{v}" for v in y],
        }
    )


def _config(**split: object) -> Config:
    return Config.from_dict(
        {
            "data": {"split": split} if split else {},
            "task": {"label": "y"},
            "fields": {"vec": "embedding", "num": {"kind": "tabular", "numeric": ["x"]}},
            "model": {"dim": 8, "hidden": 16},
            "train": {"epochs": 2, "progress": False, "batch_size": 32},
        }
    )


def test_grouped_folds_times_seeds(tmp_path: Path) -> None:
    df = _table()
    messages: list[str] = []
    cv = cross_validate(
        _config(group="subject"),
        ["concat", "late"],
        folds=3,
        seeds=2,
        table=df,
        say=messages.append,
        baseline=False,  # the boosting row's own runs: tests/test_boosting_baseline.py
    )
    assert len(cv.runs) == 3 * 2 * 4  # folds × seeds × (2 fusions + 2 fields alone)
    assert any("fold 2/3 · seed 1 · late" in m for m in messages)
    counted = "cross-validation: 3 folds × 2 seeds × 4 models = 24 trainings"
    assert any(m.startswith(counted) for m in messages)
    assert any("left" in m for m in messages)
    assert any("split by group 'subject'" in m for m in messages)
    for run in cv.runs:  # no subject on both sides of a fold
        assert run.split["kind"] == "group" and run.split["groups"]["test"] >= 2
    summaries = cv.summaries()
    assert [s.runs for s in summaries] == [6, 6, 6, 6]
    assert len(summaries[0].per_fold) == 3 and len(summaries[0].per_seed) == 2
    best = summaries[0]
    assert best.versus_best is None
    for s in summaries[1:]:
        assert s.versus_best is not None and s.versus_best.runs == 3  # folds, seeds averaged within
    values = [float(r.row.metric) for r in cv.runs if r.row.name == best.name]  # type: ignore[arg-type]
    assert best.mean == pytest.approx(np.mean(values)) and best.std == pytest.approx(np.std(values, ddof=1))

    paths = write_cv_reports(cv, tmp_path)
    oof = pl.read_parquet(paths.out_of_fold)
    # every labelled row is predicted once per model and seed
    assert oof.height == 4 * 2 * df.height
    per_model = oof.filter((pl.col("model") == "late") & (pl.col("seed") == 0))
    assert sorted(per_model["row"].to_list()) == list(range(df.height))
    assert oof.select(
        pl.sum_horizontal("prob_c0", "prob_c1", "prob_c2")
    ).to_series().to_numpy() == pytest.approx(1.0)
    assert (oof["truth"] == pl.Series(df["y"].to_list())[oof["row"]]).all()
    data = json.loads(paths.json.read_text())
    assert data["folds"] == 3 and data["seeds"] == [0, 1] and data["split"]["kind"] == "group"
    assert "Nadeau" in data["interval"] and len(data["runs"]) == 24
    assert len(data["pairs"]) == 6 and all(p["units"] == 3 for p in data["pairs"])  # 4 models, 3 folds
    text = paths.markdown.read_text()
    assert "mean ± std" in text and "## Per fold" in text and "## Per seed" in text
    assert "## Paired differences" in text


def test_seeds_alone_keep_the_configs_split() -> None:
    cv = cross_validate(
        _config(), ["concat"], folds=1, seeds=3, unimodal=False, baseline=False, table=_table()
    )
    tests = {tuple(r.split["counts"].values()) for r in cv.runs}
    assert len(tests) == 1 and len(cv.runs) == 3 and cv.split_kind == "random"
    assert "nothing else is known" in cv.split_text()


def test_corrected_interval_is_wider_than_the_naive_one() -> None:
    diffs = [0.02, 0.01, 0.03, -0.01, 0.02, 0.0]
    naive = corrected_interval(diffs, 0.0)
    corrected = corrected_interval(diffs, 0.25)
    assert corrected.low < naive.low and corrected.high > naive.high  # type: ignore[operator]
    mean, std = mean_std(diffs)
    assert naive.mean == pytest.approx(mean)
    assert naive.high == pytest.approx(mean + 2.5706 * std / np.sqrt(6), abs=1e-4)
    assert corrected_interval([0.1], 0.2).low is None


def test_train_and_compare_commands_cross_validate(tmp_path: Path) -> None:
    table = tmp_path / "t.parquet"
    _table().write_parquet(table)
    raw = _config(group="subject").to_dict()
    raw["data"]["path"] = str(table)
    config = tmp_path / "plait.yaml"
    config.write_text(Config.from_dict(raw, base_dir=tmp_path).to_yaml())
    runner = CliRunner()
    result = runner.invoke(app, ["train", str(config), "--folds", "3", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "mean ± std" in result.output and "per fold:" in result.output
    assert (tmp_path / "bundle-cv" / "cv.json").is_file() and not (tmp_path / "bundle").exists()
    out = tmp_path / "cmp"
    result = runner.invoke(
        app,
        ["compare", str(config), "--fusion", "concat,gated", "--folds", "2", "--seeds", "2", "-o", str(out)],
        env={"COLUMNS": "80"},
    )
    assert result.exit_code == 0, result.output
    assert (out / "oof.parquet").is_file() and "Best:" in result.output
    assert max(len(line) for line in result.output.splitlines()) <= 80
    wrong = runner.invoke(app, ["compare", str(config), "--folds", "2", "--bundles"])
    assert wrong.exit_code != 0 and "--bundles" in wrong.output


def test_intervals_pair_folds_not_fold_seed_runs_and_a_failed_fold_is_kept(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Regression: seeds reuse a fold's rows, so K × S runs are K resamples (the interval was too
    narrow); a fold whose preparation fails after the first is recorded, not a crash."""
    import plait.training.fit as fit

    real = fit.prepare
    calls = {"n": 0}

    def flaky(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise fit.DataError("fold three is broken")
        return real(*args, **kwargs)

    monkeypatch.setattr(fit, "prepare", flaky)
    cv = cross_validate(
        _config(group="subject"),
        ["concat", "late"],
        folds=3,
        seeds=2,
        unimodal=False,
        baseline=False,
        table=_table(),
    )
    failed = [r for r in cv.runs if not r.row.ok]
    assert len(failed) == 4 and all(
        r.fold == 2 and "fold three is broken" in str(r.row.error) for r in failed
    )
    second = cv.summaries()[1]
    assert second.runs == 4 and second.versus_best is not None
    assert second.versus_best.runs == 2  # two folds finished: two paired differences, seeds averaged
    assert "fold three is broken" in " ".join(cv.errors())


def test_verdict_with_one_model_makes_no_claim_about_others() -> None:
    cv = cross_validate(
        _config(), ["concat"], folds=2, seeds=1, unimodal=False, baseline=False, table=_table()
    )
    text = cv.verdict()
    assert text.startswith("Best: concat") and "Every other model" not in text and "Within noise" not in text
