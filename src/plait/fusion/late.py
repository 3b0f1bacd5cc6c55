"""Late (decision-level) fusion: one small head per field, mixed by learned trust weights.

Each field decides on its own (`head_f(pooled_f)` → [B, K]); the decisions are averaged with a
softmax over the fields that are PRESENT for that sample. A sample with no field at all gets a
learned bias, so it still has a finite output. Because `fused` already is the model's output,
the model uses no head after it (`decision_level = True`).

This module also holds the small helpers every fusion here shares (argument checks, gathering
pooled vectors under the presence mask, softmax over present fields).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import torch
from torch import Tensor, nn

from plait.errors import ConfigError
from plait.fusion.base import stack_present
from plait.types import EncoderOutput, FusionOutput


def check_fusion_args(fusion: str, field_to_dim: Mapping[str, int], output_dim: int, dropout: float) -> None:
    """Check the constructor arguments shared by every fusion; raise ConfigError naming the bad one."""
    if len(field_to_dim) == 0:
        raise ConfigError(f"{fusion}: field_to_dim is empty; a fusion needs at least one field")
    for name, dim in field_to_dim.items():
        if not isinstance(dim, int) or isinstance(dim, bool) or dim < 1:
            raise ConfigError(
                f"{fusion}: field '{name}' has feature width {dim!r}; expected a positive integer "
                "(the encoder's output_dim)"
            )
    if not isinstance(output_dim, int) or isinstance(output_dim, bool) or output_dim < 1:
        raise ConfigError(f"{fusion}: output_dim must be a positive integer; got {output_dim!r}")
    if not 0.0 <= dropout < 1.0:
        raise ConfigError(f"{fusion}: dropout must be in [0, 1); got {dropout!r}")


def check_positive(fusion: str, option: str, value: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ConfigError(f"{fusion}: option '{option}' must be a positive integer; got {value!r}")


def gather_present(
    inputs: Mapping[str, EncoderOutput], present: Mapping[str, Tensor], order: tuple[str, ...]
) -> tuple[list[Tensor], Tensor]:
    """Pooled vectors in `order` with absent rows set to exactly zero, and the mask BoolTensor[B, M].

    Zeroing here (instead of trusting the encoder) makes the output and its gradient independent
    of whatever an absent field's input holds.
    """
    missing = [f for f in order if f not in inputs or f not in present]
    if missing:
        raise KeyError(
            f"fusion expects fields {list(order)}; no encoder output or presence mask for {missing}. "
            "Pass every field (zero-filled and marked absent when it is missing)"
        )
    mask = stack_present(present, order).bool()  # (B, M)
    pooled = [
        torch.where(mask[:, i : i + 1], inputs[f].pooled, torch.zeros_like(inputs[f].pooled))
        for i, f in enumerate(order)
    ]
    return pooled, mask


def softmax_over_present(logits: Tensor, present: Tensor) -> Tensor:
    """Softmax of logits [B, M] over the present entries of each row; absent entries get 0.

    A row with no present entry gets all zeros (not NaN, which -inf masking would give).
    """
    masked = logits.masked_fill(~present, torch.finfo(logits.dtype).min)
    weights = torch.softmax(masked, dim=-1) * present.to(logits.dtype)
    return weights / weights.sum(dim=-1, keepdim=True).clamp_min(torch.finfo(logits.dtype).tiny)


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
        self.heads = nn.ModuleList(
            nn.Sequential(
                nn.Linear(field_to_dim[f], hidden),
                nn.GELU(),
                nn.Dropout(dropout),
                nn.Linear(hidden, output_dim),
            )
            for f in self.field_order
        )
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
