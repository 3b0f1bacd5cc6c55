"""Modality balance: the pure pieces (own losses, OGM-GE coefficients, shares, warnings) and the
warning firing on a constructed collapse — a field that leaks the label."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
import torch
from torch import nn

from plait.config import Config
from plait.evaluation.balance import dominance_warnings, mean_shares, reliance_shares
from plait.objectives.balance import (
    modulate_gradients,
    ogm_coefficients,
    target_scores,
    unimodal_losses,
)
from plait.task import Task
from plait.training.fit import prepare
from plait.workflow.train import fit_prepared

CLASSES = Task("classification", "y", ("a", "b"))


def test_unimodal_losses_use_only_rows_where_the_field_is_present() -> None:
    target = torch.tensor([0, 1, 1])
    good = torch.tensor([[5.0, -5.0], [-5.0, 5.0], [9.0, -9.0]])  # the last row is wrong, but absent
    present = {"a": torch.tensor([True, True, False])}
    losses = unimodal_losses({"a": good}, present, target, CLASSES)
    assert float(losses["a"]) < 1e-3
    none = unimodal_losses({"a": good}, {"a": torch.zeros(3, dtype=torch.bool)}, target, CLASSES)
    assert float(none["a"]) == 0.0 and none["a"].requires_grad is False  # no rows: zero, no NaN


def test_target_scores_rank_the_field_that_explains_the_batch() -> None:
    target = torch.tensor([0, 1, 0, 1])
    sure = torch.tensor([[4.0, 0.0], [0.0, 4.0], [4.0, 0.0], [0.0, 4.0]])
    unsure = torch.zeros(4, 2)
    present = {"sure": torch.ones(4, dtype=torch.bool), "unsure": torch.ones(4, dtype=torch.bool)}
    scores = target_scores({"sure": sure, "unsure": unsure}, present, target, CLASSES)
    assert scores["unsure"] == pytest.approx(0.5)
    assert scores["sure"] > 0.95


def test_ogm_coefficients_slow_only_the_field_ahead() -> None:
    coefficients = ogm_coefficients({"strong": 0.9, "weak": 0.3}, alpha=0.5)
    assert coefficients["weak"] == 1.0
    assert coefficients["strong"] == pytest.approx(1.0 - np.tanh(0.5 * (0.9 / 0.3 - 1.0)))
    assert ogm_coefficients({"a": 0.5, "b": 0.5}, alpha=1.0) == {"a": 1.0, "b": 1.0}
    assert ogm_coefficients({"a": 0.9, "b": 0.1}, alpha=0.0) == {"a": 1.0, "b": 1.0}
    assert ogm_coefficients({"only": 0.9}, alpha=1.0) == {"only": 1.0}
    with pytest.raises(ValueError, match="alpha"):
        ogm_coefficients({"a": 0.5}, alpha=-1.0)


def test_modulate_gradients_scales_and_adds_noise_of_the_gradients_spread() -> None:
    layer = nn.Linear(4, 3)
    layer(torch.randn(2, 4, generator=torch.Generator().manual_seed(0))).pow(2).sum().backward()
    before = layer.weight.grad.clone()
    modulate_gradients(list(layer.parameters()), 0.25, noise=False)
    assert torch.allclose(layer.weight.grad, 0.25 * before)
    torch.manual_seed(0)
    modulate_gradients(list(layer.parameters()), 1.0, noise=True)
    assert not torch.allclose(layer.weight.grad, 0.25 * before)
    assert torch.isfinite(layer.weight.grad).all()


def test_shares_and_reliance() -> None:
    assert mean_shares([{"a": 0.8, "b": 0.2}, {"a": 0.6, "b": 0.4}]) == pytest.approx({"a": 0.7, "b": 0.3})
    assert mean_shares([]) == {}
    full = {"accuracy": 0.9}
    without = {"a": {"accuracy": 0.6}, "b": {"accuracy": 0.95}}  # removing b helps: counts as 0
    assert reliance_shares(full, without, "accuracy") == {"a": 1.0, "b": 0.0}
    assert reliance_shares(full, {"a": full, "b": full}, "accuracy") == {}


def test_warning_fires_only_for_an_informative_field_that_is_crowded_out() -> None:
    own = {"strong": 0.9, "photo": 0.7}
    by_reliance = dominance_warnings(
        {}, {"strong": 1.0, "photo": 0.0}, own, chance=0.34, own_metric="accuracy"
    )
    assert len(by_reliance) == 1 and "'photo' alone reaches accuracy 0.70" in by_reliance[0]
    balanced = dominance_warnings(
        {"strong": 0.55, "photo": 0.45}, {"strong": 0.5, "photo": 0.5}, own, 0.34, "accuracy"
    )
    assert balanced == []
    useless = dominance_warnings(
        {}, {"strong": 1.0, "photo": 0.0}, {"strong": 0.9, "photo": 0.36}, 0.34, "accuracy"
    )
    assert useless == []  # photo is at chance on its own: nothing is being ignored


def test_gradient_share_alone_does_not_cry_wolf() -> None:
    """Regression: on AV-digits the warning fired on every fused run, once saying the model "may be
    ignoring 'audio'" while removing audio cost 0.989 → 0.856. The gradient share never warns on its
    own, and a field whose removal costs the model is used, whatever its share."""
    own = {"image": 0.72, "audio": 0.85}
    assert dominance_warnings({"image": 0.9, "audio": 0.1}, {}, own, 0.1, "accuracy") == []
    used = dominance_warnings(
        {"image": 0.9, "audio": 0.1},
        {"image": 0.9, "audio": 0.1},
        own,
        0.1,
        "accuracy",
        drops={"audio": 0.133},
    )
    assert used == []
    ignored = dominance_warnings(
        {},
        {"image": 0.95, "audio": 0.05},
        own,
        0.1,
        "accuracy",
        drops={"audio": 0.004, "image": 0.5},
        full=0.9,
    )
    assert len(ignored) == 1 and "removing it costs 0.004" in ignored[0]
    assert "without 'image' the model scores 0.40, less than 'audio' alone" in ignored[0]
    # Redundant, not crowded out: without the dominant field the model does as well as audio alone.
    redundant = dominance_warnings(
        {},
        {"image": 0.95, "audio": 0.05},
        own,
        0.1,
        "accuracy",
        drops={"audio": 0.0, "image": 0.05},
        full=0.95,
    )
    assert redundant == []


def test_a_near_perfect_field_far_ahead_is_named_a_suspected_leak() -> None:
    warnings = dominance_warnings(
        {}, {"leak": 1.0, "photo": 0.0}, {"leak": 1.0, "photo": 0.7}, 0.34, "accuracy"
    )
    assert len(warnings) == 1 and warnings[0].startswith("suspected leak: 'leak' alone predicts the label")
    # two fields near-perfect alone: an easy task, not a leak
    easy = dominance_warnings({}, {"a": 0.7, "b": 0.3}, {"a": 0.99, "b": 0.97}, 0.1, "accuracy")
    assert easy == []


def _leaky_table(n: int = 600, seed: int = 0) -> pl.DataFrame:
    """`weak`: a noisy 8-d vector around its class centre; `leak`: the label itself."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    centres = rng.normal(size=(3, 8))
    weak = centres[y] + 1.2 * rng.normal(size=(n, 8))
    labels = [f"c{v}" for v in y]
    return pl.DataFrame({"weak": [list(v) for v in weak], "leak": labels, "y": labels})


def _leaky_config() -> Config:
    return Config.from_dict(
        {
            "task": {"label": "y"},
            "fields": {
                "weak": "embedding",
                "leak": {"kind": "tabular", "categorical": ["leak"], "numeric": []},
            },
            "data": {"allow_leaks": ["leak"]},  # the leak check would stop it: this tests what comes after
            "model": {"fusion": "concat", "dim": 16, "hidden": 16},
            "train": {"epochs": 8, "progress": False, "modality_dropout": 0.0},
        }
    )


@pytest.fixture(scope="module")
def leaky():
    return prepare(_leaky_config(), table=_leaky_table())


def test_a_field_that_leaks_the_label_is_named_a_leak(leaky) -> None:
    said: list[str] = []
    result = fit_prepared(leaky, say=said.append)
    balance = result.trained.metrics["balance"]
    assert set(balance["grad_share"]) == {"weak", "leak"}
    assert sum(balance["grad_share"].values()) == pytest.approx(1.0)
    assert balance["reliance"]["leak"] > 0.9
    assert balance["own"]["weak"] > balance["chance"] + 0.1  # weak is informative on its own
    assert any(w.startswith("suspected leak: 'leak'") for w in balance["warnings"])
    assert any(line.startswith("warning: suspected leak") for line in said)
    assert result.trained.metrics["leak_check"]["allowed"] == ["leak"]


def test_mitigations_change_training_and_are_recorded(leaky) -> None:
    base = fit_prepared(leaky).trained
    for switch in ({"aux_loss": 1.0}, {"ogm_ge": 0.5}):
        mitigated = fit_prepared(leaky, config=leaky.config.with_overrides(train=switch)).trained
        assert mitigated.metrics["balance"]["mitigation"] == {"aux_loss": 0.0, "ogm_ge": 0.0, **switch}
        weights = dict(mitigated.model.encoders["weak"].named_parameters())
        changed = any(
            not torch.equal(p, weights[name]) for name, p in base.model.encoders["weak"].named_parameters()
        )
        assert changed, f"{switch} left the weak field's encoder exactly as without it"


def test_subset_loss_is_the_task_loss_under_a_drawn_subset_plus_distillation(leaky) -> None:
    """The subset loss decides the same encodings under `sample_subsets` masks, over the rows with
    two or more fields present, and adds the distillation term when asked."""
    from plait.models.modality_dropout import sample_subsets
    from plait.objectives.supervised import distillation_loss
    from plait.training.module import PlaitModule, build_probes

    trained = fit_prepared(leaky).trained
    model, task = trained.model.eval(), trained.task  # no dropout noise between the two
    batch = leaky.tensors.batch(list(range(12)))
    present = dict(batch.present)
    present["leak"] = present["leak"].clone()
    present["leak"][:3] = False  # three rows with one field: left out of the subset loss
    assert batch.target is not None

    def module(distill: float) -> PlaitModule:
        m = PlaitModule(
            model,
            build_probes(model, len(task.classes)),
            task=task,
            lr=1e-3,
            weight_decay=0.0,
            modality_dropout=0.0,
            max_epochs=1,
            seed=0,
            subset_loss=1.0,
            subset_distill=distill,
        )
        m._dropout_rng = torch.Generator().manual_seed(7)
        return m.eval()

    with torch.no_grad():
        encoded = model.encode(batch)
        full = model.decide(encoded, present).output
        drawn = sample_subsets(present, torch.Generator().manual_seed(7))
        sub = model.decide(encoded, drawn).output
        rows = torch.arange(12) >= 3
        expected = task.loss(sub[rows], batch.target[rows])
        kl = distillation_loss(sub[rows], full[rows], classification=True)
        assert float(module(0.0)._subset_loss(encoded, present, full, batch.target)) == pytest.approx(
            float(expected)
        )
        with_kl = module(2.0)._subset_loss(encoded, present, full, batch.target)
        assert float(with_kl) == pytest.approx(float(expected + 2.0 * kl))
        assert float(kl) >= 0.0


def test_training_with_the_subset_loss_answers_without_a_field(leaky) -> None:
    """End to end, with and without distillation: the model trained with the subset loss answers
    from the weak field alone (the leak marked absent) well above chance."""

    def without_leak(trained) -> float:  # the held-out accuracy with the leak marked absent
        return float(trained.metrics["without_field"]["leak"]["accuracy"])

    for switch in ({"subset_loss": 1.0}, {"subset_loss": 1.0, "subset_distill": 1.0}):
        taught = fit_prepared(leaky, config=leaky.config.with_overrides(train=switch)).trained
        assert taught.config.train.subset_loss == 1.0
        assert without_leak(taught) > taught.metrics["balance"]["chance"] + 0.1, switch
