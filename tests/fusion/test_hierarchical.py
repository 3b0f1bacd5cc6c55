"""Hierarchical fusion: the join order prepare picks, its round trip, and presence handling."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

from plait.errors import ConfigError, DataError
from plait.fusion.hierarchical import HierarchicalFusion, greedy_join_order, linear_cka
from plait.testing.conformance import check_fusion
from plait.types import EncoderOutput

# Declared so that the default order (field order) is NOT the similarity order.
DIMS = {"c": 6, "a": 5, "d": 4, "b": 7}


def _related_fields(n: int = 300, seed: int = 0) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    """a random; b a linear map of a plus a little noise (near-identical); d a noisier map of a
    (related); c independent. About a fifth of each field is absent, and absent rows of b hold
    large noise: prepare must only use rows where both fields of a pair are present."""
    gen = torch.Generator().manual_seed(seed)
    a = torch.randn(n, 5, generator=gen)
    pooled = {
        "a": a,
        "b": a @ torch.randn(5, 7, generator=gen) + 0.05 * torch.randn(n, 7, generator=gen),
        "d": a[:, :2] @ torch.randn(2, 4, generator=gen) + 1.0 * torch.randn(n, 4, generator=gen),
        "c": torch.randn(n, 6, generator=gen),
    }
    present = {f: torch.rand(n, generator=gen) > 0.2 for f in DIMS}
    for f in DIMS:
        pooled[f] = pooled[f] * present[f].unsqueeze(1)
    pooled["b"] = torch.where(present["b"].unsqueeze(1), pooled["b"], 50 * torch.randn(n, 7, generator=gen))
    return pooled, present


def _fusion(seed: int = 0) -> HierarchicalFusion:
    torch.manual_seed(seed)
    return HierarchicalFusion(DIMS, output_dim=8, hidden=16, dropout=0.0).eval()


def _inputs(b: int, seed: int = 1) -> dict[str, EncoderOutput]:
    gen = torch.Generator().manual_seed(seed)
    out = {}
    for f, dim in DIMS.items():
        pooled = torch.randn(b, dim, generator=gen)
        out[f] = EncoderOutput(tokens=pooled.unsqueeze(1), pooled=pooled)
    return out


def _present(*rows: tuple[bool, ...]) -> dict[str, Tensor]:
    cols = torch.tensor(rows)  # (B, M)
    return {f: cols[:, i] for i, f in enumerate(DIMS)}


def test_linear_cka_is_one_for_a_rotated_scaled_copy_and_small_for_independent_data() -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(200, 5, generator=gen)
    rotation, _ = torch.linalg.qr(torch.randn(5, 5, generator=gen))
    assert linear_cka(x, 3 * x @ rotation) == pytest.approx(1.0, abs=1e-9)
    assert linear_cka(x, torch.randn(200, 9, generator=gen)) < 0.2  # different width works
    assert linear_cka(x, torch.ones(200, 3)) == 0.0  # no variance: no evidence of similarity
    assert linear_cka(x[:3], 3 * x[:3] @ rotation) == pytest.approx(1.0, abs=1e-9)  # rows < features


def test_greedy_join_order_takes_the_best_pair_then_the_best_mean_similarity() -> None:
    sim = torch.tensor(
        [
            [1.0, 0.1, 0.9, 0.3],
            [0.1, 1.0, 0.2, 0.8],
            [0.9, 0.2, 1.0, 0.2],
            [0.3, 0.8, 0.2, 1.0],
        ]
    )
    # pair (0, 2); then 3 (mean 0.25) before 1 (mean 0.15)
    assert greedy_join_order(sim) == [0, 2, 3, 1]
    assert greedy_join_order(torch.eye(2)) == [0, 1]


def test_prepare_joins_the_nearly_identical_pair_first_then_the_related_field() -> None:
    fusion = _fusion()
    assert fusion.join_order == ("c", "a", "d", "b")  # the default: field order
    fusion.prepare(*_related_fields())
    assert fusion.join_order == ("a", "b", "d", "c")
    assert fusion.order.tolist() == [1, 3, 2, 0]


def test_join_order_and_outputs_round_trip_through_state_dict() -> None:
    fusion = _fusion()
    fusion.prepare(*_related_fields())
    fresh = _fusion(seed=5)
    fresh.load_state_dict(fusion.state_dict())
    assert fresh.join_order == ("a", "b", "d", "c")
    inputs = _inputs(4)
    present = _present(
        (True, True, True, True), (False, True, False, True), (True, False, False, False), (False,) * 4
    )
    with torch.no_grad():
        a, b = fusion(inputs, present), fresh(inputs, present)
    assert torch.equal(a.fused, b.fused)
    assert a.weights is not None and b.weights is not None
    assert torch.equal(a.weights, b.weights)


def test_the_join_order_changes_the_output() -> None:
    fusion = _fusion()
    inputs, present = _inputs(3), _present(*[(True, True, True, True)] * 3)
    with torch.no_grad():
        before = fusion(inputs, present).fused
        fusion.set_join_order(["b", "d", "a", "c"])
        after = fusion(inputs, present).fused
    assert not torch.allclose(before, after)


def test_a_lone_present_field_is_its_normalised_projection_wherever_it_joins() -> None:
    fusion = _fusion()
    fusion.prepare(*_related_fields())
    inputs = _inputs(4)
    present = _present(
        (True, False, False, False),
        (False, True, False, False),
        (False, False, True, False),
        (False, False, False, True),
    )
    with torch.no_grad():
        out = fusion(inputs, present)
        for row, (i, f) in enumerate(enumerate(DIMS)):
            expected = fusion.norm(fusion.proj[i](inputs[f].pooled[row]))
            assert torch.allclose(out.fused[row], expected, atol=1e-6)
    assert out.weights is not None
    assert torch.equal(out.weights, torch.eye(4))


def test_weights_share_the_mass_over_present_fields_and_no_field_gives_the_fallback() -> None:
    fusion = _fusion()
    with torch.no_grad():
        fusion.fallback.copy_(torch.arange(8.0))
        out = fusion(_inputs(2), _present((True, False, True, True), (False,) * 4))
    assert out.weights is not None
    assert out.weights[0, 1] == 0 and bool((out.weights[0, [0, 2, 3]] > 0).all())
    assert float(out.weights[0].sum()) == pytest.approx(1.0, abs=1e-6)
    assert torch.equal(out.weights[1], torch.zeros(4))
    assert torch.equal(out.fused[1], torch.arange(8.0))


def test_passes_the_fusion_contract_after_prepare_on_random_data() -> None:
    check_fusion(HierarchicalFusion, output_dim=6, hidden=8)


def test_prepare_and_set_join_order_reject_bad_input() -> None:
    fusion = _fusion()
    pooled, present = _related_fields(n=20)
    del pooled["d"]
    with pytest.raises(DataError, match="'d'"):
        fusion.prepare(pooled, present)
    pooled, present = _related_fields(n=20)
    pooled["a"] = pooled["a"][:, :3]
    with pytest.raises(DataError, match=r"expected \[N, 5\]"):
        fusion.prepare(pooled, present)
    with pytest.raises(ConfigError, match="every field exactly once"):
        fusion.set_join_order(["a", "a", "b", "c"])
    with pytest.raises(ConfigError, match="hidden"):
        HierarchicalFusion(DIMS, output_dim=8, hidden=0)
