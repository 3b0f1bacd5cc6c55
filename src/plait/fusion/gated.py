"""Gated fusion: each field proposes a vector and a trust score; the softmax of the scores over
the PRESENT fields mixes the vectors.

The gate is computed from the field's own features, so the model can learn to trust a field less
when its input looks unusual. weights [B, M] are the gates (0 for absent fields); a sample with no
field present gets the zero vector.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import torch
from torch import Tensor, nn

from plait.fusion.base import check_fusion_args, check_positive, gather_present, softmax_over_present
from plait.types import EncoderOutput, FusionOutput


class GatedFusion(nn.Module):
    """`GatedFusion(field_to_dim={"audio": 256, "photo": 512}, output_dim=256, gate_hidden=32)`."""

    decision_level: ClassVar[bool] = False

    def __init__(
        self, field_to_dim: Mapping[str, int], output_dim: int, gate_hidden: int = 32, dropout: float = 0.1
    ) -> None:
        super().__init__()
        check_fusion_args("gated fusion", field_to_dim, output_dim, dropout)
        check_positive("gated fusion", "gate_hidden", gate_hidden)
        self.field_order: tuple[str, ...] = tuple(field_to_dim)
        self.output_dim = output_dim
        self.proj = nn.ModuleList(
            nn.Sequential(nn.Linear(field_to_dim[f], output_dim), nn.GELU(), nn.Dropout(dropout))
            for f in self.field_order
        )
        self.gates = nn.ModuleList(
            nn.Sequential(nn.Linear(output_dim, gate_hidden), nn.GELU(), nn.Linear(gate_hidden, 1))
            for _ in self.field_order
        )
        self.norm = nn.LayerNorm(output_dim)

    def forward(self, inputs: Mapping[str, EncoderOutput], present: Mapping[str, Tensor]) -> FusionOutput:
        pooled, mask = gather_present(inputs, present, self.field_order)
        h = torch.stack([proj(p) for proj, p in zip(self.proj, pooled, strict=True)], dim=1)  # (B, M, D)
        logits = torch.cat([gate(h[:, i]) for i, gate in enumerate(self.gates)], dim=1)  # (B, M)
        weights = softmax_over_present(logits, mask)
        mixed = (weights.unsqueeze(-1) * h).sum(dim=1)  # (B, M, D) -> (B, D)
        # LayerNorm would turn an all-absent row into its bias; such a row stays exactly zero.
        fused = self.norm(mixed) * mask.any(dim=1, keepdim=True).to(mixed.dtype)
        return FusionOutput(fused=fused, weights=weights)
