"""Tensor fusion (TFN) and low-rank tensor fusion (LMF): the contract and their own behaviour."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

from plait.errors import ConfigError
from plait.fusion.low_rank_tensor import LowRankTensorFusion
from plait.fusion.tensor import MAX_PRODUCT_SIZE, TensorFusion, check_product_size
from plait.testing.conformance import check_fusion
from plait.testing.dummies import random_encoder_outputs
from plait.types import EncoderOutput

DIMS = {"photo": 6, "note": 4, "specs": 3}


def _all_present(dims: dict[str, int], batch_size: int, seed: int = 0) -> dict[str, EncoderOutput]:
    inputs, _ = random_encoder_outputs(
        dims, batch_size, present_prob=1.0, generator=torch.Generator().manual_seed(seed)
    )
    return inputs


def _present(dims: dict[str, int], batch_size: int, absent: str | None = None) -> dict[str, Tensor]:
    return {f: torch.full((batch_size,), f != absent) for f in dims}


@pytest.mark.parametrize("cls", [TensorFusion, LowRankTensorFusion])
def test_conformance(cls: type) -> None:
    check_fusion(cls)


def test_tensor_product_has_size_dim_plus_one_to_the_field_count() -> None:
    torch.manual_seed(0)
    fusion = TensorFusion(DIMS, output_dim=5, dim=4).eval()
    seen: list[tuple[int, ...]] = []
    fusion.out[0].register_forward_hook(lambda _m, args, _o: seen.append(tuple(args[0].shape)))
    out = fusion(_all_present(DIMS, 2), _present(DIMS, 2))
    assert seen == [(2, 5**3)]
    assert fusion.product_size == 125
    assert out.fused.shape == (2, 5)
    assert out.weights is None


@pytest.mark.parametrize("cls", [TensorFusion, LowRankTensorFusion])
def test_absent_field_equals_feeding_zero_and_constant_by_hand(cls: type) -> None:
    torch.manual_seed(0)
    fusion = cls(DIMS, output_dim=5).eval()
    inputs = _all_present(DIMS, 3)
    with torch.no_grad():
        mask = torch.ones(3, len(DIMS), dtype=torch.bool)
        z = fusion.field_vectors([inputs[f].pooled for f in DIMS], mask)
        z[1] = torch.cat([torch.zeros(3, z[1].shape[1] - 1), torch.ones(3, 1)], dim=1)  # [0, …, 0; 1]
        by_hand = fusion.fuse_vectors(z)
        out = fusion(inputs, _present(DIMS, 3, absent="note")).fused
        everything = fusion(inputs, _present(DIMS, 3)).fused
    assert torch.allclose(out, by_hand, atol=1e-6)
    assert not torch.allclose(out, everything, atol=1e-4)  # the absent field did count when present


def test_tensor_size_cap_names_the_field_count_and_the_ways_out() -> None:
    five = {f"f{i}": 4 for i in range(5)}
    with pytest.raises(ConfigError) as err:
        TensorFusion(five, output_dim=8, dim=16)
    message = str(err.value)
    assert "5 fields" in message and "dim=16" in message
    assert "17^5 = 1,419,857" in message
    assert "low_rank_tensor" in message
    assert "at most 15 for 5 fields" in message
    assert check_product_size(5, 15) == MAX_PRODUCT_SIZE  # exactly at the cap is allowed
    with pytest.raises(ConfigError, match="fewer fields"):
        check_product_size(21, 1)


@pytest.mark.parametrize(("cls", "option"), [(TensorFusion, "dim"), (LowRankTensorFusion, "rank")])
def test_bad_option_is_a_config_error(cls: type, option: str) -> None:
    with pytest.raises(ConfigError, match=f"'{option}'"):
        cls(DIMS, output_dim=4, **{option: 0})


def test_low_rank_is_finite_and_scale_free_for_five_fields_of_large_magnitude() -> None:
    torch.manual_seed(0)
    dims = {f"f{i}": 8 for i in range(5)}
    fusion = LowRankTensorFusion(dims, output_dim=6, rank=4)
    inputs, present = random_encoder_outputs(
        dims, 16, present_prob=0.8, generator=torch.Generator().manual_seed(1)
    )
    big = {f: EncoderOutput(tokens=e.tokens * 1e4, pooled=e.pooled * 1e4) for f, e in inputs.items()}
    for training in (True, False):
        fusion.train(training)
        with torch.no_grad():
            out = fusion(big, present).fused
        assert bool(torch.isfinite(out).all())
        assert float(out.abs().max()) < 100.0  # the factors start near 1, so nothing explodes
    with torch.no_grad():
        small, large = fusion(inputs, present).fused, fusion(big, present).fused
    assert torch.allclose(small, large, atol=1e-4)  # the input's overall scale does not matter


def test_low_rank_gradients_reach_every_present_fields_factors() -> None:
    torch.manual_seed(0)
    fusion = LowRankTensorFusion(DIMS, output_dim=5, rank=3).eval()
    present = _present(DIMS, 4, absent="specs")
    out = fusion(_all_present(DIMS, 4), present)
    (out.fused * torch.randn(out.fused.shape)).sum().backward()
    for f, factor in zip(DIMS, fusion.factors, strict=True):
        assert factor.grad is not None
        rows = factor.grad[:, : DIMS[f], :]  # the rows that multiply h_f (the last multiplies the 1)
        if f == "specs":
            assert torch.equal(rows, torch.zeros_like(rows))  # absent everywhere: only its constant row
        else:
            assert bool((rows != 0).any()), f"no gradient reaches the factors of present field '{f}'"
        assert bool((factor.grad[:, DIMS[f], :] != 0).any())
    assert fusion.rank_weights.grad is not None and bool((fusion.rank_weights.grad != 0).any())


def test_low_rank_starts_at_zero_for_a_sample_with_no_field_present() -> None:
    torch.manual_seed(0)
    fusion = LowRankTensorFusion(DIMS, output_dim=5).eval()
    with torch.no_grad():
        out = fusion(_all_present(DIMS, 2), {f: torch.zeros(2, dtype=torch.bool) for f in DIMS})
    assert torch.allclose(out.fused, torch.zeros(2, 5), atol=1e-6)
