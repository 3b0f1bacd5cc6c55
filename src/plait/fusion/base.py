"""The fusion contract: combine per-field encoder outputs under a presence mask.

Every fusion is an nn.Module built with plain arguments
`Fusion(field_to_dim={"photo": 64, "note": 64}, output_dim=64, **options)` and
`forward(inputs, present) -> FusionOutput`. No fusion may assume every field is present:
a sample may have any non-empty subset of its fields (and must not crash on an empty one).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import ClassVar, Protocol

import torch
from torch import Tensor

from plait.errors import ConfigError
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


# Optional hooks. A fusion that needs data (not just gradients) implements one or more of these;
# the trainer looks them up with `getattr` and calls them in this order:
#
#   prepare(pooled, present) -> None
#       once, before the fusion starts training (after unimodal pretraining when train.stages has
#       it), with the pooled encoder outputs of up to PREPARE_ROWS training rows:
#       pooled[f] FloatTensor[N, D_f], present[f] BoolTensor[N]. Whatever it decides must live in
#       buffers, so it round-trips through the bundle (hierarchical: the order fields join in).
#
#   trains_fields_alone: ClassVar[bool] = True  together with
#   per_field_outputs(inputs) -> dict[str, Tensor[B, K]]
#       the trainer adds each field's own supervised loss (over the rows where it is present) to
#       the fused loss, so each per-field decision is good on its own (stacking).
#
#   fit_held_out(pooled, present, target, task_type) -> None
#       once, after training, with the pooled outputs of the VALIDATION rows, their targets
#       (class indices LongTensor[N], or standardised regression targets FloatTensor[N]) and
#       task_type, one of plait.task.TASK_TYPES — a string at this plug-in boundary (`Task.type`)
#       (stacking: fits its meta-learner). Buffers again.

PREPARE_ROWS = 2048


# Helpers shared by every fusion here: argument checks, gathering pooled vectors under the
# presence mask, softmax over present fields.


def stack_present(present: Mapping[str, Tensor], order: tuple[str, ...]) -> Tensor:
    """BoolTensor[B, M] in `order`."""
    return torch.stack([present[f] for f in order], dim=1)


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


def check_heads(fusion: str, output_dim: int, heads: int) -> None:
    """Multi-head attention splits output_dim into `heads` equal parts."""
    if output_dim % heads != 0:
        raise ConfigError(
            f"{fusion}: output_dim ({output_dim}) must be divisible by heads ({heads}); "
            "choose a number of heads that divides the model dimension (e.g. 1, 2 or 4)"
        )


def masked_attention(q: Tensor, k: Tensor, v: Tensor, key_valid: Tensor) -> tuple[Tensor, Tensor]:
    """Scaled dot-product attention over valid keys only.

    q (B|1, H, T, Dh), k and v (B, H, S, Dh), key_valid BoolTensor[B, S] (every row needs ≥ 1 True:
    a softmax over no key is NaN). Returns context (B, H, T, Dh) and probabilities (B, H, T, S).
    """
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])  # (B, H, T, S)
    probs = torch.softmax(scores.masked_fill(~key_valid[:, None, None, :], float("-inf")), dim=-1)
    return probs @ v, probs
