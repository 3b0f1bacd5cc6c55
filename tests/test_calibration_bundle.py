"""Per-subset temperature scaling as part of the bundle: calibration.json written, read, checked
and counted in the content id; Predictor scales each row by its own fields' temperature; training
fits it on the validation rows of classification models only."""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
import torch

from plait import Predictor, load_bundle, save_bundle
from plait.bundle import FILES, TrainedModel, bundle_content_id
from plait.config import Config
from plait.data.dataset import load_rows
from plait.errors import BundleError
from plait.models.calibration import SubsetFit, SubsetTemperatures
from plait.models.inference import run_model
from plait.training.fit import prepare
from plait.workflow.train import TrainResult, fit_prepared, train

FIELDS = ("vec", "specs")
# Distinct temperatures per subset so that a row scaled by the wrong one fails the test.
T_ALL, T_VEC, T_SPECS, T_FALLBACK = 0.5, 3.0, 2.0, 1.7


def _config(label: str, **data: Any) -> Config:
    return Config.from_dict(
        {
            "data": data,
            "task": {"label": label},
            "fields": {"vec": "embedding", "specs": {"kind": "tabular", "numeric": ["x"]}},
            "model": {"fusion": "concat", "dim": 8, "hidden": 8},
            "train": {"epochs": 3, "lr": 0.01, "progress": False},
        }
    )


@pytest.fixture(scope="module")
def classifier(three_class_table, tmp_path_factory: pytest.TempPathFactory) -> tuple[TrainResult, list[str]]:
    said: list[str] = []
    out = tmp_path_factory.mktemp("calibrated") / "bundle"
    return train(_config("y"), table=three_class_table(240), out=out, say=said.append), said


def _fit(fields: tuple[str, ...], temperature: float) -> SubsetFit:
    return SubsetFit(
        fields=fields, temperature=temperature, rows=40, errors=6, ece_before=0.2, ece_after=0.05, fitted=True
    )


def _by_hand(fields: tuple[str, ...] = FIELDS) -> SubsetTemperatures:
    return SubsetTemperatures(
        fields=fields,
        fallback=T_FALLBACK,
        subsets=(_fit(("specs", "vec"), T_ALL), _fit(("vec",), T_VEC), _fit(("specs",), T_SPECS)),
        rows=120,
    )


def _rows(three_class_table) -> list[dict[str, Any]]:
    """Two complete rows, then: no x (specs absent), no vec, nothing at all."""
    full = three_class_table(6, seed=9).drop("y").to_dicts()
    return [full[0], full[1], {"vec": full[2]["vec"]}, {"x": full[3]["x"]}, {}]


ROW_TEMPERATURES = [T_ALL, T_ALL, T_VEC, T_SPECS, T_FALLBACK]


def _raw_logits(trained: TrainedModel, rows: list[dict[str, Any]]) -> torch.Tensor:
    tensors, _ = load_rows(rows, trained.modalities, Path.cwd())
    return run_model(trained.model, tensors).output  # (N, K)


def _probabilities(prediction: Any, classes: tuple[str, ...]) -> list[float]:
    return [prediction.probabilities[c] for c in classes]


# --- the bundle file ---------------------------------------------------------------------------


def test_round_trip_keeps_every_temperature_exactly(classifier, tmp_path: Path) -> None:
    temps = replace(_by_hand(), fallback=1.2345678901234567)
    save_bundle(replace(classifier[0].trained, calibration=temps), tmp_path / "b")
    loaded = load_bundle(tmp_path / "b").calibration
    assert loaded == temps
    assert loaded is not None and loaded.temperature_for(["specs"]) == T_SPECS
    assert loaded.fallback == 1.2345678901234567


def test_content_id_counts_calibration_only_when_the_bundle_has_it(classifier, tmp_path: Path) -> None:
    bare = replace(classifier[0].trained, calibration=None)
    root = save_bundle(bare, tmp_path / "b")
    assert not (root / "calibration.json").exists()
    old_formula = hashlib.sha256()  # the id every bundle had before calibration.json existed
    for name in ("model.safetensors", "preprocessing.json", "config.yaml"):
        old_formula.update(name.encode())
        old_formula.update((root / name).read_bytes())
    plain_id = bundle_content_id(root)
    assert (
        plain_id == old_formula.hexdigest()[:16] == json.loads((root / "plait.json").read_text())["model_id"]
    )

    save_bundle(replace(bare, calibration=_by_hand()), root)
    calibrated_id = bundle_content_id(root)
    assert (root / "calibration.json").is_file() and calibrated_id != plain_id
    assert json.loads((root / "plait.json").read_text())["model_id"] == calibrated_id

    save_bundle(bare, root)  # re-saved uncalibrated over the calibrated bundle: no stale file
    assert not (root / "calibration.json").exists()
    assert bundle_content_id(root) == plain_id
    assert load_bundle(root).calibration is None


def test_a_bundle_without_calibration_loads_and_predicts_raw(classifier, three_class_table, tmp_path) -> None:
    old = tmp_path / "old"
    shutil.copytree(classifier[0].bundle_path, old)
    (old / "calibration.json").unlink()  # as bundles were before calibration: their id without it
    meta = json.loads((old / "plait.json").read_text())
    meta = {**{k: v for k, v in meta.items() if k != "checksums"}, "model_id": bundle_content_id(old)}
    (old / "plait.json").write_text(json.dumps(meta))
    trained = load_bundle(old)
    assert trained.calibration is None and set(FILES) <= {p.name for p in old.iterdir()}
    rows = _rows(three_class_table)
    raw = _raw_logits(trained, rows).softmax(dim=-1)
    for p, expected in zip(Predictor.load(old).predict(rows), raw, strict=True):
        assert p.temperature is None and p.to_json()["temperature"] is None
        assert _probabilities(p, trained.task.classes) == pytest.approx(expected.tolist(), abs=1e-6)


def test_calibration_for_other_fields_is_refused(classifier, tmp_path: Path) -> None:
    root = tmp_path / "b"
    shutil.copytree(classifier[0].bundle_path, root)
    other = SubsetTemperatures(fields=("vec",), fallback=1.5, subsets=(), rows=10)
    (root / "calibration.json").write_text(json.dumps(other.to_json()))
    with pytest.raises(BundleError, match=r"calibration\.json.*\['vec'\].*\['vec', 'specs'\]"):
        load_bundle(root)
    with pytest.raises(BundleError, match=r"calibration\.json.*\['vec'\].*\['vec', 'specs'\]"):
        save_bundle(replace(classifier[0].trained, calibration=other), tmp_path / "c")
    (root / "calibration.json").write_text(json.dumps({"version": 1, "fields": ["vec", "specs"]}))
    with pytest.raises(BundleError, match=r"calibration\.json: subset temperatures: malformed"):
        load_bundle(root)


# --- Predictor ---------------------------------------------------------------------------------


def test_each_row_is_scaled_by_the_temperature_of_its_own_fields(classifier, three_class_table) -> None:
    trained = replace(classifier[0].trained, calibration=_by_hand())
    rows = _rows(three_class_table)
    logits = _raw_logits(trained, rows)
    predictions = Predictor.from_trained(trained).predict(rows)
    assert [p.fields_used for p in predictions] == [FIELDS, FIELDS, ("vec",), ("specs",), ()]
    assert [p.temperature for p in predictions] == ROW_TEMPERATURES
    assert [p.to_json()["temperature"] for p in predictions] == ROW_TEMPERATURES
    for p, row_logits, t in zip(predictions, logits, ROW_TEMPERATURES, strict=True):
        expected = (row_logits / t).softmax(dim=-1).tolist()
        assert _probabilities(p, trained.task.classes) == pytest.approx(expected, abs=1e-6)
    raw = logits.softmax(dim=-1).tolist()  # the scaling must show: T ≠ 1 moves the probabilities
    moved = [
        abs(_probabilities(p, trained.task.classes)[0] - r[0]) for p, r in zip(predictions, raw, strict=True)
    ]
    assert max(moved) > 1e-3


def test_uncalibrated_gives_raw_softmax_and_the_same_classes(classifier, three_class_table) -> None:
    trained = replace(classifier[0].trained, calibration=_by_hand())
    rows = _rows(three_class_table) + three_class_table(40, seed=11).drop("y").to_dicts()
    logits = _raw_logits(trained, rows)
    predictor = Predictor.from_trained(trained)
    scaled = predictor.predict(rows)
    raw, report = predictor.predict_with_report(rows, calibrated=False)
    assert report.rows == len(rows)
    classes = trained.task.classes
    for p, row_logits in zip(raw, logits, strict=True):
        assert p.temperature is None
        assert _probabilities(p, classes) == pytest.approx(row_logits.softmax(dim=-1).tolist(), abs=1e-6)
    assert [p.prediction for p in scaled] == [p.prediction for p in raw]
    assert [p.prediction for p in scaled] == [classes[int(i)] for i in logits.argmax(dim=1)]
    for p in scaled:
        assert p.prediction == max(p.probabilities, key=p.probabilities.__getitem__)


# --- training ----------------------------------------------------------------------------------


def test_training_a_classifier_writes_its_calibration(classifier, three_class_table) -> None:
    result, said = classifier
    root = result.bundle_path
    assert root is not None and (root / "calibration.json").is_file()
    on_disk = json.loads((root / "calibration.json").read_text())
    metrics = json.loads((root / "metrics.json").read_text())
    assert metrics["calibration"] == on_disk
    assert on_disk["fields"] == list(FIELDS) and on_disk["rows"] == len(result.split.val) > 0
    assert (
        result.trained.calibration == SubsetTemperatures.from_json(on_disk) == load_bundle(root).calibration
    )
    assert result.trained.model_id == bundle_content_id(root)
    line = [s for s in said if s.startswith("calibration on ")]
    assert len(line) == 1 and f"on {len(result.split.val)} validation rows" in line[0]
    predictions = Predictor.load(root).predict(_rows(three_class_table))
    assert all(p.temperature is not None and p.temperature > 0 for p in predictions)


def test_regression_and_no_validation_rows_are_not_calibrated(three_class_table, tmp_path: Path) -> None:
    table = three_class_table(120, seed=5).with_columns(target=pl.Series(np.linspace(0.0, 1.0, 120)))
    result = train(_config("target"), table=table.drop("y"), out=tmp_path / "reg")
    assert result.trained.task.type == "regression" and result.trained.calibration is None
    assert not (tmp_path / "reg" / "calibration.json").exists()
    assert "calibration" not in json.loads((tmp_path / "reg" / "metrics.json").read_text())
    assert Predictor.from_trained(result.trained).predict({"x": 0.3})[0].temperature is None

    said: list[str] = []
    prepared = prepare(_config("y", val_fraction=0.0), table=three_class_table(90, seed=6))
    unvalidated = fit_prepared(prepared, say=said.append).trained
    assert len(prepared.split.val) == 0 and unvalidated.calibration is None
    assert "calibration" not in unvalidated.metrics
    assert not any(s.startswith("calibration on ") for s in said)
