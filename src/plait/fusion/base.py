"""The fusion contract: combine per-field encoder outputs under a presence mask.

Every fusion is an nn.Module built with plain arguments
`Fusion(field_to_dim={"photo": 64, "note": 64}, output_dim=64, **options)` and
`forward(inputs, present) -> FusionOutput`. No fusion may assume every field is present:
a sample may have any non-empty subset of its fields (and must not crash on an empty one).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar, Protocol

from torch import Tensor

from plait.types import EncoderOutput, FusionOutput


class Fusion(Protocol):
    """decision_level: True when `fused` already is the model's output (late fusion): the model
    then uses no head and builds the fusion with output_dim = the number of task outputs."""

    decision_level: ClassVar[bool]
    output_dim: int
    field_order: tuple[str, ...]

    def __call__(self, inputs: Mapping[str, EncoderOutput], present: Mapping[str, Tensor]) -> FusionOutput:
        """inputs[f]: tokens [B, L_f, D_f] and pooled [B, D_f]; present[f]: BoolTensor[B].
        Returns fused [B, output_dim] and weights [B, M] over field_order (or None)."""
        ...


def stack_present(present: Mapping[str, Tensor], order: tuple[str, ...]) -> Tensor:
    """BoolTensor[B, M] in `order`."""
    import torch

    return torch.stack([present[f] for f in order], dim=1)
