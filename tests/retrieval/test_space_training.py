"""Training with a shared space end to end: the contrastive stage learns a space where each row's
two views find each other, the bundle keeps it, and the evaluation and report show retrieval."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from plait.bundle import load_bundle
from plait.evaluation.result import EvaluationReport
from plait.training.module import PlaitModule, build_probes
from plait.types import Batch


def test_contrastive_training_finds_each_rows_other_view(space_run) -> None:
    space = space_run.trained.metrics["space"]
    directions = {(d["query"], d["target"]): d for d in space["retrieval"]}
    assert set(directions) == {("va", "vb"), ("vb", "va")}
    forward = directions[("va", "vb")]
    n = forward["instance"]["candidates"]
    assert n >= 40
    assert forward["instance"]["recall"]["1"] > 10 / n  # chance is 1/n
    assert forward["instance"]["median_rank"] < n / 10
    assert forward["label"]["recall"]["1"] >= forward["instance"]["recall"]["1"]
    stages = space_run.trained.metrics["training"]["stages"]
    assert [s["kind"] for s in stages] == ["contrastive", "end_to_end"]
    assert space_run.trained.metrics["metrics"]["accuracy"] > 0.6  # the task still learned


def test_contrastive_val_loss_falls(space_run) -> None:
    history = [h for h in space_run.trained.metrics["training"]["history"] if h["stage"] == "contrastive"]
    assert history[-1]["val_loss"] < history[0]["val_loss"]


def test_bundle_keeps_the_space_and_report_has_its_section(space_run) -> None:
    loaded = load_bundle(space_run.bundle_path)
    assert loaded.model.space is not None and loaded.model.space.fields == ("va", "vb")
    for name, tensor in space_run.trained.model.space.state_dict().items():
        assert torch.equal(loaded.model.space.state_dict()[name], tensor)
    html = (space_run.bundle_path / "report.html").read_text()
    assert 'id="space"' in html and "va → vb" in html and "R@10" in html
    raw = json.loads((space_run.bundle_path / "evaluation.json").read_text())
    report = EvaluationReport.from_json(raw)
    assert report.space is not None and len(report.space.directions) == 2
    assert report.to_json()["space"] == raw["space"]


def test_contrastive_stage_trains_encoders_and_space_only(space_run) -> None:
    trained = space_run.trained
    module = PlaitModule(
        trained.model,
        build_probes(trained.model, 3),
        task=trained.task,
        lr=1e-3,
        weight_decay=0.0,
        modality_dropout=0.0,
        max_epochs=1,
        seed=0,
        stage="contrastive",
    )
    model = trained.model
    assert all(p.requires_grad for p in model.encoders.parameters())
    assert all(p.requires_grad for p in model.space.parameters())
    assert not any(p.requires_grad for p in model.fusion.parameters())
    assert not any(p.requires_grad for p in model.head.parameters())
    g = torch.Generator().manual_seed(0)
    batch = Batch(  # no target: a contrastive step needs no labels
        values={"va": torch.randn(6, 8, generator=g), "vb": torch.randn(6, 6, generator=g)},
        present={"va": torch.ones(6, dtype=torch.bool), "vb": torch.ones(6, dtype=torch.bool)},
    )
    total, task_loss, probes, output = module._step_losses(batch)
    assert probes == {} and output is None and torch.equal(total, task_loss)
    total.backward()
    assert model.space.projections["va"].weight.grad is not None
    assert all(p.grad is None for p in model.head.parameters())
    model.zero_grad(set_to_none=True)
    from plait.training.module import set_trainable

    set_trainable(model, True)


def test_a_contrastive_stage_trains_only_what_its_pairs_reach() -> None:
    """Under DDP every trainable parameter must get a gradient: the encoder and projection of a
    field outside the stage's pairs, and the imputer, are frozen for the stage."""
    from plait.fusion.gated import GatedFusion
    from plait.models.fusion_model import FusionModel
    from plait.models.heads import MLPHead
    from plait.models.imputer import EmbeddingImputer
    from plait.models.space import SharedSpace
    from plait.task import Task
    from plait.testing.dummies import DummyEncoder

    dims = {"a": 4, "b": 4, "c": 4}
    encoders = {f: DummyEncoder(d, 8) for f, d in dims.items()}
    space = SharedSpace(dict.fromkeys(dims, 8), dim=4, pairs=[("a", "b"), ("b", "c")])
    model = FusionModel(
        encoders,
        GatedFusion(dict.fromkeys(dims, 8), 8),
        MLPHead(8, 8, 2),
        space=space,
        imputer=EmbeddingImputer(("a", "b", "c"), dict.fromkeys(dims, 8), 4),
    )
    task = Task("classification", "y", ("p", "q"))
    PlaitModule(
        model, build_probes(model, 2), task=task, lr=1e-3, weight_decay=0.0, modality_dropout=0.0,
        max_epochs=1, seed=0, stage="contrastive", pairs=(("a", "b"),),
    )  # fmt: skip
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    reached = (
        "encoders.a.",
        "encoders.b.",
        "space.projections.a.",
        "space.projections.b.",
        "space.log_scale",
    )
    assert trainable == {n for n, _ in model.named_parameters() if n.startswith(reached)}


def test_a_model_without_space_says_how_to_get_one(pumps_bundle) -> None:
    from plait.errors import ConfigError
    from plait.predictor import Predictor

    predictor = Predictor.from_trained(pumps_bundle.trained)
    with pytest.raises(ConfigError, match=r"no shared space.*`space:` section"):
        predictor.embed([{"note": "x"}], field="note")
    assert "space" not in pumps_bundle.trained.metrics
    assert np.isfinite(pumps_bundle.trained.metrics["metrics"]["accuracy"])


def test_a_contrastive_stage_also_learns_from_rows_without_labels(tmp_path) -> None:
    """With most labels hidden, the contrastive stage trains on the unlabelled rows too (they never
    reach a supervised stage or a metric); a grouped split keeps them out of held-out groups."""
    import polars as pl

    from conftest import latent_pairs
    from plait.config import Config
    from plait.workflow.train import train

    df = latent_pairs(300, seed=4).with_columns(
        pl.when(pl.int_range(pl.len()) % 5 == 0).then(pl.col("y")).otherwise(None).alias("y"),
        (pl.int_range(pl.len()) // 7 % 10).cast(pl.String).alias("site"),
    )
    df.write_parquet(tmp_path / "few.parquet")
    cfg = Config.from_dict(
        {
            "data": {"path": "few.parquet", "split": {"group": "site"}},
            "task": {"label": "y"},
            "fields": {"va": "embedding", "vb": "embedding"},
            "space": {"dim": 8},
            "train": {
                "stages": [{"kind": "contrastive", "epochs": 2}, {"kind": "end_to_end", "epochs": 2}],
                "progress": False,
            },
        },
        base_dir=tmp_path,
    )
    result = train(cfg)
    contrastive, supervised = result.trained.metrics["training"]["stages"]
    assert supervised["rows"] == len(result.split.train) <= 60
    assert contrastive["rows"] == len(result.split.train) + len(result.split.unlabelled)
    assert len(result.split.unlabelled) > 100
    sites = df["site"].to_numpy()
    held = set(sites[list(result.split.val) + list(result.split.test)])
    assert not set(sites[result.split.unlabelled]) & held
