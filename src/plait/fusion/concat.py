"""Concatenation (feature-level) fusion: the simplest strong baseline.

An absent field's pooled vector is replaced by a learned per-field placeholder, so the projection
can tell "absent" from "present with a zero vector"; the placeholders are concatenated with the
present fields' vectors and projected to output_dim. There are no per-field weights.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import torch
from torch import Tensor, nn

from plait.fusion.base import check_fusion_args, gather_present
from plait.types import EncoderOutput, FusionOutput


class ConcatFusion(nn.Module):
    """`ConcatFusion(field_to_dim={"photo": 64, "note": 32}, output_dim=64, dropout=0.1)`."""

    decision_level: ClassVar[bool] = False

    def __init__(self, field_to_dim: Mapping[str, int], output_dim: int, dropout: float = 0.1) -> None:
        super().__init__()
        check_fusion_args("concat fusion", field_to_dim, output_dim, dropout)
        self.field_order: tuple[str, ...] = tuple(field_to_dim)
        self.output_dim = output_dim
        self.placeholders = nn.ParameterList(
            nn.Parameter(0.02 * torch.randn(field_to_dim[f])) for f in self.field_order
        )
        self.proj = nn.Sequential(
            nn.Linear(sum(field_to_dim.values()), output_dim), nn.GELU(), nn.Dropout(dropout)
        )

    def forward(self, inputs: Mapping[str, EncoderOutput], present: Mapping[str, Tensor]) -> FusionOutput:
        pooled, mask = gather_present(inputs, present, self.field_order)
        parts = [
            torch.where(mask[:, i : i + 1], p, placeholder.unsqueeze(0).expand_as(p))
            for i, (p, placeholder) in enumerate(zip(pooled, self.placeholders, strict=True))
        ]
        fused = self.proj(torch.cat(parts, dim=1))  # (B, sum D_f) -> (B, output_dim)
        return FusionOutput(fused=fused, weights=None)
