"""`plait compare`: every fusion and every field alone on one prepared data set, and the reports."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from xml.etree import ElementTree

import pytest
from typer.testing import CliRunner

from plait.cli.main import app
from plait.compare import CompareRow, Comparison, compare, resolve_fusions, write_reports
from plait.compare.html import render_html
from plait.compare.report import ReportPaths, render_markdown
from plait.config import Config
from plait.data.leaks import LeakError
from plait.errors import ConfigError, PlaitError
from plait.fusion import FUSIONS
from plait.fusion.late import LateFusion
from plait.task import Task, TaskType

FIELDS = ["vibration", "note", "specs"]  # the cheap encoders of the pumps data
FUSIONS_RUN = ["concat", "late", "gated"]


def _config(pumps_small, fields: list[str], **task: str) -> Config:
    from plait.demo import demo_config

    cfg = demo_config(
        pumps_small.table_path, pumps_small.fields, fusion="gated", seed=0, base_dir=pumps_small.root
    )
    cfg = cfg.with_fields(fields).with_overrides(train={"epochs": 1, "progress": False, "patience": 1})
    return cfg.with_overrides(task=task) if task else cfg


@dataclass(frozen=True)
class Run:
    comparison: Comparison
    paths: ReportPaths
    messages: list[str]
    out: Path


@pytest.fixture(scope="module")
def run(pumps_small, tmp_path_factory: pytest.TempPathFactory) -> Run:
    out = tmp_path_factory.mktemp("compare")
    messages: list[str] = []
    comparison = compare(_config(pumps_small, FIELDS), FUSIONS_RUN, out=out, say=messages.append)
    return Run(comparison, write_reports(comparison, out), messages, out)


def test_every_fusion_and_every_field_alone_is_a_row(run: Run):
    rows = {r.name: r for r in run.comparison.rows}
    assert set(rows) == {*FUSIONS_RUN, *(f"{f}-only" for f in FIELDS), "boosting"}
    assert all(r.ok for r in rows.values()), [r.error for r in rows.values()]
    boosting = rows.pop("boosting")  # the simple model: its own figures, no latency or epochs
    assert boosting.kind == "baseline" and boosting.metrics["n"] == run.comparison.held_out_rows
    assert boosting.ece is not None and set(boosting.retrained_without) == set(FIELDS)
    for name in FUSIONS_RUN:
        assert (
            rows[name].kind == "fusion" and rows[name].fusion == name and rows[name].fields == tuple(FIELDS)
        )
    for field in FIELDS:
        alone = rows[f"{field}-only"]
        assert alone.kind == "unimodal" and alone.fields == (field,) and alone.fusion == "concat"
        assert alone.parameters is not None and rows["concat"].parameters is not None
        assert alone.parameters < rows["concat"].parameters  # one encoder, not three
    for row in rows.values():
        assert row.metric == row.metrics["accuracy"]
        assert row.metrics["n"] == run.comparison.held_out_rows  # the same held-out rows for every model
        assert row.ece is not None and 0.0 <= row.ece <= 1.0
        assert row.latency_ms is not None and row.latency_ms > 0
        assert row.latency_single_ms is not None and row.latency_single_ms > 0
        assert row.train_seconds is not None and row.epochs_run == 1


def test_fusion_rows_carry_robustness_and_effective_robustness_against_late(run: Run):
    rows = {r.name: r for r in run.comparison.rows}
    for name in FUSIONS_RUN:
        assert rows[name].relative_robustness is not None and 0.0 <= rows[name].relative_robustness <= 1.0
        assert rows[name].effective_robustness is not None
    assert rows["late"].effective_robustness == pytest.approx(0.0)  # against itself
    for field in FIELDS:  # a unimodal baseline's all-fields robustness is its field's (issue 13)
        alone = rows[f"{field}-only"]
        assert alone.relative_robustness is not None and 0.0 <= alone.relative_robustness <= 1.0
        assert alone.effective_robustness is None
    assert "eff. robustness vs late" in run.paths.markdown.read_text()


def test_progress_lines_count_and_report(run: Run):
    total = len(FUSIONS_RUN) + len(FIELDS) + 1  # and the boosting baseline
    assert f"[1/{total}] training concat…" in run.messages
    finished = [m for m in run.messages if re.match(rf"\[{total}/{total}\] boosting: accuracy", m)]
    assert len(finished) == 1


def test_json_holds_rows_config_split_and_versions(run: Run):
    data = json.loads(run.paths.json.read_text())
    assert {"plait_version", "date", "config", "split", "seed", "rows", "verdict", "best_unimodal"} <= set(
        data
    )
    assert data["task"] == {"type": "classification", "label": "fault", "metric": "accuracy"}
    assert list(data["config"]["fields"]) == FIELDS and data["seed"] == 0
    assert sum(data["split"].values()) <= 150 and data["split"]["test"] == data["held_out_rows"]
    rows = data["rows"]
    assert len(rows) == len(FUSIONS_RUN) + len(FIELDS) + 1
    assert data["baseline"] == "boosting"
    metrics = [r["metric"] for r in rows]
    assert metrics == sorted(metrics, reverse=True)  # best first
    for row in rows:
        if row["kind"] == "fusion":
            assert set(row["without_field"]) == set(FIELDS)
            assert all(0.0 <= v <= 1.0 for v in row["without_field"].values())
        else:
            assert row["without_field"] == {}
        if row["kind"] == "baseline":
            assert set(row["retrained_without"]) == set(FIELDS)
    unimodal = [r for r in rows if r["kind"] == "unimodal"]
    assert data["best_unimodal"] == max(unimodal, key=lambda r: r["metric"])["name"]


def test_bundles_are_kept_per_model(run: Run):
    for row in run.comparison.rows:
        if row.kind == "baseline":
            assert row.bundle is None  # boosting is not a plait bundle
            continue
        assert row.bundle == run.out / "bundles" / row.name
        assert (row.bundle / "model.safetensors").is_file()


def test_markdown_ranks_and_marks_the_best_baseline(run: Run):
    text = run.paths.markdown.read_text()
    table = [line for line in text.splitlines() if line.startswith("| ")]
    assert len(table) == 1 + len(run.comparison.rows)  # header + one line per model
    assert "without vibration" in table[0] and "ECE" in table[0]
    best = run.comparison.best("unimodal")
    assert best is not None
    marked = [line for line in table if "★" in line]
    assert len(marked) == 1 and f"| {best.name} ★ |" in marked[0]
    assert run.comparison.verdict() in text and "best unimodal baseline" in text


def test_html_is_self_contained_with_one_bar_per_model(run: Run):
    page = run.paths.html.read_text()
    assert page.count("<svg") == 1
    svg = ElementTree.fromstring(page[page.index("<svg") : page.index("</svg>") + len("</svg>")])
    bars = [r for r in svg.iter("rect") if r.get("class", "").startswith("bar ")]
    assert sorted(r.get("class") for r in bars) == sorted(
        [f"bar {r.kind}" for r in run.comparison.rows if r.ok]
    )  # one bar per model, coloured by its kind
    widths = [float(r.get("width", "0")) for r in bars]
    assert widths == sorted(widths, reverse=True)  # best first, longest bar first
    for external in ("http://", "https://", "<script", "src=", "href=", "url(", "@import"):
        assert external not in page
    assert page.count("<tr") == 1 + len(run.comparison.rows)


def test_unknown_fusion_is_refused_before_any_work(pumps_small):
    messages: list[str] = []
    with pytest.raises(ConfigError, match="unknown fusion 'concatt'; did you mean 'concat'"):
        compare(_config(pumps_small, FIELDS), ["late", "concatt"], say=messages.append)
    assert messages == []  # nothing was read or trained


def test_all_means_every_registered_fusion_once():
    assert resolve_fusions(["all"]) == FUSIONS.names()
    names = resolve_fusions(["late", "all", "late"])
    assert names[0] == "late" and sorted(names) == FUSIONS.names()
    with pytest.raises(ConfigError, match="no fusion given"):
        resolve_fusions([])


def test_a_failing_strategy_is_recorded_not_fatal(pumps_small, tmp_path: Path, monkeypatch):
    def broken(self, **kwargs):
        raise RuntimeError("late fusion exploded")

    monkeypatch.setattr(LateFusion, "__init__", broken)
    messages: list[str] = []
    result = compare(
        _config(pumps_small, ["note", "specs"]), ["late", "concat"], unimodal=False, say=messages.append
    )
    rows = {r.name: r for r in result.rows}
    assert not rows["late"].ok and "late fusion exploded" in (rows["late"].error or "")
    assert rows["concat"].ok and result.ranked()[-1].name == "late"
    assert any("late: FAILED" in m for m in messages)
    paths = write_reports(result, tmp_path)
    assert "failed: RuntimeError: late fusion exploded" in paths.markdown.read_text()
    assert paths.html.read_text().count('class="bar ') == 2  # concat and boosting; failed rows get no bar
    assert json.loads(paths.json.read_text())["rows"][-1]["error"].endswith("late fusion exploded")

    with pytest.raises(PlaitError, match=r"every plait model failed.*late fusion exploded"):
        compare(_config(pumps_small, ["note", "specs"]), ["late"], unimodal=False)


def test_regression_ranks_by_rmse_lowest_first(pumps_small, tmp_path: Path):
    cfg = _config(pumps_small, ["note", "specs"], label="rpm", type="regression")
    with pytest.raises(LeakError, match=r"fields\.specs reads the label column 'rpm'"):
        compare(cfg, ["concat"])
    specs = dict(cfg.fields[1].options)
    specs["numeric"] = [c for c in specs["numeric"] if c != "rpm"]
    cfg = cfg.with_overrides(
        fields={"note": dict(cfg.fields[0].options, kind="text"), "specs": {"kind": "tabular", **specs}}
    )
    result = compare(cfg, ["concat"])
    assert result.metric_name == "rmse" and not result.higher_is_better
    assert [r.kind for r in result.rows] == ["fusion", "unimodal", "unimodal", "baseline"]
    for row in result.rows:
        assert row.ece is None and row.metric == row.metrics["rmse"]
    ranked = [r.metric for r in result.ranked()]
    assert ranked == sorted(ranked)  # type: ignore[type-var]
    assert "ECE" not in render_markdown(result, "today")


def _synthetic(fusion_metric: float, alone_metric: float, task_type: TaskType, error: str = "") -> Comparison:
    rows = (
        CompareRow(name="gated", kind="fusion", fusion="gated", fields=("a", "b"), metric=fusion_metric),
        CompareRow(name="a-only", kind="unimodal", fusion="concat", fields=("a",), metric=alone_metric),
        CompareRow(name="tensor", kind="fusion", fusion="tensor", fields=("a", "b"), error=error or None),
    )
    return Comparison(
        config={},
        task=Task(task_type, "y", ("c0", "c1") if task_type == "classification" else ()),
        fields=("a", "b"),
        held_out="test",
        held_out_rows=10,
        split_sizes={"train": 20, "val": 5, "test": 10},
        seed=0,
        rows=rows,
        prepare_seconds=0.0,
        seconds=1.0,
        latency_device="cpu, 1 thread",
        source="t.csv",
    )


def test_verdict_follows_the_metric_direction():
    wins = _synthetic(1.0, 2.0, "regression")  # rmse: lower is better
    assert [r.name for r in wins.ranked()] == ["gated", "a-only", "tensor"]
    assert "fusion wins by 1.0000 (+50.0%)" in wins.verdict()
    loses = _synthetic(0.6, 0.8, "classification")
    assert "does NOT beat it; it is 0.2000 worse (-25.0%)" in loses.verdict()
    assert "a tie" in _synthetic(0.5, 0.5, "classification").verdict()


def test_html_escapes_every_text():
    page = render_html(_synthetic(0.7, 0.6, "classification", error="<b>bad</b> & co"), "now", version="0")
    assert "<b>bad</b>" not in page and "&lt;b&gt;bad&lt;/b&gt; &amp; co" in page


def test_cli_compare_writes_the_reports(pumps_small, tmp_path: Path):
    cfg = _config(pumps_small, ["note", "specs"]).with_overrides(
        data={"path": str(pumps_small.table_path), "root": str(pumps_small.root)}
    )
    config = tmp_path / "plait.yaml"
    config.write_text(cfg.to_yaml())
    out = tmp_path / "out"
    runner = CliRunner()
    args = [
        "compare",
        str(config),
        "--fusion",
        "concat,late",
        "--epochs",
        "1",
        "--no-progress",
        "-o",
        str(out),
    ]
    result = runner.invoke(app, args, env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "[2/5] late: accuracy" in result.output and "note-only" in result.output
    assert "[5/5] boosting: accuracy" in result.output
    for name in ("compare.json", "compare.md", "compare.html"):
        assert (out / name).is_file() and f"wrote {out / name}" in " ".join(result.output.split())
    assert not (out / "bundles").exists()  # only with --bundles
    assert [
        r["name"] for r in json.loads((out / "compare.json").read_text())["rows"] if r["kind"] == "fusion"
    ]

    result = runner.invoke(app, ["compare", str(config), "--fusion", "concatt", "-o", str(out)])
    assert isinstance(result.exception, ConfigError) and "did you mean 'concat'" in str(result.exception)


def test_cli_compare_documents_itself():
    result = CliRunner().invoke(app, ["compare", "--help"])
    assert result.exit_code == 0 and "--no-unimodal" in result.output and "--bundles" in result.output


def test_compare_core_imports_no_lightning_or_typer():
    code = (
        "import sys, plait.compare, plait.compare.report, plait.evaluation.calibration\n"
        "print(','.join(sorted(n for n in sys.modules if n.split('.')[0] in ('lightning', 'typer'))))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_left_out_prefers_the_retrained_figure_and_says_none_when_unmeasured() -> None:
    plait_row = CompareRow(
        name="gated", kind="fusion", fusion="gated", fields=("a", "b"), without_field={"a": 0.7}
    )
    baseline = CompareRow(
        name="boosting", kind="baseline", fusion="boosting", fields=("a", "b"),
        without_field={"a": 0.6}, retrained_without={"a": 0.8},
    )  # fmt: skip
    assert plait_row.left_out("a") == 0.7 and plait_row.left_out("b") is None
    assert baseline.left_out("a") == 0.8  # retrained without the field, not the field absent
