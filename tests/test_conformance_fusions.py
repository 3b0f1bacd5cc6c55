"""Every registered fusion passes the fusion contract; the checkers catch broken plug-ins."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import pytest
import torch
from torch import Tensor, nn

from plait.fusion import FUSIONS
from plait.testing.conformance import check_encoder, check_fusion
from plait.testing.dummies import DummyEncoder
from plait.types import EncoderOutput, FusionOutput


@pytest.mark.parametrize("name", FUSIONS.names())
def test_registered_fusion_passes_contract(name: str) -> None:
    check_fusion(FUSIONS.get(name))


def test_attention_fusion_passes_contract_with_more_layers_and_heads() -> None:
    check_fusion(FUSIONS.get("attention"), output_dim=12, heads=3, layers=2)


class _IgnoresMask(nn.Module):
    """Mean of projected pooled vectors over ALL fields: absent fields leak in."""

    decision_level: ClassVar[bool] = False

    def __init__(self, field_to_dim: Mapping[str, int], output_dim: int) -> None:
        super().__init__()
        self.field_order = tuple(field_to_dim)
        self.output_dim = output_dim
        self.proj = nn.ModuleList(nn.Linear(d, output_dim) for d in field_to_dim.values())

    def forward(self, inputs: Mapping[str, EncoderOutput], present: Mapping[str, Tensor]) -> FusionOutput:
        parts = [p(inputs[f].pooled) for p, f in zip(self.proj, self.field_order, strict=True)]
        return FusionOutput(fused=torch.stack(parts).mean(0))


class _NaNWhenEmpty(_IgnoresMask):
    """Masks correctly but divides by the number of present fields: NaN when there is none."""

    def forward(self, inputs: Mapping[str, EncoderOutput], present: Mapping[str, Tensor]) -> FusionOutput:
        mask = torch.stack([present[f] for f in self.field_order], 1).float()  # (B, M)
        parts = torch.stack(
            [p(inputs[f].pooled) for p, f in zip(self.proj, self.field_order, strict=True)], 1
        )
        fused = (parts * mask.unsqueeze(-1)).sum(1) / mask.sum(1, keepdim=True)
        return FusionOutput(fused=fused, weights=mask / mask.sum(1, keepdim=True))


def test_check_fusion_catches_a_fusion_that_ignores_the_mask() -> None:
    with pytest.raises(AssertionError, match="absent"):
        check_fusion(_IgnoresMask)


def test_check_fusion_catches_nan_on_samples_without_fields() -> None:
    with pytest.raises(AssertionError, match="NaN"):
        check_fusion(_NaNWhenEmpty)


def test_check_encoder_accepts_dummy_encoder() -> None:
    torch.manual_seed(0)
    check_encoder(DummyEncoder(4, 6), torch.randn(5, 4), torch.tensor([True, False, True, True, False]))


class _LeakyEncoder(DummyEncoder):
    """Forgets to zero the pooled vector of absent samples."""

    def forward(self, x: Tensor, present: Tensor, mask: Tensor | None = None) -> EncoderOutput:
        pooled = self.linear(x)
        return EncoderOutput(tokens=pooled.unsqueeze(1), pooled=pooled)


def test_check_encoder_catches_unzeroed_absent_pooled() -> None:
    with pytest.raises(AssertionError, match="zero"):
        check_encoder(_LeakyEncoder(4, 6), torch.randn(3, 4), torch.tensor([True, False, True]))


def test_check_encoder_needs_present_and_absent_samples() -> None:
    with pytest.raises(ValueError, match="at least one present and one absent"):
        check_encoder(DummyEncoder(4, 6), torch.randn(3, 4), torch.ones(3, dtype=torch.bool))
