"""What training tells a person while it runs: one line per epoch without progress bars, and a
progress bar that stays on one line of an 80-column terminal."""

from __future__ import annotations

import re

import pytest

from plait.config import Config
from plait.training.callbacks import BAR_FIXED_COLUMNS, bar_metrics
from plait.training.fit import prepare
from plait.workflow.train import fit_prepared

LINE = re.compile(
    r"^(?:(?P<stage>\w+) )?epoch (?P<epoch>\d+)/(?P<of>\d+): train_loss (?P<train>\d+\.\d{3}), "
    r"val_loss (?P<val>\d+\.\d{3})(?:, val_acc (?P<acc>\d\.\d{3}))? \(\d+\.\d s\)$"
)


def _config(**train: object) -> Config:
    return Config.from_dict(
        {
            "task": {"label": "y"},
            "fields": {"vec": "embedding", "specs": {"kind": "tabular", "numeric": ["x"]}},
            "model": {"fusion": "concat", "dim": 8, "hidden": 8},
            "train": {"epochs": 3, "patience": 10, "progress": False, **train},
        }
    )


@pytest.fixture(scope="module")
def prepared(three_class_table):
    return prepare(_config(), table=three_class_table(240))


def _epoch_lines(said: list[str]) -> list[re.Match[str]]:
    return [m for m in map(LINE.match, said) if m is not None]


def test_without_progress_bars_say_hears_one_line_per_epoch(prepared) -> None:
    said: list[str] = []
    trained = fit_prepared(prepared, say=said.append).trained
    lines = _epoch_lines(said)
    history = trained.metrics["training"]["history"]
    assert len(lines) == len(history) == 3, said
    assert [int(m["epoch"]) for m in lines] == [1, 2, 3] and {m["of"] for m in lines} == {"3"}
    assert all(m["stage"] is None for m in lines)  # one stage: no stage name
    for line, row in zip(lines, history, strict=True):  # the history holds each epoch's own figures
        assert float(line["train"]) == pytest.approx(row["train_loss"], abs=5e-4)
        assert float(line["val"]) == pytest.approx(row["val_loss"], abs=5e-4)
        assert float(line["acc"]) == pytest.approx(row["val_accuracy"], abs=5e-4)


def test_each_line_names_its_stage_when_there_are_several(prepared) -> None:
    said: list[str] = []
    stages = [{"kind": "unimodal", "epochs": 2}, {"kind": "end_to_end", "epochs": 2}]
    config = prepared.config.with_overrides(train={"stages": stages})
    trained = fit_prepared(prepared, config=config, say=said.append).trained
    lines = _epoch_lines(said)
    runs = {s["kind"]: s["epochs_run"] for s in trained.metrics["training"]["stages"]}
    assert [m["stage"] for m in lines] == ["unimodal"] * runs["unimodal"] + ["end_to_end"] * runs[
        "end_to_end"
    ]
    assert lines[0]["acc"] is None and lines[-1]["acc"] is not None  # no fused output while unimodal


def test_the_bar_shows_the_metrics_that_fit() -> None:
    metrics = {"val_loss": 0.3881, "val_accuracy": 0.91}
    assert bar_metrics(metrics, 80 - BAR_FIXED_COLUMNS) == {"val_loss": 0.3881}
    assert bar_metrics(metrics, 120 - BAR_FIXED_COLUMNS) == {"val_loss": 0.3881, "val_acc": 0.91}
    assert bar_metrics(metrics, 5) == {}
    assert bar_metrics({"val_accuracy": 0.5}, 40) == {"val_acc": 0.5}


def test_the_progress_bar_fits_80_columns(prepared, monkeypatch, capsys) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    fit_prepared(prepared, config=prepared.config.with_overrides(train={"progress": True}))
    out = capsys.readouterr().out
    bars = [line for line in out.splitlines() if line.startswith("Epoch ")]
    assert bars, out
    for line in out.splitlines():
        assert len(line) <= 80, line
    assert all("val_loss: " in line for line in bars)
    assert not any(line.strip().startswith(("val_", "train_")) for line in out.splitlines())
