"""Every command once, through the real typer app."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from PIL import Image
from typer.testing import CliRunner

from plait.cli.main import app

runner = CliRunner()


@pytest.fixture()
def table(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    (tmp_path / "img").mkdir()
    n = 48
    labels = rng.choice(["ok", "worn"], size=n)
    for i, label in enumerate(labels):
        shade = 200 if label == "worn" else 40
        Image.new("RGB", (12, 12), (shade, shade // 2, 0)).save(tmp_path / "img" / f"{i}.png")
    words = {
        "ok": "routine inspection nothing unusual found today",
        "worn": "grinding noise near the bearing",
    }
    df = pl.DataFrame(
        {
            "item_id": [f"id-{i}" for i in range(n)],
            "photo": [f"img/{i}.png" for i in range(n)],
            "remarks": [words[v] + f" number {i}" for i, v in enumerate(labels)],
            "hours": rng.normal(100, 10, size=n),
            "plant": rng.choice(["north", "south"], size=n),
            "state": labels,
        }
    )
    path = tmp_path / "items.csv"
    df.write_csv(path)
    return path


def test_init_train_evaluate_predict(table: Path, tmp_path: Path):
    config = tmp_path / "plait.yaml"
    result = runner.invoke(app, ["init", str(table), "--label", "state", "-o", str(config)])
    assert result.exit_code == 0, result.output
    assert "image" in result.output and "wrote" in result.output
    text = config.read_text()
    assert (
        "photo:" in text
        and "kind: image" in text
        and "item_id" not in text.split("fields:")[1].split("model:")[0]
    )

    bundle = tmp_path / "bundle"
    result = runner.invoke(
        app, ["train", str(config), "--out", str(bundle), "--epochs", "2", "--no-progress"]
    )
    assert result.exit_code == 0, result.output
    assert (bundle / "model.safetensors").is_file()
    assert "photo alone" in result.output

    report = tmp_path / "ev"
    result = runner.invoke(
        app, ["evaluate", str(bundle), str(table), "-o", str(report), "--rows", "all", "--no-robustness"]
    )
    assert result.exit_code == 0, result.output
    assert json.loads((report / "metrics.json").read_text())["data"]["rows"] == 48
    assert (report / "report.html").is_file()

    partial = tmp_path / "partial.jsonl"
    pl.read_csv(table).drop("photo").head(5).write_ndjson(partial)
    out = tmp_path / "pred.csv"
    result = runner.invoke(
        app, ["predict", str(bundle), str(partial), "-o", str(out), "--root", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    preds = pl.read_csv(out)
    assert preds.height == 5 and preds["degraded"].all()
    assert set(preds.columns) >= {
        "prediction",
        "prob_ok",
        "prob_worn",
        "fields_used",
        "fields_imputed",
        "fields_missing",
        "model_id",
    }
    assert all("photo" in m for m in preds["fields_missing"].to_list())


def test_errors_exit_2_with_message(tmp_path: Path, table: Path, capsys):
    from plait.cli.main import main

    bad = tmp_path / "bad.yaml"
    bad.write_text("task: {label: state}\nfields: {photo: {kind: imag}}\n")
    with pytest.raises(SystemExit) as exit_info:
        import sys

        sys.argv = ["plait", "train", str(bad)]
        main()
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "fields.photo.kind: unknown kind 'imag'; did you mean 'image'?" in " ".join(err.split())


def test_init_refuses_to_overwrite(table: Path, tmp_path: Path):
    config = tmp_path / "plait.yaml"
    config.write_text("keep me")
    from plait.errors import ConfigError

    result = runner.invoke(app, ["init", str(table), "--label", "state", "-o", str(config)])
    assert isinstance(result.exception, ConfigError) and "--force" in str(result.exception)
    assert config.read_text() == "keep me"


@pytest.mark.parametrize(
    "command",
    ["init", "align", "train", "compare", "evaluate", "predict", "embed", "search", "serve", "demo"],
)
def test_every_command_documents_itself(command: str):
    result = runner.invoke(app, [command, "--help"])
    assert result.exit_code == 0
    assert "Usage" in result.output and len(result.output.splitlines()) > 5


@pytest.mark.parametrize(
    ("source", "tabular_field"), [("streams", "machines"), ("table", "specs")], ids=["streams", "table"]
)
def test_demo_small(tmp_path: Path, source: str, tabular_field: str):
    out = tmp_path / "demo"
    result = runner.invoke(
        app,
        ["demo", "--out", str(out), "--rows", "90", "--source", source, "--no-progress"],
        env={"COLUMNS": "200"},
    )
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "demo.json").read_text())
    assert set(summary["single_field_accuracy"]) == {"vibration", "sound", "thermal", "note", tabular_field}
    assert 0.0 <= summary["fused_accuracy"] <= 1.0 and summary["seconds"] > 0
    assert (out / "bundle" / "plait.json").is_file()
    assert "all fields (fused)" in result.output
    if source == "streams":
        assert "alignment: 90 samples from 90 anchors" in result.output
        assert summary["alignment"]["anchors"] == 90
        assert (out / "data" / "samples.parquet").is_file() and (out / "data" / "plait.yaml").is_file()
    else:
        assert "alignment" not in summary and (out / "plait.yaml").is_file()


# ---- paths and names checked before a bundle is loaded or a row is read -----------------------------


def said(output: str) -> str:
    """The CLI's output as one line: the error box's borders and line breaks removed."""
    return " ".join(re.sub("[│╭╮╰╯─]", " ", output).split())


@pytest.fixture()
def nothing_loaded(monkeypatch: pytest.MonkeyPatch) -> None:
    import plait.bundle
    import plait.predictor

    def load(*args: object, **kwargs: object) -> None:
        raise AssertionError("a bundle was loaded before the command line was checked")

    monkeypatch.setattr(plait.bundle, "load_bundle", load)
    monkeypatch.setattr(plait.predictor.Predictor, "load", load)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["predict", "{bundle}", "{table}", "-o", "{tmp}/preds.xlsx"],
            "Invalid value for --out: {tmp}/preds.xlsx: cannot write predictions as '.xlsx'; end the "
            "file name in one of .parquet, .pq, .csv, .jsonl, .ndjson",
        ),
        (
            ["predict", "{tmp}/bundel", "{table}", "-o", "{tmp}/preds.csv"],
            "Invalid value for BUNDLE: {tmp}/bundel does not exist; expected a bundle directory",
        ),
        (
            ["predict", "{bundle}", "{tmp}/nope.csv", "-o", "{tmp}/preds.csv"],
            "Invalid value for DATA: the table {tmp}/nope.csv does not exist",
        ),
        (
            ["evaluate", "{bundle}", "{table}", "--out", "{tmp}/metrics.json"],
            "Invalid value for --out: {tmp}/metrics.json: --out is a folder",
        ),
        (
            ["evaluate", "{bundle}", "{table}", "--out", "{table}"],
            "--out is a folder (it gets metrics.json and report.html), and this is an existing file",
        ),
        (
            ["evaluate", "{bundle}", "{table}", "--baseline", "{tmp}/late"],
            "Invalid value for --baseline: {tmp}/late does not exist",
        ),
        (
            ["evaluate", "{bundle}", "{table}", "--rows", "tset"],
            "Invalid value for --rows: unknown row choice 'tset'; did you mean 'test'?",
        ),
    ],
    ids=[
        "predict-format",
        "predict-bundle",
        "predict-data",
        "evaluate-json",
        "evaluate-file",
        "baseline",
        "rows",
    ],
)
def test_predict_and_evaluate_check_their_paths_first(
    table: Path, tmp_path: Path, nothing_loaded: None, args: list[str], message: str
) -> None:
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    where = {"bundle": str(bundle), "table": str(table), "tmp": str(tmp_path)}
    result = runner.invoke(app, [a.format(**where) for a in args], env={"COLUMNS": "200"})
    assert result.exit_code == 2, result.output
    assert message.format(**where) in said(result.output), said(result.output)


def test_train_fails_fast_on_a_misspelled_fusion(
    table: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    import plait.training.fit

    monkeypatch.setattr(plait.training.fit, "read_table", lambda p: pytest.fail(f"read {p}"))
    config = tmp_path / "plait.yaml"
    config.write_text(
        f"data: {{path: {table}}}\ntask: {{label: state}}\nfields: {{photo: image}}\n"
        "model: {fusion: gatd}\n"
    )
    result = runner.invoke(app, ["train", str(config), "--no-progress"])
    assert "model.fusion: unknown fusion 'gatd'; did you mean 'gated'?" in str(result.exception)
