"""A model with one field (issue 13, item 8): trained with its report, evaluated (default and chosen
curves, the CLI), and measured as `plait compare`'s unimodal baseline. With one field the all-fields
curves are the field's own; the sweep used to collect their shared points twice (2N outputs for N
rows), which failed every one-field evaluation."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from typer.testing import CliRunner

from plait import load_bundle
from plait.cli.main import app
from plait.config import Config
from plait.evaluation.perturb.choice import RobustnessPlan
from plait.evaluation.summary import report_summary
from plait.workflow.evaluate import evaluate_report
from plait.workflow.train import TrainResult, train

ROWS = 150


def _config(label: str = "y", fields: dict[str, Any] | None = None, fusion: str = "concat") -> Config:
    return Config.from_dict(
        {
            "task": {"label": label},
            "fields": fields or {"vec": "embedding"},
            "model": {"fusion": fusion, "dim": 8, "hidden": 8},
            "train": {"epochs": 2, "lr": 0.01, "progress": False},
        }
    )


@pytest.fixture(scope="module")
def table(three_class_table) -> pl.DataFrame:
    return three_class_table(ROWS, seed=4)


@pytest.fixture(scope="module")
def trained(table: pl.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> TrainResult:
    out = tmp_path_factory.mktemp("single") / "bundle"
    return train(_config(fusion="gated"), table=table.drop("x"), out=out, report=True)


def _curves(robustness: dict[str, Any]) -> dict[tuple[str, str], list[float]]:
    return {
        (c["field"], c["perturbation"]): c["values"] for c in robustness["curves"] + robustness["all_fields"]
    }


def test_training_a_single_field_writes_its_report(trained: TrainResult):
    assert trained.bundle_path is not None and trained.report is not None
    assert (trained.bundle_path / "report.html").is_file()
    saved = json.loads((trained.bundle_path / "evaluation.json").read_text())
    assert saved["data"]["rows"] == len(trained.split.test)
    robustness = saved["robustness"]
    curves = _curves(robustness)
    # every field at once is the only field: the same runs, so the same values
    assert curves["all", "missing"] == curves["vec", "missing"]
    assert curves["all", "noise"] == curves["vec", "gaussian_noise"]
    assert set(robustness["relative_robustness"]) == {"vec", "all"}
    assert "one field, vec" in robustness["note"]
    assert saved["ablation"]["fields"]["vec"]["without"] is None
    assert saved["interpretation"]["inconsistencies"]["rows_compared"] == 0
    assert saved["interpretation"]["weights"]["field_order"] == ["vec"]
    assert [s["fields"] for s in saved["calibration"]["subsets"]] == [["vec"]]
    html = (trained.bundle_path / "report.html").read_text()
    assert "gated fusion of one field" in html
    assert "the model has one field" in html and "Nothing to compare" in html


def test_a_multi_field_report_has_no_single_field_note(three_class_table, tmp_path: Path):
    fields = {"vec": "embedding", "specs": {"kind": "tabular", "numeric": ["x"]}}
    result = train(
        _config(fields=fields), table=three_class_table(120, seed=5), out=tmp_path / "b", report=True
    )
    assert result.report is not None and result.report.robustness.note is None
    assert result.report.interpretation.inconsistencies.compared > 0


def test_evaluate_report_on_a_single_field_bundle(trained: TrainResult, table: pl.DataFrame, tmp_path: Path):
    assert trained.bundle_path is not None
    bundle = load_bundle(trained.bundle_path)
    run = evaluate_report(bundle, table, out=tmp_path / "default")
    assert run.json_path is not None and run.html_path is not None and run.html_path.is_file()
    assert run.data.robustness.relative_robustness["all"] is not None
    summary = "\n".join(report_summary(run.data))
    assert "every field at once (vec alone)" in summary and "least robust" not in summary
    assert "no row has two fields present" in summary

    plan = RobustnessPlan.parse(["vec:gaussian_noise=0,0.5,1", "all:noise=0:1:3", "all:missing"])
    chosen = evaluate_report(bundle, table, plan=plan, out=tmp_path / "chosen").data.to_json()["robustness"]
    curves = _curves(chosen)
    assert list(curves) == [("vec", "gaussian_noise"), ("all", "noise"), ("all", "missing")]
    assert curves["vec", "gaussian_noise"] == curves["all", "noise"]  # the same levels, the same runs
    assert chosen["plan"] == plan.to_json()


def test_plait_evaluate_cli_on_a_single_field_bundle(
    trained: TrainResult, table: pl.DataFrame, tmp_path: Path
):
    data = tmp_path / "table.parquet"
    table.write_parquet(data)
    args = ["evaluate", str(trained.bundle_path), str(data), "-o", str(tmp_path / "ev"), "--no-progress"]
    result = CliRunner().invoke(app, [*args, "--rows", "all", "--perturb", "all:missing=0,0.5,1"])
    assert result.exit_code == 0, result.output
    saved = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert [c["perturbation"] for c in saved["robustness"]["all_fields"]] == ["missing"]
    assert (tmp_path / "ev" / "report.html").is_file()


def test_the_sweep_runs_a_repeated_point_once(trained: TrainResult, table: pl.DataFrame):
    from plait.evaluation.evaluate import model_tensors, read_labelled
    from plait.evaluation.perturb import perturbation_context
    from plait.evaluation.sweep import SweepPoint, model_runs, sweep

    model = trained.trained
    labelled = read_labelled(model, table, None)
    tensors, _ = model_tensors(model, labelled.df, labelled.target, labelled.root)
    point = SweepPoint(("vec",), ("missing",), 0.5)
    runs: list[int] = []
    result = sweep(
        model.model,
        tensors,
        list(range(ROWS)),
        subsets={"all": None},
        points=[point, point],
        modalities=model.modalities,
        contexts={"vec": perturbation_context(model.modalities["vec"])},
        batch_size=64,
        advance=runs.append,
    )
    assert result.points[point].shape[0] == ROWS
    assert sum(runs) == model_runs(ROWS, 1, 1, batch_size=64)


def test_curves_that_share_points_run_them_once():
    from plait.evaluation.robustness import all_points, plan_curves
    from plait.modalities import MODALITIES

    vec, specs = MODALITIES.get("embedding"), MODALITIES.get("tabular")
    fields = {"vec": vec, "specs": specs}  # both perturbed by gaussian_noise in all:noise
    plans = plan_curves(fields, RobustnessPlan.parse(["all:noise", "all:gaussian_noise"]))
    assert plans[0].points == plans[1].points and len(all_points(plans)) == len(plans[0].points)
    one = plan_curves({"vec": vec})
    assert len(all_points(one)) == sum(len(p.points) for p in one if p.field == "vec")


def test_a_regression_with_one_field_is_trained_and_evaluated(table: pl.DataFrame, tmp_path: Path):
    df = table.drop("y")
    result = train(_config("x"), table=df, out=tmp_path / "b", report=True)
    assert result.report is not None and result.report.calibration is None
    assert result.report.robustness.metric == "r2"
    assert (tmp_path / "b" / "report.html").is_file()
    run = evaluate_report(load_bundle(tmp_path / "b"), df, out=tmp_path / "ev")
    assert set(run.data.robustness.relative_robustness) == {"vec", "all"}


def test_compare_measures_the_unimodal_baseline_and_its_bundle_evaluates(three_class_table, tmp_path: Path):
    from plait.compare import compare

    fields = {"vec": "embedding", "specs": {"kind": "tabular", "numeric": ["x"]}}
    df = three_class_table(120, seed=6)
    comparison = compare(_config(fields=fields), ["concat", "late"], out=tmp_path, table=df)
    rows = {r.name: r for r in comparison.rows}
    assert all(r.ok for r in rows.values()), [r.error for r in rows.values()]
    for name in ("vec-only", "specs-only"):
        area = rows[name].relative_robustness
        assert area is not None and 0.0 <= area <= 1.0  # the baseline a fusion's area is read against
        assert rows[name].effective_robustness is None  # effective robustness: fusion rows only
    assert rows["concat"].relative_robustness is not None and rows["concat"].effective_robustness is not None
    bundle = load_bundle(tmp_path / "bundles" / "vec-only")
    assert list(bundle.modalities) == ["vec"]
    run = evaluate_report(bundle, df, out=tmp_path / "ev")
    rob = run.data.robustness
    assert rob.relative_robustness["all"] == pytest.approx(rows["vec-only"].relative_robustness, abs=1e-6)
