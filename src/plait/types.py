"""Shared vocabulary: batches and the typed outputs of encoders, fusions and models. (The field
kinds are the modality registry's names: plait.modalities.MODALITIES.)

Shapes: B = batch, L = tokens per field, D = feature width, M = number of fields.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import torch
from torch import Tensor


@dataclass(frozen=True)
class Absent:
    """What `Modality.load` returns for a value that is not there: the field is absent for
    that row (presence mask) and the reason is counted. Never a fabricated value."""

    reason: str  # "empty", "unreadable", "undecodable", "non-finite", "too short", …
    detail: str = ""


@dataclass(frozen=True)
class Batch:
    """One batch. A missing field is zero-filled in `values` AND False in `present`.

    values[f]: the collated tensor of field f, first dim B.
    present[f]: BoolTensor[B], True where field f was observed for that sample.
    masks[f]: BoolTensor[B, L] of valid steps for padded sequence fields (True = real step).
    target: LongTensor[B] (classification) or FloatTensor[B] (regression), or None at predict time.
    """

    values: Mapping[str, Tensor]
    present: Mapping[str, Tensor]
    masks: Mapping[str, Tensor] = field(default_factory=dict)
    target: Tensor | None = None

    @property
    def size(self) -> int:
        return int(next(iter(self.present.values())).shape[0])

    def to(self, device: torch.device | str) -> Batch:
        """A copy on `device` (frozen records cannot be moved in place)."""
        return Batch(
            values={k: v.to(device) for k, v in self.values.items()},
            present={k: v.to(device) for k, v in self.present.items()},
            masks={k: v.to(device) for k, v in self.masks.items()},
            target=None if self.target is None else self.target.to(device),
        )

    def with_present(self, present: Mapping[str, Tensor]) -> Batch:
        """The same batch under another presence mask (modality dropout, ablation)."""
        return Batch(values=self.values, present=present, masks=self.masks, target=self.target)


@dataclass(frozen=True)
class EncoderOutput:
    """tokens [B, L, D]; pooled [B, D] (zero where the field is absent);
    token_mask BoolTensor[B, L] (True = real token) or None when every token is real."""

    tokens: Tensor
    pooled: Tensor
    token_mask: Tensor | None = None


@dataclass(frozen=True)
class FusionOutput:
    """fused [B, D_out]; weights [B, M] (gates, attention mass; 0 for absent fields) in the
    fusion's field order, or None for fusions that have none."""

    fused: Tensor
    weights: Tensor | None = None


@dataclass(frozen=True)
class ModelOutput:
    """output [B, K]: logits for classification (K classes), predictions for regression (K=1).
    weights [B, M] from the fusion, or None; field_order names the M columns of weights.
    What the model returns for a batch and what a run over a table returns (rows N for B)."""

    output: Tensor
    weights: Tensor | None
    field_order: tuple[str, ...]

    def float(self) -> ModelOutput:
        """The same output with output and weights in float32 (as runs hand them back)."""
        weights = None if self.weights is None else self.weights.float()
        return ModelOutput(output=self.output.float(), weights=weights, field_order=self.field_order)
