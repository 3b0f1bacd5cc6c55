"""Behaviour specific to each fusion strategy (the shared contract is in test_conformance_fusions)."""

from __future__ import annotations

import pytest
import torch

from plait.errors import ConfigError
from plait.fusion.attention import AttentionFusion
from plait.fusion.base import softmax_over_present
from plait.fusion.concat import ConcatFusion
from plait.fusion.gated import GatedFusion
from plait.fusion.late import LateFusion
from plait.testing.dummies import random_encoder_outputs
from plait.types import EncoderOutput

DIMS = {"photo": 6, "note": 4, "specs": 3}


def _present(*rows: tuple[bool, ...]) -> dict[str, torch.Tensor]:
    cols = torch.tensor(rows)  # (B, M)
    return {f: cols[:, i] for i, f in enumerate(DIMS)}


def _inputs(batch_size: int, seed: int = 0) -> dict[str, EncoderOutput]:
    inputs, _ = random_encoder_outputs(
        DIMS, batch_size, present_prob=1.0, generator=torch.Generator().manual_seed(seed)
    )
    return inputs


def test_softmax_over_present_zero_for_absent_and_empty_rows() -> None:
    logits = torch.tensor([[1.0, 2.0, 3.0], [1.0, 2.0, 3.0], [5.0, 5.0, 5.0]])
    present = torch.tensor([[True, False, True], [False, False, False], [True, True, True]])
    w = softmax_over_present(logits, present)
    expected_first = torch.softmax(torch.tensor([1.0, 3.0]), 0)
    assert torch.allclose(w[0], torch.tensor([expected_first[0], 0.0, expected_first[1]]))
    assert torch.equal(w[1], torch.zeros(3))
    assert torch.allclose(w[2], torch.full((3,), 1 / 3))


def test_late_weights_are_softmax_of_weight_logits_over_present_fields() -> None:
    torch.manual_seed(0)
    late = LateFusion(DIMS, output_dim=2).eval()
    with torch.no_grad():
        late.weight_logits.copy_(torch.tensor([0.5, -1.0, 2.0]))
    present = _present((True, True, True), (True, False, True), (False, True, False))
    out = late(_inputs(3), present)
    assert out.weights is not None
    assert torch.allclose(out.weights[0], torch.softmax(torch.tensor([0.5, -1.0, 2.0]), 0))
    two = torch.softmax(torch.tensor([0.5, 2.0]), 0)
    assert torch.allclose(out.weights[1], torch.tensor([two[0], 0.0, two[1]]))
    assert torch.allclose(out.weights[2], torch.tensor([0.0, 1.0, 0.0]))


def test_late_fused_is_weighted_sum_of_per_field_outputs() -> None:
    torch.manual_seed(0)
    late = LateFusion(DIMS, output_dim=2).eval()
    inputs = _inputs(2)
    present = _present((True, False, True), (True, True, True))
    out = late(inputs, present)
    per_field = late.per_field_outputs(inputs)
    assert set(per_field) == set(DIMS) and per_field["photo"].shape == (2, 2)
    assert out.weights is not None
    expected = sum(out.weights[:, i : i + 1] * per_field[f] for i, f in enumerate(DIMS))
    assert torch.allclose(out.fused, expected, atol=1e-6)


def test_late_sample_without_fields_gets_the_learned_fallback() -> None:
    torch.manual_seed(0)
    late = LateFusion(DIMS, output_dim=2).eval()
    with torch.no_grad():
        late.fallback.copy_(torch.tensor([0.25, -0.5]))
    out = late(_inputs(1), _present((False, False, False)))
    assert torch.equal(out.fused, torch.tensor([[0.25, -0.5]]))
    assert out.weights is not None and torch.equal(out.weights, torch.zeros(1, 3))


def test_late_is_decision_level_and_others_are_not() -> None:
    assert LateFusion.decision_level is True
    assert not ConcatFusion.decision_level and not GatedFusion.decision_level
    assert not AttentionFusion.decision_level


def test_gated_sample_without_fields_gives_zeros() -> None:
    torch.manual_seed(0)
    gated = GatedFusion(DIMS, output_dim=8)
    with torch.no_grad():
        gated.norm.bias.fill_(1.0)  # a learned bias must not leak into an all-absent sample
    out = gated(_inputs(2), _present((False, False, False), (True, False, False)))
    assert torch.equal(out.fused[0], torch.zeros(8))
    assert out.fused[1].abs().sum() > 0
    assert out.weights is not None and torch.equal(out.weights[1], torch.tensor([1.0, 0.0, 0.0]))


def test_gated_weights_depend_on_the_sample() -> None:
    torch.manual_seed(0)
    gated = GatedFusion(DIMS, output_dim=8).eval()
    out = gated(_inputs(2), _present((True, True, True), (True, True, True)))
    assert out.weights is not None
    assert not torch.allclose(out.weights[0], out.weights[1])


def test_attention_masked_field_gets_zero_weight() -> None:
    torch.manual_seed(0)
    attention = AttentionFusion(DIMS, output_dim=8, heads=2, layers=2).eval()
    out = attention(_inputs(3), _present((True, False, True), (False, False, True), (True, True, True)))
    assert out.weights is not None
    assert out.weights[0, 1] == 0 and out.weights[1, 0] == 0 and out.weights[1, 1] == 0
    assert torch.allclose(out.weights[1, 2], torch.tensor(1.0))
    assert (out.weights[2] > 0).all()


def test_attention_rejects_heads_not_dividing_output_dim() -> None:
    with pytest.raises(ConfigError, match="divisible by heads"):
        AttentionFusion(DIMS, output_dim=10, heads=4)


def test_concat_uses_placeholder_for_absent_field() -> None:
    torch.manual_seed(0)
    concat = ConcatFusion(DIMS, output_dim=8).eval()
    inputs = _inputs(1)
    present = _present((True, False, True))
    before = concat(inputs, present).fused
    with torch.no_grad():
        concat.placeholders[1].add_(1.0)  # the placeholder of the absent field 'note'
    assert not torch.allclose(before, concat(inputs, present).fused)
    assert concat(inputs, present).weights is None


@pytest.mark.parametrize("cls", [ConcatFusion, LateFusion, GatedFusion, AttentionFusion])
def test_bad_constructor_arguments_raise_config_error(cls: type) -> None:
    with pytest.raises(ConfigError, match="empty"):
        cls({}, 4)
    with pytest.raises(ConfigError, match="output_dim"):
        cls(DIMS, 0)
    with pytest.raises(ConfigError, match="dropout"):
        cls(DIMS, 4, dropout=1.5)
    with pytest.raises(ConfigError, match="'note'"):
        cls({"photo": 4, "note": 0}, 4)


def test_missing_field_in_inputs_names_it() -> None:
    gated = GatedFusion(DIMS, output_dim=4)
    inputs = _inputs(2)
    del inputs["note"]
    with pytest.raises(KeyError, match="note"):
        gated(inputs, _present((True, True, True), (True, True, True)))
