"""Late (decision-level) fusion: one small head per field, mixed by learned trust weights.

Each field decides on its own (`head_f(pooled_f)` → [B, K]); the decisions are averaged with a
softmax over the fields that are PRESENT for that sample. A sample with no field at all gets a
learned bias, so it still has a finite output. Because `fused` already is the model's output,
the model uses no head after it (`decision_level = True`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import torch
from torch import Tensor, nn

from plait.fusion.base import check_fusion_args, check_positive, gather_present, softmax_over_present
from plait.types import EncoderOutput, FusionOutput


def decision_heads(
    field_to_dim: Mapping[str, int], output_dim: int, hidden: int, dropout: float
) -> nn.ModuleList:
    """One small MLP per field, in field_to_dim's order: pooled [B, D_f] → decision [B, output_dim]."""
    return nn.ModuleList(
        nn.Sequential(
            nn.Linear(dim, hidden),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, output_dim),
        )
        for dim in field_to_dim.values()
    )


class LateFusion(nn.Module):
    """`LateFusion(field_to_dim={"photo": 64, "note": 64}, output_dim=3, hidden=64)`.

    output_dim is the number of task outputs (classes, or 1 for regression).
    weights [B, M] are the per-sample mixing weights of the field decisions.
    """

    decision_level: ClassVar[bool] = True

    def __init__(
        self, field_to_dim: Mapping[str, int], output_dim: int, hidden: int = 64, dropout: float = 0.1
    ) -> None:
        super().__init__()
        check_fusion_args("late fusion", field_to_dim, output_dim, dropout)
        check_positive("late fusion", "hidden", hidden)
        self.field_order: tuple[str, ...] = tuple(field_to_dim)
        self.output_dim = output_dim
        # ModuleList in field order: field names may hold characters a ModuleDict key may not.
        self.heads = decision_heads(field_to_dim, output_dim, hidden, dropout)
        self.weight_logits = nn.Parameter(torch.zeros(len(self.field_order)))
        self.fallback = nn.Parameter(torch.zeros(output_dim))  # the output when no field is present

    def per_field_outputs(self, inputs: Mapping[str, EncoderOutput]) -> dict[str, Tensor]:
        """Each field's own decision [B, output_dim], as given (rows of absent samples are meaningless)."""
        return {f: head(inputs[f].pooled) for f, head in zip(self.field_order, self.heads, strict=True)}

    def forward(self, inputs: Mapping[str, EncoderOutput], present: Mapping[str, Tensor]) -> FusionOutput:
        pooled, mask = gather_present(inputs, present, self.field_order)
        decisions = torch.stack(
            [head(p) for head, p in zip(self.heads, pooled, strict=True)], dim=1
        )  # (B, M, K)
        logits = self.weight_logits.unsqueeze(0).expand(mask.shape[0], -1)  # (M,) -> (B, M)
        weights = softmax_over_present(logits, mask)
        mixed = (weights.unsqueeze(-1) * decisions).sum(dim=1)  # (B, M, K) -> (B, K)
        any_present = mask.any(dim=1, keepdim=True)  # (B, 1)
        fused = torch.where(any_present, mixed, self.fallback.unsqueeze(0).expand_as(mixed))
        return FusionOutput(fused=fused, weights=weights)
