"""`plait evaluate BUNDLE DATA --out DIR`: row choice, the report's JSON, files and errors."""

from __future__ import annotations

import json
import re

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from plait.cli.main import app
from plait.data.table import encode_labels, read_table
from plait.errors import ConfigError, DataError, UnknownNameError
from plait.evaluation.perturb.choice import PerturbationChoice, RobustnessPlan
from plait.evaluation.rows import choose_rows, training_split
from plait.workflow.evaluate import evaluate_report


@pytest.fixture(scope="module")
def report(pumps_small, pumps_bundle, tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    return evaluate_report(pumps_bundle.trained, pumps_small.table_path, out=out)


def test_the_split_is_recomputed_exactly(pumps_small, pumps_bundle):
    trained = pumps_bundle.trained
    df = read_table(pumps_small.table_path)
    target, valid = encode_labels(df, trained.task, "t")
    split = training_split(trained, df, target, valid, "t")
    for name in ("train", "val", "test"):
        np.testing.assert_array_equal(getattr(split, name), getattr(pumps_bundle.split, name))


def test_rows_auto_all_and_new_tables(pumps_small, pumps_bundle):
    trained = pumps_bundle.trained
    df = read_table(pumps_small.table_path)
    args = encode_labels(df, trained.task, "t")
    auto = choose_rows(trained, df, *args, "t")
    assert auto.selection.startswith("test rows") and list(auto.rows) == list(pumps_bundle.split.test)
    assert len(choose_rows(trained, df, *args, "t", "all").rows) == int(args[1].sum())
    val = choose_rows(trained, df, *args, "t", "val")
    assert list(val.rows) == list(pumps_bundle.split.val) and "flatter" in val.selection
    other = df.head(40)
    other_args = encode_labels(other, trained.task, "t")
    fresh = choose_rows(trained, other, *other_args, "new.csv")
    assert fresh.selection.startswith("every labelled row") and len(fresh.rows) == int(other_args[1].sum())
    with pytest.raises(DataError, match="not the table this bundle was trained on"):
        choose_rows(trained, other, *other_args, "new.csv", "test")
    assert "copy" not in fresh.selection
    # A copy that no longer hashes the same (here: rows reversed) is new data to the fingerprint, but
    # has the training table's size: the selection says the rows may include training rows.
    copy = df.reverse()
    copy_args = encode_labels(copy, trained.task, "t")
    suspicious = choose_rows(trained, copy, *copy_args, "copy.csv")
    assert "as many rows as the training table" in suspicious.selection and "flatter" in suspicious.selection


def test_report_has_every_promised_section(report, pumps_bundle):
    data = report.data
    names = list(pumps_bundle.trained.modalities)
    assert data.data is not None and data.data.rows == len(pumps_bundle.split.test)
    assert data.ablation is not None and data.robustness is not None and data.calibration is not None
    assert data.interpretation is not None and data.headline is not None and data.metrics is not None
    assert set(data.ablation.fields) == set(names)
    assert set(data.robustness.relative_robustness) == {*names, "all"}
    assert 0.0 <= data.calibration.ece_after <= 1.0
    assert data.metrics["accuracy"] == pytest.approx(pumps_bundle.trained.metrics["metrics"]["accuracy"])
    for curve in data.robustness.curves + data.robustness.all_fields:
        assert len(curve.levels) == len(curve.values) >= 10
        assert curve.values[0] == pytest.approx(data.metrics["accuracy"])  # level 0 is the clean run
    missing = {c.field: c for c in data.robustness.curves if c.perturbation == "missing"}
    for name in names:  # every sample without the field = the field removed
        assert missing[name].values[-1] == pytest.approx(data.ablation.without_field[name]["accuracy"])
    assert data.timing is not None and 0 < data.timing.encoding_seconds < data.timing.seconds


def test_metrics_json_reads_back_into_the_same_records(report):
    """The file boundary: what metrics.json holds reads back into equal records, and writes back
    to the same JSON."""
    from plait.evaluation.result import EvaluationReport

    saved = json.loads(report.json_path.read_text())
    assert {"metrics", "ablation", "robustness", "calibration", "interpretation", "headline"} <= set(saved)
    again = EvaluationReport.from_json(saved, where=str(report.json_path))
    assert again == report.data
    assert again.to_json() == saved


def test_report_files_are_written(report):
    assert report.json_path is not None and report.html_path is not None
    assert json.loads(report.json_path.read_text())["format"] == "plait-evaluation/1"
    html = report.html_path.read_text()
    assert "<svg" in html and "http://" not in html and "https://" not in html


def test_calibration_subsets_cover_the_rows(report, pumps_bundle):
    calibration = report.data.calibration
    keys = [s.key for s in calibration.subsets]
    assert "all" in keys and len(keys) == len(set(keys))
    by_key = {s.key: s for s in calibration.subsets}
    for name in pumps_bundle.trained.modalities:  # each field alone is a subset of its own
        assert by_key[name].rows > 0


def test_a_baseline_against_itself_has_zero_effective_robustness(pumps_small, pumps_bundle):
    trained = pumps_bundle.trained
    run = evaluate_report(trained, pumps_small.table_path, baseline=trained)
    effective = run.data.robustness.effective
    assert effective is not None and effective.baseline_fusion == "gated"
    assert set(effective.fields) == {*trained.modalities, "all"}
    assert all(v == pytest.approx(0.0) for v in effective.fields.values())


def test_a_baseline_on_another_task_is_refused(pumps_small, pumps_bundle, three_class_table, tmp_path):
    from plait.predictor import Predictor

    other = Predictor(label="y", fusion="late", epochs=1, progress=False).fit(three_class_table(60)).trained
    with pytest.raises(DataError, match="--baseline"):
        evaluate_report(pumps_bundle.trained, pumps_small.table_path, baseline=other, robustness=False)


def test_regression_reports_r2_curves_and_no_calibration(tmp_path):
    from plait.predictor import Predictor

    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 4))
    df = pl.DataFrame(
        {"vec": [list(v) for v in x], "z": x[:, 0] + rng.normal(size=120) * 0.1, "y": x @ [1, 2, 0, 0]}
    )
    predictor = Predictor(label="y", task_type="regression", epochs=3, progress=False).fit(df)
    run = evaluate_report(predictor.trained, df, out=tmp_path / "r")
    assert run.data.calibration is None and run.data.confusion_matrix is None
    assert run.data.robustness.metric == "r2" and run.data.headline.metric == "rmse"
    assert (tmp_path / "r" / "report.html").is_file()


def test_cli_writes_the_report_and_rejects_a_json_out(pumps_small, pumps_bundle, tmp_path):
    bundle = str(pumps_bundle.bundle_path)
    runner = CliRunner()
    result = runner.invoke(
        app, ["evaluate", bundle, str(pumps_small.table_path), "-o", str(tmp_path / "ev"), "--no-robustness"]
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "ev" / "metrics.json").is_file() and (tmp_path / "ev" / "report.html").is_file()
    assert "test rows of the training table" in result.output
    bad = runner.invoke(
        app, ["evaluate", bundle, str(pumps_small.table_path), "-o", str(tmp_path / "m.json")]
    )
    assert bad.exit_code != 0 and "is a folder" in bad.output


def test_summary_names_the_key_findings(report):
    from plait.evaluation.result import EvaluationReport
    from plait.evaluation.summary import report_summary

    lines = report_summary(report.data)
    text = "\n".join(lines)
    assert "relied on most:" in text and "relative robustness" in text and "calibration: ECE" in text
    assert "cross-modal inconsistencies" in text and "evaluated in" in text
    assert report_summary(EvaluationReport()) == []


def test_training_with_report_writes_it_into_the_bundle(three_class_table, tmp_path):
    from plait.config import Config
    from plait.workflow.train import train

    cfg = Config.from_dict(
        {
            "task": {"label": "y"},
            "fields": {"vec": "embedding", "specs": {"kind": "tabular", "numeric": ["x"]}},
            "model": {"fusion": "gated", "dim": 8, "hidden": 8},
            "train": {"epochs": 2, "progress": False},
        }
    )
    result = train(cfg, table=three_class_table(200), out=tmp_path / "b", report=True)
    assert result.report is not None and result.report.data.rows == len(result.split.test)
    saved = json.loads((tmp_path / "b" / "evaluation.json").read_text())
    assert saved["ablation"] == result.report.ablation.to_json()
    assert (tmp_path / "b" / "report.html").is_file()
    assert saved["interpretation"]["weights"]["field_order"] == ["vec", "specs"]  # gated exposes weights


def test_predictor_report_writes_the_page(pumps_small, pumps_bundle, tmp_path):
    from plait.predictor import Predictor

    predictor = Predictor.from_trained(pumps_bundle.trained)
    data = predictor.report(pumps_small.table_path, out=tmp_path / "p", robustness=False)
    assert data.robustness is None and data.ablation.all == data.metrics["accuracy"]
    assert (tmp_path / "p" / "report.html").is_file()


def test_retrain_ablation_trains_without_each_field(three_class_table, tmp_path):
    from plait.config import Config
    from plait.evaluation.evaluate import evaluate_tensors
    from plait.training.fit import fit_model, prepare
    from plait.workflow.retrain import retrain_without
    from plait.workflow.train import train

    cfg = Config.from_dict(
        {
            "task": {"label": "y"},
            "fields": {"vec": "embedding", "specs": {"kind": "tabular", "numeric": ["x"]}},
            "model": {"fusion": "concat", "dim": 8, "hidden": 8},
            "train": {"epochs": 3, "progress": False},
        }
    )
    table = three_class_table(150)
    trained = train(cfg, table=table).trained
    said: list[str] = []
    run = evaluate_report(trained, table, retrain=retrain_without, robustness=False, say=said.append)
    fields = run.data.ablation.fields
    prepared = prepare(cfg.with_overrides(train={"progress": False}), table=table)
    alone = fit_model(prepared, fields=["specs"]).trained  # "without vec", trained the same way
    expected = evaluate_tensors(alone, prepared.tensors, prepared.split.test).metrics["accuracy"]
    assert fields["vec"].retrained_without == pytest.approx(expected)
    assert 0.0 <= fields["specs"].retrained_without <= 1.0
    gap = fields["vec"].retrain_gap(higher_is_better=True)  # the retrain gap (issue 15)
    assert gap == pytest.approx(expected - fields["vec"].without)
    assert fields["vec"].retrain_gap(higher_is_better=False) == pytest.approx(-gap)
    from plait.report import render_report

    page = render_report(run.data)
    assert "retrain gap" in page and f"{gap:+.3f}" in page
    assert sum("retraining without" in s for s in said) == 2
    with pytest.raises(DataError, match="--retrain-ablation"):
        evaluate_report(trained, three_class_table(80, seed=5), retrain=retrain_without, robustness=False)


def test_a_report_on_rows_of_one_class_renders(pumps_small, pumps_bundle, tmp_path):
    """Regression: a class absent from the evaluation rows has null weight statistics, and the
    box plot crashed on them (so `plait train` could fail after saving the bundle)."""
    from plait.report import render_report

    table = read_table(pumps_small.table_path)
    label = pumps_bundle.trained.task.label
    one = table.filter(pl.col(label) == pumps_bundle.trained.task.classes[0]).head(30)
    run = evaluate_report(
        pumps_bundle.trained, one, root=pumps_small.root, robustness=False, out=tmp_path / "one"
    )
    by_class = run.data.interpretation.weights.by_class
    assert any(stats.n == 0 for per_class in by_class.values() for stats in per_class.values())
    assert "<svg" in render_report(run.data) and (tmp_path / "one" / "report.html").is_file()


def test_summary_says_so_when_no_field_matters_more():
    from plait.evaluation.result import EvaluationReport
    from plait.evaluation.summary import report_summary

    fields = {f: {"alone": 0.5, "without": 1.0, "marginal": 0.0} for f in ("a", "b")}
    data = {"ablation": {"metric": "accuracy", "all": 1.0, "fields": fields}}
    lines = report_summary(EvaluationReport.from_json(data))
    assert lines == ["no single field changes the accuracy when it is left out"]


def _image_field(trained):
    return next(f for f, m in trained.modalities.items() if m.kind == "image")


def test_the_default_report_says_how_the_area_is_normalised(report):
    robustness = report.data.to_json()["robustness"]
    assert robustness["plan"] is None
    method = robustness["relative_robustness_method"]
    assert method["rule"] == "trapezoid" and method["perfect"] == 1.0 and "[0, 1]" in method["levels"]
    assert {c["perturbation"] for c in robustness["all_fields"]} == {"missing", "noise"}
    assert "pixel_gaussian" not in {c["perturbation"] for c in robustness["curves"]}  # opt-in only
    for curve in robustness["curves"] + robustness["all_fields"]:
        assert curve["unit"] and len(curve["description"]) > 30
    html = report.html_path.read_text()
    assert "trapezoid" in html and 'class="families"' in html


def test_chosen_curves_are_exactly_the_ones_in_metrics_json(pumps_small, pumps_bundle, tmp_path):
    image = _image_field(pumps_bundle.trained)
    plan = RobustnessPlan.parse([f"{image}:pixel_gaussian=0:0.9:10", "all:missing=0.5,1"])
    run = evaluate_report(pumps_bundle.trained, pumps_small.table_path, plan=plan, out=tmp_path / "chosen")
    robustness = json.loads((tmp_path / "chosen" / "metrics.json").read_text())["robustness"]
    assert [(c["field"], c["perturbation"], c["levels"]) for c in robustness["curves"]] == [
        (image, "pixel_gaussian", [round(i / 10, 6) for i in range(10)])
    ]
    assert [(c["field"], c["perturbation"], c["levels"]) for c in robustness["all_fields"]] == [
        ("all", "missing", [0.0, 0.5, 1.0])
    ]
    assert robustness["curves"][0]["unit"] == "σ on [0, 1] pixels"
    assert robustness["plan"] == plan.to_json()
    assert set(robustness["relative_robustness"]) == {image, "all"}
    assert run.data.robustness.curves[0].values[0] == pytest.approx(run.data.metrics["accuracy"])
    html = run.html_path.read_text()
    assert "--perturb" in html and "pixel_gaussian" in html


def test_a_bad_choice_fails_before_any_data_is_read(pumps_bundle, tmp_path, monkeypatch):
    import plait.workflow.evaluate as run_module

    monkeypatch.setattr(run_module, "read_labelled", lambda *a, **k: pytest.fail("the data was read"))
    missing = tmp_path / "nowhere.csv"
    with pytest.raises(UnknownNameError, match="did you mean 'pixel_gaussian'"):
        evaluate_report(
            pumps_bundle.trained, missing, plan=RobustnessPlan((PerturbationChoice("pixel_gausian"),))
        )
    with pytest.raises(ConfigError, match=r"level 2 is outside missing's range \[0, 1\]"):
        evaluate_report(pumps_bundle.trained, missing, plan=RobustnessPlan.parse(["missing=0,2"]))
    with pytest.raises(ConfigError, match="--no-robustness"):
        evaluate_report(
            pumps_bundle.trained, missing, plan=RobustnessPlan.parse(["missing"]), robustness=False
        )


def test_cli_perturb_runs_the_chosen_curves_and_says_what_it_does(pumps_small, pumps_bundle, tmp_path):
    bundle, table = str(pumps_bundle.bundle_path), str(pumps_small.table_path)
    image = _image_field(pumps_bundle.trained)
    runner = CliRunner()
    args = ["evaluate", bundle, table, "-o", str(tmp_path / "ev"), "--no-progress"]
    result = runner.invoke(
        app, [*args, "--perturb", f"{image}:pixel_gaussian=0:0.9:4", "--perturb", "all:noise"]
    )
    assert result.exit_code == 0, result.output
    robustness = json.loads((tmp_path / "ev" / "metrics.json").read_text())["robustness"]
    assert [c["perturbation"] for c in robustness["curves"] + robustness["all_fields"]] == [
        "pixel_gaussian",
        "noise",
    ]
    assert robustness["curves"][0]["levels"] == [0.0, 0.3, 0.6, 0.9]
    bad = runner.invoke(app, [*args, "--perturb", f"{image}:blurr"])
    assert bad.exit_code != 0 and isinstance(bad.exception, UnknownNameError)
    assert "did you mean 'blur'" in str(bad.exception)


def test_evaluate_help_names_every_perturbation_family():
    from plait.cli.evaluate import PERTURB_HELP
    from plait.evaluation.perturb import PERTURBATIONS

    named = set(re.findall(r"\b[a-z_]+\b", PERTURB_HELP))
    assert set(PERTURBATIONS) | {"noise"} <= named
    result = CliRunner().invoke(app, ["evaluate", "--help"])
    assert result.exit_code == 0 and "pixel_gaussian=0:0.9:10" in result.output
