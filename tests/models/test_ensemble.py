"""Seed ensembles (issue 15): N models trained with seeds seed…seed+N−1 in one bundle that predicts
their average, with presence masks, calibration and the bundle format intact."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch

from plait.bundle import load_bundle
from plait.config import Config
from plait.errors import ConfigError
from plait.models.ensemble import MemberEncoders, ensemble_model
from plait.models.inference import run_model
from plait.predictor import Predictor
from plait.training.fit import fit_model, prepare
from plait.workflow.train import fit_prepared, train


def _table(rows: int = 150, seed: int = 0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, rows)
    centres = rng.normal(size=(3, 6)) * 1.5
    return pl.DataFrame(
        {
            "vec": [list(v) for v in centres[y] + rng.normal(size=(rows, 6))],
            "x": y + rng.normal(size=rows),
            "y": [f"c{v}" for v in y],
        }
    )


def _config(**train: object) -> Config:
    return Config.from_dict(
        {
            "task": {"label": "y"},
            "fields": {"vec": "embedding", "specs": {"kind": "tabular", "numeric": ["x"]}},
            "model": {"fusion": "gated", "dim": 8, "hidden": 8},
            "train": {"epochs": 3, "progress": False, **train},
        }
    )


def test_an_ensemble_averages_its_members_probabilities_under_any_presence() -> None:
    prepared = prepare(_config(), table=_table())
    members = [
        fit_model(prepared, config=prepared.config.with_overrides(train={"seed": s})).trained.model.eval()
        for s in (0, 1, 2)
    ]
    model = ensemble_model(members, classification=True).eval()
    assert isinstance(model.encoders["vec"], MemberEncoders) and model.encoders["vec"].output_dim == 24
    rows = torch.arange(20)
    batch = prepared.tensors.batch(rows)
    for present in (batch.present, {**batch.present, "specs": torch.zeros(20, dtype=torch.bool)}):
        with torch.no_grad():
            got = model.decide(model.encode(batch), present)
            each = torch.stack([m.decide(m.encode(batch), present).output.softmax(-1) for m in members])
        torch.testing.assert_close(got.output.softmax(-1), each.mean(0), atol=1e-5, rtol=1e-5)
        assert got.weights is not None and got.weights.shape == (20, 2)  # gates, averaged
    with pytest.raises(ConfigError, match="2 to 32 members"):
        ensemble_model(members[:1], classification=True)


def test_train_ensemble_writes_one_bundle_that_loads_calibrates_and_serves(tmp_path: Path) -> None:
    table = _table()
    result = train(_config(ensemble=3, seed=4), table=table, out=tmp_path / "bundle", report=True)
    trained = result.trained
    assert result.report is not None and (tmp_path / "bundle" / "report.html").is_file()  # full evaluation
    record = trained.metrics["ensemble"]
    assert record["members"] == 3 and record["seeds"] == [4, 5, 6]
    assert len(record["member_metrics"]) == 3 and record["metric"] == "accuracy"
    assert record["ensemble"] == pytest.approx(trained.metrics["metrics"]["accuracy"])
    assert trained.calibration is not None  # temperatures fitted on the ensemble's own outputs
    # every member is the model a one-model run with its seed trains on the same split
    prepared = prepare(_config(seed=4), table=table)
    alone = fit_prepared(prepared, config=prepared.config.with_overrides(train={"seed": 5})).trained
    assert record["member_metrics"][1] == pytest.approx(alone.metrics["metrics"]["accuracy"], abs=1e-6)

    loaded = load_bundle(tmp_path / "bundle")
    assert loaded.config.train.ensemble == 3 and loaded.model_id == trained.model_id
    tensors = prepare(_config(), table=table).tensors
    rows = torch.arange(len(table))
    saved = run_model(trained.model.eval(), tensors, rows).output
    torch.testing.assert_close(run_model(loaded.model, tensors, rows).output, saved)
    answers = Predictor.load(tmp_path / "bundle").predict(table.head(4).drop("y"))
    assert len(answers) == 4 and all(a.prediction in {"c0", "c1", "c2"} for a in answers)
    partial = Predictor.load(tmp_path / "bundle").predict(table.head(2).drop("y", "x"))
    assert all(a.fields_missing == ("specs",) for a in partial)
    saved_metrics = json.loads((tmp_path / "bundle" / "metrics.json").read_text())
    assert saved_metrics["ensemble"]["members"] == 3


def test_ensemble_size_is_checked() -> None:
    with pytest.raises(ConfigError, match=r"train\.ensemble"):
        _config(ensemble=0)
    with pytest.raises(ConfigError, match=r"train\.ensemble"):
        _config(ensemble=33)


def test_the_server_answers_with_an_ensemble_bundle(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from plait.serving.app import create_app
    from plait.serving.settings import ServeSettings

    table = _table(90)
    train(_config(ensemble=2, epochs=1), table=table, out=tmp_path / "bundle")
    row = {"vec": table["vec"][0].to_list(), "x": float(table["x"][0])}
    settings = ServeSettings(api_key=None, inference="thread")
    with TestClient(create_app(tmp_path / "bundle", settings)) as client:
        full = client.post("/v1/predict", json=row).json()
        partial = client.post("/v1/predict", json={"vec": row["vec"]}).json()
    assert full["prediction"] in {"c0", "c1", "c2"} and full["fields_missing"] == []
    assert partial["fields_missing"] == ["specs"] and partial["degraded"] is True
