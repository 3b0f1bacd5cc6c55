"""The retrain gap (issue 15): what a missing field costs a fused model beyond retraining without
it, in `plait compare` (one split and cross-validated) with its reference models."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from plait.cli.main import app
from plait.compare import compare, cross_validate, write_cv_reports, write_reports
from plait.compare.result import CompareRow
from plait.compare.retrain_gap import comparison_gaps, references, retrain_plans
from plait.compare.run import model_plans
from plait.config import Config
from plait.task import gain


def _row(name: str, kind: str, fields: tuple[str, ...], metric: float, **without: float) -> CompareRow:
    return CompareRow(
        name=name, kind=kind, fusion="gated", fields=fields, metric=metric, without_field=dict(without)
    )


def test_gap_is_a_loss_in_the_metrics_direction() -> None:
    # the gap is the retrained model's gain over the fused model with the field absent
    assert gain(0.8, 0.7, higher_is_better=True) == pytest.approx(0.1)  # absent scores less: a loss
    assert gain(0.8, 0.9, higher_is_better=True) == pytest.approx(-0.1)
    assert gain(1.0, 1.5, higher_is_better=False) == pytest.approx(0.5)  # rmse: absent is worse


def test_references_are_models_trained_on_every_other_field() -> None:
    rows = [
        _row("gated", "fusion", ("a", "b", "c"), 0.9, a=0.6, b=0.8, c=0.85),
        _row("a-only", "unimodal", ("a",), 0.5),
        _row("without-a", "retrained", ("b", "c"), 0.7),
        _row("without-b", "retrained", ("a", "c"), 0.75),
        CompareRow(name="without-c", kind="retrained", fusion="gated", fields=("a", "b"), error="boom"),
        _row("boosting", "baseline", ("a", "b", "c"), 0.88),
    ]
    refs = references(rows, ("a", "b", "c"))
    assert {f: r.name for f, r in refs.items()} == {"a": "without-a", "b": "without-b"}  # c failed
    gaps = comparison_gaps(rows, ("a", "b", "c"), higher_is_better=True)
    assert set(gaps) == {"gated"}  # only fusion rows have a gap
    assert gaps["gated"] == pytest.approx({"a": 0.7 - 0.6, "b": 0.75 - 0.8})


def test_two_fields_read_the_gap_against_the_other_fields_unimodal_row() -> None:
    rows = [
        _row("late", "fusion", ("a", "b"), 0.9, a=0.55, b=0.8),
        _row("a-only", "unimodal", ("a",), 0.82),
        _row("b-only", "unimodal", ("b",), 0.6),
    ]
    assert comparison_gaps(rows, ("a", "b"), True) == {"late": pytest.approx({"a": 0.05, "b": 0.02})}


def test_retrain_plans_skip_what_the_unimodal_rows_already_are() -> None:
    three = retrain_plans("gated", ("a", "b", "c"), unimodal_rows=True, single_field_fusion="concat")
    assert [(p.name, p.fields, p.fusion, p.kind) for p in three] == [
        ("without-a", ("b", "c"), "gated", "retrained"),
        ("without-b", ("a", "c"), "gated", "retrained"),
        ("without-c", ("a", "b"), "gated", "retrained"),
    ]
    assert retrain_plans("gated", ("a", "b"), unimodal_rows=True, single_field_fusion="concat") == []
    two = retrain_plans("gated", ("a", "b"), unimodal_rows=False, single_field_fusion="concat")
    assert [(p.fields, p.fusion) for p in two] == [(("b",), "concat"), (("a",), "concat")]
    plans = model_plans(["late", "gated"], ("a", "b", "c"), unimodal=False, baseline=True, retrain=True)
    assert [p.name for p in plans] == ["late", "gated", "without-a", "without-b", "without-c", "boosting"]
    assert all(p.fusion == "late" for p in plans if p.kind == "retrained")  # the first fusion


def _table(rows: int = 96, seed: int = 0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, rows)
    centres = rng.normal(size=(3, 6)) * 2
    return pl.DataFrame(
        {
            "subject": [f"s{g}" for g in np.arange(rows) % 8],
            "vec": [list(v) for v in centres[y] + rng.normal(size=(rows, 6))],
            "x": y + rng.normal(size=rows),
            "z": y * 0.5 + rng.normal(size=rows),
            "y": [f"c{v}" for v in y],
        }
    )


def _config(fields: dict[str, object], **split: object) -> Config:
    return Config.from_dict(
        {
            "data": {"split": split} if split else {},
            "task": {"label": "y"},
            "fields": fields,
            "model": {"dim": 8, "hidden": 16},
            "train": {"epochs": 2, "progress": False, "batch_size": 32},
        }
    )


THREE = {
    "vec": "embedding",
    "num": {"kind": "tabular", "numeric": ["x"]},
    "other": {"kind": "tabular", "numeric": ["z"]},
}


def test_compare_with_retrain_ablation_trains_one_model_per_field_and_reports_the_gap(tmp_path: Path) -> None:
    comparison = compare(
        _config(THREE), ["late", "concat"], unimodal=False, baseline=False, retrain=True, table=_table()
    )
    rows = {r.name: r for r in comparison.rows}
    assert {"without-vec", "without-num", "without-other"} <= set(rows)
    assert rows["without-vec"].fields == ("num", "other") and rows["without-vec"].ok
    assert rows["without-vec"].fusion == "late"
    gaps = comparison_gaps(comparison.rows, comparison.fields, True)
    for name in ("late", "concat"):
        for field in THREE:
            expected = rows[f"without-{field}"].metric - rows[name].without_field[field]  # type: ignore[operator]
            assert gaps[name][field] == pytest.approx(expected)
    paths = write_reports(comparison, tmp_path)
    data = json.loads(paths.json.read_text())
    assert data["retrain_gap"]["late"]["vec"] == pytest.approx(gaps["late"]["vec"])
    markdown = paths.markdown.read_text()
    assert "## Retrain gap per field" in markdown and f"{gaps['late']['vec']:+.4f}" in markdown
    page = paths.html.read_text()
    assert 'class="retrain-gap"' in page and "retrained without a field" in page


def test_cross_validated_gap_is_paired_per_run_with_an_interval(tmp_path: Path) -> None:
    two = {"vec": "embedding", "num": {"kind": "tabular", "numeric": ["x"]}}
    cv = cross_validate(
        _config(two, group="subject"),
        ["late"],
        folds=2,
        seeds=2,
        unimodal=True,
        baseline=False,
        table=_table(),
    )
    gaps = {(g.model, g.field): g for g in cv.retrain_gaps()}
    assert set(gaps) == {("late", "vec"), ("late", "num")}
    by_run: dict[tuple[int, int], dict[str, CompareRow]] = {}
    for r in cv.runs:
        by_run.setdefault((r.fold, r.seed), {})[r.row.name] = r.row
    per_run = [rows["num-only"].metric - rows["late"].without_field["vec"] for rows in by_run.values()]  # type: ignore[operator]
    assert gaps[("late", "vec")].mean == pytest.approx(float(np.mean(per_run)))
    assert gaps[("late", "vec")].runs == 4 and gaps[("late", "vec")].interval.runs == 2  # folds pair
    paths = write_cv_reports(cv, tmp_path)
    assert "## Retrain gap per field" in paths.markdown.read_text()
    saved = json.loads(paths.json.read_text())["retrain_gap"]
    assert {(g["model"], g["field"]) for g in saved} == set(gaps)


def test_cli_compare_documents_the_retrain_ablation_flag() -> None:
    result = CliRunner().invoke(app, ["compare", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0 and "--retrain-ablation" in result.output
