"""Every command once, through the real typer app."""

from __future__ import annotations

import json
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
    "command", ["init", "align", "train", "compare", "evaluate", "predict", "serve", "demo"]
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
