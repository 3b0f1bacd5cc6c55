"""A shared space from a table with no label column: contrastive stages alone, a bundle that
embeds, searches and imputes, reports its retrieval, and refuses to predict with a clear message."""

from __future__ import annotations

import numpy as np
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from conftest import latent_pairs
from plait.bundle import load_bundle
from plait.cli.main import app
from plait.config import Config
from plait.errors import ConfigError
from plait.predictor import Predictor
from plait.serving.app import create_app
from plait.serving.settings import ServeSettings

runner = CliRunner()


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    from plait.workflow.train import train

    folder = tmp_path_factory.mktemp("labelfree")
    latent_pairs(300, seed=5).drop("y").write_parquet(folder / "pairs.parquet")
    cfg = Config.from_dict(
        {
            "data": {"path": "pairs.parquet", "split": {"kind": "random"}},
            "fields": {"va": "embedding", "vb": "embedding"},
            "space": {"dim": 16, "impute": True},
            "train": {"stages": [{"kind": "contrastive", "epochs": 12}], "progress": False, "patience": 12},
        },
        base_dir=folder,
    )
    assert not cfg.labelled
    return train(cfg, out=folder / "bundle", report=True)


def test_trains_without_labels_and_reports_retrieval(run) -> None:
    metrics = run.trained.metrics
    assert metrics["metrics"] == {} and run.trained.task.type == "embedding"
    forward = metrics["space"]["retrieval"][0]
    assert forward["label"] is None  # no labels: instance level only
    assert forward["instance"]["recall"]["1"] > 5 / forward["instance"]["candidates"]
    assert metrics["training"]["stages"][0]["kind"] == "contrastive"
    assert "imputer" in metrics["training"]
    assert metrics["space"]["imputation"] == []  # no task: nothing to score imputing against
    html = (run.bundle_path / "report.html").read_text()
    assert "va → vb" in html


def test_the_bundle_embeds_searches_and_imputes_but_does_not_predict(run, tmp_path) -> None:
    predictor = Predictor.load(run.bundle_path)
    table = run.bundle_path.parent / "pairs.parquet"
    e = predictor.embed(table, field="vb")
    assert e.vectors.shape[1] == 16 and np.isfinite(e.vectors[e.present]).all()
    with pytest.raises(ConfigError, match=r"trained without labels.*predicts nothing"):
        predictor.predict([{"va": [0.0] * 8}])
    result = runner.invoke(
        app,
        [
            "search",
            str(run.bundle_path),
            "--index",
            str(table),
            "--from",
            "va",
            "--to",
            "vb",
            "--query-row",
            "2",
        ],
    )
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["evaluate", str(run.bundle_path), str(table)])
    assert result.exit_code != 0 and "trained without labels" in str(result.exception) + result.output
    assert load_bundle(run.bundle_path).task.predicts is False
    with TestClient(create_app(run.bundle_path, ServeSettings(api_key=None, inference="thread"))) as client:
        refused = client.post("/v1/predict", json={"va": [0.0] * 8})
        assert refused.status_code == 422 and "/v1/embed" in refused.json()["error"]["message"]
        body = client.post("/v1/embed?impute=embedding", json={"va": [0.1] * 8}).json()
        assert body["fields_imputed"] == ["vb"] and body["embeddings"]["vb"] is not None


def test_a_config_without_task_must_be_contrastive_only() -> None:
    with pytest.raises(ConfigError, match=r"task: missing.*contrastive stages only"):
        Config.from_dict({"fields": {"a": "text", "b": "image"}})
    with pytest.raises(ConfigError, match=r"task: missing"):
        Config.from_dict(
            {
                "fields": {"a": "text", "b": "image"},
                "train": {
                    "stages": [{"kind": "contrastive", "epochs": 2}, {"kind": "end_to_end", "epochs": 2}]
                },
            }
        )


def test_compare_says_a_label_free_config_compares_nothing(run) -> None:
    from plait.compare.crossval import cross_validate
    from plait.compare.run import compare

    config = run.trained.config
    with pytest.raises(ConfigError, match=r"plait compare.*trained without labels"):
        compare(config, ["gated"])
    with pytest.raises(ConfigError, match=r"cross-validation.*trained without labels"):
        cross_validate(config, ["gated"], folds=2)
