"""Staged training (train.stages): the config, what each stage trains, and the fusion hooks'
place in the sequence."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import pytest
import torch
from torch import Tensor

from plait.config import Config, StageSpec
from plait.errors import ConfigError
from plait.fusion import FUSIONS
from plait.fusion.concat import ConcatFusion
from plait.training.fit import prepare
from plait.training.module import PlaitModule, build_probes
from plait.types import EncoderOutput
from plait.workflow.train import fit_prepared


def _config(fusion: str = "concat", **train: object) -> Config:
    return Config.from_dict(
        {
            "task": {"label": "y"},
            "fields": {"vec": "embedding", "specs": {"kind": "tabular", "numeric": ["x"]}},
            "model": {"fusion": fusion, "dim": 8, "hidden": 8},
            "train": {"epochs": 2, "progress": False, **train},
        }
    )


def test_stages_parse_fill_in_lr_and_round_trip() -> None:
    cfg = _config(
        stages=[{"kind": "unimodal", "epochs": 2, "lr": "1e-2"}, {"kind": "end_to_end", "epochs": 3}]
    )
    assert cfg.train.stages == (
        StageSpec(kind="unimodal", epochs=2, lr=0.01),
        StageSpec(kind="end_to_end", epochs=3, lr=None),
    )
    plan = cfg.train.stage_plan()
    assert [s.lr for s in plan] == [0.01, cfg.train.lr]
    assert Config.from_dict(cfg.to_dict()).train.stages == cfg.train.stages
    assert "stages:" in cfg.to_yaml()
    assert _config().train.stage_plan() == (StageSpec(kind="end_to_end", epochs=2, lr=_config().train.lr),)


@pytest.mark.parametrize(
    ("stages", "message"),
    [
        ([{"kind": "unimodel", "epochs": 2}, {"kind": "frozen", "epochs": 1}], "did you mean 'unimodal'"),
        ([{"kind": "frozen"}], r"train.stages\[0\].epochs: missing"),
        ([{"kind": "frozen", "epochs": 0}], "expected an integer ≥ 1"),
        ([{"kind": "frozen", "epochs": 1, "lr": -1}], "positive number"),
        ([{"kind": "frozen", "epochs": 1, "rate": 1}], r"train.stages\[0\].rate: unknown key"),
        ([{"kind": "unimodal", "epochs": 1}], "only unimodal stages"),
        ({"kind": "frozen"}, "expected a list of stages"),
    ],
)
def test_bad_stages_name_the_key(stages: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        _config(stages=stages)


@pytest.fixture(scope="module")
def prepared(three_class_table):
    return prepare(_config(), table=three_class_table(240))


@pytest.mark.parametrize(
    ("stage", "encoders", "fusion"),
    [("unimodal", True, False), ("frozen", False, True), ("end_to_end", True, True)],
)
def test_each_stage_trains_its_parts(prepared, stage: str, encoders: bool, fusion: bool) -> None:
    from plait.build import build_model

    model = build_model(prepared.config, prepared.modalities, prepared.task.n_outputs)
    module = PlaitModule(
        model,
        build_probes(model, prepared.task.n_outputs),
        task=prepared.task,
        lr=1e-3,
        weight_decay=0.0,
        modality_dropout=0.0,
        max_epochs=1,
        seed=0,
        stage=stage,
    )
    assert all(p.requires_grad == encoders for p in model.encoders.parameters())
    assert all(p.requires_grad == fusion for p in [*model.fusion.parameters(), *model.head.parameters()])
    optimised = {
        id(p) for group in module.configure_optimizers()["optimizer"].param_groups for p in group["params"]
    }
    assert all(id(p) in optimised for p in module.probes.parameters())  # the probes always learn
    assert all((id(p) in optimised) == encoders for p in model.encoders.parameters())


def test_frozen_stage_leaves_the_pretrained_encoders_untouched(prepared) -> None:
    short = [{"kind": "unimodal", "epochs": 2}, {"kind": "frozen", "epochs": 1}]
    long = [{"kind": "unimodal", "epochs": 2}, {"kind": "frozen", "epochs": 3}]
    a = fit_prepared(prepared, config=prepared.config.with_overrides(train={"stages": short})).trained
    b = fit_prepared(prepared, config=prepared.config.with_overrides(train={"stages": long})).trained
    pairs = zip(a.model.encoders.named_parameters(), b.model.encoders.named_parameters(), strict=True)
    for (name, pa), (_, pb) in pairs:
        assert torch.equal(pa, pb), f"encoder parameter {name} moved during the frozen stage"
    fusion_moved = any(
        not torch.equal(pa, pb)
        for pa, pb in zip(a.model.head.parameters(), b.model.head.parameters(), strict=True)
    )
    assert fusion_moved  # …while the head kept learning
    stages = b.metrics["training"]["stages"]
    assert [s["kind"] for s in stages] == ["unimodal", "frozen"]
    assert {row["stage"] for row in b.metrics["training"]["history"]} == {"unimodal", "frozen"}


class _Recording(ConcatFusion):
    """Concat fusion that records when its data hooks are called."""

    calls: ClassVar[list[str]] = []

    def prepare(self, pooled: Mapping[str, Tensor], present: Mapping[str, Tensor]) -> None:
        rows = {int(v.shape[0]) for v in pooled.values()}
        _Recording.calls.append(f"prepare:{rows.pop()}")

    def fit_held_out(
        self, pooled: Mapping[str, Tensor], present: Mapping[str, Tensor], target: Tensor, task_type: str
    ) -> None:
        _Recording.calls.append(f"fit_held_out:{int(target.shape[0])}:{task_type}")

    def forward(self, inputs: Mapping[str, EncoderOutput], present: Mapping[str, Tensor]):  # type: ignore[override]
        if not _Recording.calls or _Recording.calls[-1] != "forward":
            _Recording.calls.append("forward" if self.training else "eval")
        return super().forward(inputs, present)


def test_fusion_hooks_run_after_unimodal_pretraining_and_after_training(prepared, monkeypatch) -> None:
    monkeypatch.setitem(FUSIONS._items, "recording", _Recording)
    _Recording.calls.clear()
    stages = [{"kind": "unimodal", "epochs": 1}, {"kind": "end_to_end", "epochs": 1}]
    cfg = prepared.config.with_overrides(model={"fusion": "recording"}, train={"stages": stages})
    fit_prepared(prepared, config=cfg)
    calls = _Recording.calls
    n_train, n_val = len(prepared.split.train), len(prepared.split.val)
    assert calls[0] == f"prepare:{n_train}"  # before the fusion ever ran, after the unimodal stage
    assert f"fit_held_out:{n_val}:classification" in calls
    assert calls.index(f"fit_held_out:{n_val}:classification") > calls.index("forward")


@pytest.mark.parametrize("fusion", ["hierarchical", "stacking"])
def test_state_fitted_by_the_hooks_survives_the_bundle(prepared, fusion: str, tmp_path) -> None:
    """hierarchical's join order and stacking's meta-learner come from data; a loaded bundle
    predicts exactly what the trained model did."""
    from plait.bundle import load_bundle
    from plait.models.inference import run_model

    cfg = prepared.config.with_overrides(model={"fusion": fusion})
    trained = fit_prepared(prepared, config=cfg, out=tmp_path / fusion).trained
    if fusion == "stacking":
        assert bool(trained.model.fusion.meta_fitted)  # fitted on the validation rows after training
    loaded = load_bundle(tmp_path / fusion)
    rows = prepared.split.test
    expected = run_model(trained.model, prepared.tensors, rows).output
    assert torch.allclose(run_model(loaded.model, prepared.tensors, rows).output, expected, atol=1e-6)
    if fusion == "hierarchical":
        assert loaded.model.fusion.join_order == trained.model.fusion.join_order


@pytest.mark.parametrize("fields", [[], ["vec", "nope"]])
def test_a_field_subset_must_be_non_empty_and_known(prepared, fields: list[str]) -> None:
    with pytest.raises(ConfigError, match=r"non-empty subset of this config's fields \(vec, specs\)"):
        fit_prepared(prepared, fields=fields)
