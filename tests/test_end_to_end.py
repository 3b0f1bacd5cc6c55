"""train → bundle → load → predict, on a tiny generated set with every modality."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch

from plait import Predictor, load_bundle
from plait.bundle import FILES
from plait.config import Config
from plait.errors import BundleError, DataError, ModelNotFoundError
from plait.fusion import FUSIONS
from plait.workflow.train import train


def test_bundle_has_every_file_and_no_pickle(pumps_bundle):
    root = pumps_bundle.bundle_path
    for name in FILES:
        assert (root / name).is_file(), name
    meta = json.loads((root / "plait.json").read_text())
    assert meta["format_version"] == 1
    assert meta["task"]["classes"] == sorted(meta["task"]["classes"])
    assert [f["name"] for f in meta["fields"]] == ["vibration", "sound", "thermal", "note", "specs"]
    assert len(meta["model_id"]) == 16
    assert not list(root.glob("*.ckpt")) and not list(root.glob("*.pt"))
    provenance = json.loads((root / "provenance.json").read_text())
    assert provenance["media"]["count"] > 0 and len(provenance["table_sha256"]) == 64
    assert provenance["split"]["train"] + provenance["split"]["val"] + provenance["split"]["test"] == 150


def test_load_report_counts_corrupt_files(pumps_bundle):
    report = {f["field"]: f for f in pumps_bundle.trained.metrics["load_report"]["fields"]}
    assert report["thermal"]["absent"] >= 1 and "undecodable" in report["thermal"]["reasons"]
    assert report["note"]["absent"] >= 1
    assert sum(f["absent"] for f in report.values()) == pumps_bundle.load_report.absent_total


def test_loaded_bundle_predicts_like_the_trained_model(pumps_bundle, pumps_small):
    rows = pl.read_parquet(pumps_small.table_path).head(12)
    fresh = Predictor.from_trained(pumps_bundle.trained).predict(rows, root=pumps_small.root)
    loaded = Predictor.load(pumps_bundle.bundle_path).predict(rows, root=pumps_small.root)
    for a, b in zip(fresh, loaded, strict=True):
        assert a.prediction == b.prediction
        assert a.probabilities == pytest.approx(b.probabilities, abs=1e-6)
        assert a.model_id == b.model_id == pumps_bundle.trained.model_id


def test_predict_with_fields_missing_says_so(pumps_bundle, pumps_small):
    predictor = Predictor.load(pumps_bundle.bundle_path)
    row = pl.read_parquet(pumps_small.table_path).row(0, named=True)
    full = predictor.predict(row, root=pumps_small.root)[0]
    partial_row = {k: v for k, v in row.items() if k not in ("thermal", "sound")}
    partial = predictor.predict(partial_row, root=pumps_small.root)[0]
    assert set(partial.fields_missing) == {"thermal", "sound"}
    assert "thermal" not in partial.fields_used and partial.degraded
    assert partial.weights is not None and partial.weights["thermal"] == 0.0
    assert sum(partial.probabilities.values()) == pytest.approx(1.0, abs=1e-4)
    assert partial.prediction in predictor.trained.task.classes
    only_note = predictor.predict({"note": "bearing grinding loudly"}, root=pumps_small.root)[0]
    assert only_note.fields_used == ("note",)
    nothing = predictor.predict({}, root=pumps_small.root)[0]
    assert nothing.fields_used == () and nothing.degraded
    assert full.fields_used or full.degraded


def test_evaluate_on_table_reports_each_field_alone(pumps_bundle, pumps_small):
    result = Predictor.load(pumps_bundle.bundle_path).evaluate(pumps_small.table_path, rows="all")
    assert result["rows"] == 150
    assert set(result["single_field"]) == {"vibration", "sound", "thermal", "note", "specs"}
    assert 0.0 <= result["metrics"]["accuracy"] <= 1.0


def test_missing_bundle_and_incomplete_bundle(tmp_path: Path, pumps_bundle):
    with pytest.raises(ModelNotFoundError, match="no bundle at"):
        load_bundle(tmp_path / "nope")
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in ("plait.json", "config.yaml"):
        (broken / name).write_bytes((pumps_bundle.bundle_path / name).read_bytes())
    with pytest.raises(BundleError, match=r"missing model\.safetensors"):
        load_bundle(broken)


def _tabular_table(n: int, seed: int) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    kind = rng.choice(["a", "b"], size=n)
    y = 3.0 * x + np.where(kind == "a", 1.0, -1.0) + rng.normal(scale=0.1, size=n)
    vec = [list(v) for v in rng.normal(size=(n, 4))]
    return pl.DataFrame({"x": x, "kind": kind, "vec": vec, "y": y, "cls": np.where(y > 0, "pos", "neg")})


def _tabular_config(label: str, fusion: str = "concat", **train: object) -> Config:
    return Config.from_dict(
        {
            "task": {"label": label},
            "fields": {
                "specs": {"kind": "tabular", "numeric": ["x"], "categorical": ["kind"]},
                "vec": "embedding",
            },
            "model": {"fusion": fusion, "dim": 16, "hidden": 16},
            "train": {"epochs": 6, "progress": False, "batch_size": 32, **train},
        }
    )


def test_regression_learns_and_reports_in_target_units():
    df = _tabular_table(240, seed=1)
    result = train(_tabular_config("y", epochs=25, patience=25, lr=1e-2), table=df)
    assert result.trained.task.type == "regression"
    metrics = result.trained.metrics["metrics"]
    assert metrics["r2"] > 0.8, metrics
    prediction = Predictor.from_trained(result.trained).predict({"x": 1.0, "kind": "a"})[0]
    assert isinstance(prediction.prediction, float) and prediction.probabilities is None
    assert 1.5 < prediction.prediction < 6.5  # 3·1 + 1 = 4, in the label's own units


def test_same_config_data_and_seed_give_same_metrics():
    df = _tabular_table(160, seed=2)
    first = train(_tabular_config("cls", fusion="attention"), table=df).trained
    second = train(_tabular_config("cls", fusion="attention"), table=df).trained
    assert first.metrics["metrics"] == second.metrics["metrics"]
    for (k, a), (_, b) in zip(
        first.model.state_dict().items(), second.model.state_dict().items(), strict=True
    ):
        assert torch.equal(a, b), k


@pytest.mark.parametrize("fusion", FUSIONS.names())
def test_every_fusion_trains_and_round_trips(fusion: str, tmp_path: Path):
    df = _tabular_table(120, seed=4)
    result = train(_tabular_config("cls", fusion=fusion, epochs=2), table=df, out=tmp_path / fusion)
    loaded = Predictor.load(tmp_path / fusion)
    rows = df.head(8)
    a = Predictor.from_trained(result.trained).predict(rows)
    b = loaded.predict(rows)
    assert [p.probabilities for p in a] == [p.probabilities for p in b]


def test_bad_input_errors_name_what_is_wrong():
    df = _tabular_table(60, seed=5)
    with pytest.raises(DataError, match="did you mean 'cls'"):
        train(_tabular_config("clss"), table=df)
    with pytest.raises(DataError, match="single class"):
        train(_tabular_config("cls"), table=df.with_columns(pl.lit("pos").alias("cls")))
    text_in_numbers = df.with_columns(pl.col("x").cast(pl.Utf8)).with_columns(
        pl.when(pl.int_range(pl.len()) == 7).then(pl.lit("seven")).otherwise(pl.col("x")).alias("x")
    )
    with pytest.raises(DataError, match=r"(?s)column 'x'.*7.*seven"):
        train(_tabular_config("cls"), table=text_in_numbers)
    with pytest.raises(DataError, match="no rows"):
        train(_tabular_config("cls"), table=df.head(0))


def test_bf16_mixed_precision_trains_on_cpu():
    df = _tabular_table(96, seed=6)
    result = train(_tabular_config("cls", fusion="gated", epochs=2, precision="bf16-mixed"), table=df)
    assert result.trained.config.train.precision == "bf16-mixed"
    assert result.trained.metrics["training"]["epochs_run"] == 2
    weights = dict(result.trained.model.named_parameters())
    assert all(p.dtype == torch.float32 for p in weights.values())  # mixed: master weights stay fp32
    assert np.isfinite(result.trained.metrics["training"]["best_val_loss"])


def test_training_is_reproducible_across_processes(tmp_path: Path):
    """Same config + data + seed ⇒ same weights, even in fresh processes with other hash seeds
    (a tokenizer trainer that broke ties in hash order once made every run different)."""
    import os
    import subprocess
    import sys

    rng = np.random.default_rng(7)
    words = ["grinding", "humming", "hissing", "quiet", "hot", "leaking", "rattle", "normal"]
    df = pl.DataFrame(
        {
            "note": [" ".join(rng.choice(words, size=5)) for _ in range(80)],
            "x": rng.normal(size=80),
            "y": rng.choice(["a", "b"], size=80),
        }
    )
    df.write_csv(tmp_path / "t.csv")
    (tmp_path / "c.yaml").write_text(
        "data: {path: t.csv}\ntask: {label: y}\n"
        "fields: {note: {kind: text, vocab_size: 60}, specs: {kind: tabular, numeric: [x]}}\n"
        "model: {dim: 16, hidden: 16}\ntrain: {epochs: 2, progress: false}\n"
    )
    weights = []
    for seed in ("11", "12"):
        out = tmp_path / f"b{seed}"
        subprocess.run(
            [sys.executable, "-m", "plait.cli.main", "train", str(tmp_path / "c.yaml"), "-o", str(out)],
            check=True,
            capture_output=True,
            env={**os.environ, "PYTHONHASHSEED": seed},
        )
        weights.append((out / "model.safetensors").read_bytes())
    assert weights[0] == weights[1]


def test_saving_an_in_memory_predictor_gives_predictions_the_bundle_id(tmp_path: Path):
    df = _tabular_table(64, seed=8)
    predictor = Predictor(
        "cls", fields={"specs": {"kind": "tabular", "numeric": ["x"]}}, epochs=1, progress=False
    )
    predictor.fit(df)
    assert predictor.predict({"x": 0.5})[0].model_id == ""  # not saved yet: no content id to claim
    predictor.save(tmp_path / "b")
    saved_id = predictor.predict({"x": 0.5})[0].model_id
    assert saved_id == Predictor.load(tmp_path / "b").trained.model_id and len(saved_id) == 16


def test_predictor_infers_fields_from_a_table_path(pumps_small):
    predictor = Predictor(label="fault", epochs=1, progress=False).fit(pumps_small.table_path)
    kinds = {name: spec["kind"] for name, spec in predictor.config.to_dict()["fields"].items()}
    assert kinds == {
        "vibration": "timeseries",
        "sound": "audio",
        "thermal": "image",
        "note": "text",
        "tabular": "tabular",
    }
    assert predictor.trained.task.classes == tuple(sorted(pumps_small.classes))
