"""FusionModel assembly, modality dropout and the supervised losses."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from plait.errors import ConfigError
from plait.fusion import FUSIONS
from plait.fusion.gated import GatedFusion
from plait.fusion.late import LateFusion
from plait.models.fusion_model import FusionModel
from plait.models.heads import MLPHead
from plait.models.modality_dropout import drop_modalities, sample_subsets
from plait.objectives.supervised import classification_loss, regression_loss
from plait.testing.dummies import DummyEncoder, tiny_batch

INPUT_DIMS = {"photo": 5, "note": 3}
DIM = 8


def _model(fusion_name: str, outputs: int = 3) -> FusionModel:
    torch.manual_seed(0)
    encoders = {f: DummyEncoder(d, DIM) for f, d in INPUT_DIMS.items()}
    cls = FUSIONS.get(fusion_name)
    if getattr(cls, "decision_level", False):
        return FusionModel(encoders, cls(dict.fromkeys(INPUT_DIMS, DIM), outputs), head=None)
    return FusionModel(encoders, cls(dict.fromkeys(INPUT_DIMS, DIM), DIM), MLPHead(DIM, 16, outputs))


@pytest.mark.parametrize("name", FUSIONS.names())
def test_model_forward_and_backward_with_every_fusion(name: str) -> None:
    model = _model(name)
    batch = tiny_batch(INPUT_DIMS, batch_size=6, num_classes=3, generator=torch.Generator().manual_seed(1))
    out = model(batch)
    assert out.output.shape == (6, 3)
    assert torch.isfinite(out.output).all()
    assert out.field_order == ("photo", "note")
    if out.weights is not None:
        assert out.weights.shape == (6, 2)
    assert batch.target is not None
    classification_loss(out.output, batch.target).backward()
    assert all(p.grad is not None for p in model.encoders.parameters())


def test_model_regression_output_and_all_absent_batch() -> None:
    model = _model("gated", outputs=1).eval()
    batch = tiny_batch(INPUT_DIMS, batch_size=4, num_classes=None, present_prob=0.0)
    out = model(batch)
    assert out.output.shape == (4, 1) and torch.isfinite(out.output).all()
    assert batch.target is not None and torch.isfinite(regression_loss(out.output, batch.target))


def test_model_encode_and_fuse_are_the_forward_steps() -> None:
    model = _model("late").eval()
    batch = tiny_batch(INPUT_DIMS, batch_size=3)
    encoded = model.encode(batch)
    assert encoded["note"].pooled.shape == (3, DIM)
    fused = model.fuse(encoded, batch.present)
    assert torch.equal(fused.fused, model(batch).output)  # decision-level: no head


def test_model_rejects_mismatched_fields_and_heads() -> None:
    encoders = {f: DummyEncoder(d, DIM) for f, d in INPUT_DIMS.items()}
    with pytest.raises(ConfigError, match="fields"):
        FusionModel(encoders, GatedFusion({"photo": DIM}, DIM), MLPHead(DIM, 4, 2))
    with pytest.raises(ConfigError, match="head=None"):
        FusionModel(encoders, LateFusion(dict.fromkeys(INPUT_DIMS, DIM), 2), MLPHead(2, 4, 2))
    with pytest.raises(ConfigError, match="needs a head"):
        FusionModel(encoders, GatedFusion(dict.fromkeys(INPUT_DIMS, DIM), DIM), None)


def test_model_names_a_field_missing_from_the_batch() -> None:
    model = _model("concat")
    batch = tiny_batch({"photo": 5}, batch_size=2)
    with pytest.raises(KeyError, match="note"):
        model(batch)


# ---------------------------------------------------------------- modality dropout

masks = st.integers(1, 8).flatmap(
    lambda b: st.lists(st.lists(st.booleans(), min_size=b, max_size=b), min_size=1, max_size=4)
)


@settings(max_examples=60, deadline=None)
@given(columns=masks, p=st.floats(0.0, 1.0), seed=st.integers(0, 2**16))
def test_drop_modalities_invariants(columns: list[list[bool]], p: float, seed: int) -> None:
    present = {f"f{i}": torch.tensor(col) for i, col in enumerate(columns)}
    dropped = drop_modalities(present, p, torch.Generator().manual_seed(seed))
    assert list(dropped) == list(present)
    before = torch.stack(list(present.values()), 1)  # (B, M)
    after = torch.stack(list(dropped.values()), 1)
    assert after.dtype == torch.bool
    assert not (after & ~before).any()  # absent never becomes present
    assert torch.equal(after.any(1), before.any(1))  # a sample keeps ≥ 1 of its fields
    if p == 0.0:
        assert torch.equal(after, before)


def test_drop_modalities_drops_about_p_of_fields_and_never_mutates_input() -> None:
    present = {f: torch.ones(4000, dtype=torch.bool) for f in ("a", "b", "c", "d")}
    dropped = drop_modalities(present, 0.3, torch.Generator().manual_seed(0))
    rate = 1 - torch.stack(list(dropped.values())).float().mean()
    assert 0.27 < rate < 0.33
    assert all(m.all() for m in present.values())


def test_drop_modalities_p_one_keeps_exactly_one_field() -> None:
    present = {f: torch.tensor([True, True, False]) for f in ("a", "b", "c")}
    kept = torch.stack(list(drop_modalities(present, 1.0).values()), 1).sum(1)
    assert kept.tolist() == [1, 1, 0]


def test_drop_modalities_rejects_bad_probability() -> None:
    with pytest.raises(ConfigError, match="modality_dropout"):
        drop_modalities({"a": torch.ones(2, dtype=torch.bool)}, 1.5)


# ---------------------------------------------------------------- losses


def test_classification_loss_matches_cross_entropy_and_smoothing() -> None:
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
    target = torch.tensor([0, 1])
    expected = -torch.log_softmax(logits, 1)[torch.arange(2), target].mean()
    assert torch.allclose(classification_loss(logits, target), expected)
    assert classification_loss(logits, target, label_smoothing=0.2) > expected


def test_regression_loss_is_mse_for_both_shapes() -> None:
    target = torch.tensor([1.0, 2.0, 4.0])
    pred = torch.tensor([1.0, 3.0, 2.0])
    assert torch.allclose(regression_loss(pred, target), torch.tensor(5.0 / 3))
    assert torch.allclose(regression_loss(pred.unsqueeze(1), target), torch.tensor(5.0 / 3))


def test_losses_reject_wrong_shapes() -> None:
    with pytest.raises(ValueError, match="logits"):
        classification_loss(torch.zeros(3), torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="pred"):
        regression_loss(torch.zeros(3, 2), torch.zeros(3))


@settings(max_examples=60, deadline=None)
@given(columns=masks, seed=st.integers(0, 2**16))
def test_sample_subsets_draws_a_proper_non_empty_subset_of_the_present_fields(
    columns: list[list[bool]], seed: int
) -> None:
    present = {f"f{i}": torch.tensor(col) for i, col in enumerate(columns)}
    subset = sample_subsets(present, torch.Generator().manual_seed(seed))
    before = torch.stack(list(present.values()), 1)  # (B, M)
    after = torch.stack(list(subset.values()), 1)
    assert list(subset) == list(present) and after.dtype == torch.bool
    assert not (after & ~before).any()  # only present fields
    assert torch.equal(after.any(1), before.any(1))  # never empty where something was present
    several = before.sum(1) >= 2
    assert (after.sum(1)[several] < before.sum(1)[several]).all()  # a proper subset
    assert torch.equal(after[~several], before[~several])  # one field: kept as it is


def test_sample_subsets_reaches_every_proper_subset() -> None:
    present = {f: torch.ones(2000, dtype=torch.bool) for f in ("a", "b", "c")}
    after = torch.stack(list(sample_subsets(present, torch.Generator().manual_seed(1)).values()), 1)
    patterns = {tuple(row.tolist()) for row in after}
    assert len(patterns) == 6  # 2^3 minus the empty and the full set
