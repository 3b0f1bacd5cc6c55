"""Modality balance as pure functions: each field's own loss, and OGM-GE's gradient coefficients.

OGM-GE (Peng et al., "Balanced Multimodal Learning via On-the-fly Gradient Modulation", CVPR 2022)
slows the encoder of the field that is already winning: each field's confidence in the true label
is compared with the other fields'; a field ahead by ratio ρ > 1 gets its encoder's gradient scaled
by 1 − tanh(α·(ρ − 1)), plus Gaussian noise of the gradient's own spread (the "GE" part, which
gives back the gradient noise the scaling took away). plait scores each field with its light
unimodal head, where the paper splits the fused linear head; that works for every fusion.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Protocol

import torch
from torch import Tensor


class SupervisedTask(Protocol):
    """What these functions ask of the task (plait.task.Task is one)."""

    @property
    def is_classification(self) -> bool: ...

    def loss(self, output: Tensor, target: Tensor) -> Tensor: ...


def unimodal_losses(
    outputs: Mapping[str, Tensor], present: Mapping[str, Tensor], target: Tensor, task: SupervisedTask
) -> dict[str, Tensor]:
    """Each field's own loss over the rows where that field is present.

    outputs[f] [B, K] (logits, or [B, 1] predictions), present[f] BoolTensor[B], target [B].
    A field present in no row gets a zero loss that still belongs to the graph.
    """
    losses: dict[str, Tensor] = {}
    for field, out in outputs.items():
        rows = present[field].bool()
        if not bool(rows.any()):
            losses[field] = out.sum() * 0.0
            continue
        losses[field] = task.loss(out[rows], target[rows])
    return losses


@torch.no_grad()
def target_scores(
    outputs: Mapping[str, Tensor], present: Mapping[str, Tensor], target: Tensor, task: SupervisedTask
) -> dict[str, float]:
    """How well each field alone explains the batch, in (0, 1]; higher is better.

    Classification: the mean probability given to the true class (OGM-GE's score).
    Regression: 1 / (1 + mean squared error). Fields present in no row are left out.
    """
    return scores_from_sums(list(outputs), score_sums(outputs, present, target, task), task)


@torch.no_grad()
def score_sums(
    outputs: Mapping[str, Tensor], present: Mapping[str, Tensor], target: Tensor, task: SupervisedTask
) -> Tensor:
    """(F, 2): per field (in `outputs`' order) the summed per-row score quantity — the true class's
    probability, or the squared error — and the row count. Sums add up across processes, so the
    scores of a batch split over DDP processes are those of the whole batch."""
    sums = torch.zeros(len(outputs), 2, dtype=torch.float64)
    for i, (field, out) in enumerate(outputs.items()):
        rows = present[field].bool()
        if not bool(rows.any()):
            continue
        if task.is_classification:
            probs = out[rows].float().softmax(dim=-1)  # (n, K)
            per_row = probs.gather(1, target[rows].long().unsqueeze(1))
        else:
            per_row = (out[rows].float().reshape(-1) - target[rows].float()) ** 2
        sums[i, 0] = float(per_row.double().sum())
        sums[i, 1] = int(rows.sum())
    return sums


def scores_from_sums(fields: list[str], sums: Tensor, task: SupervisedTask) -> dict[str, float]:
    """`target_scores` from `score_sums` (summed over processes, or not)."""
    scores: dict[str, float] = {}
    for i, field in enumerate(fields):
        total, count = float(sums[i, 0]), float(sums[i, 1])
        if count <= 0:
            continue
        mean = total / count
        scores[field] = mean if task.is_classification else 1.0 / (1.0 + mean)
    return scores


def ogm_coefficients(scores: Mapping[str, float], alpha: float) -> dict[str, float]:
    """Gradient scale per field: 1 − tanh(α·(ρ_f − 1)) when ρ_f > 1, else 1, where ρ_f is the
    field's score over the mean score of the other fields. With one scored field, all 1."""
    if alpha < 0:
        raise ValueError(f"ogm_coefficients: alpha must be ≥ 0; got {alpha!r}")
    coefficients = {field: 1.0 for field in scores}
    if len(scores) < 2:
        return coefficients
    for field, score in scores.items():
        others = [s for f, s in scores.items() if f != field]
        ratio = score / max(sum(others) / len(others), 1e-8)
        if ratio > 1.0:
            coefficients[field] = 1.0 - math.tanh(alpha * (ratio - 1.0))
    return coefficients


def modulate_gradients(
    parameters: list[torch.nn.Parameter],
    coefficient: float,
    noise: bool,
    generator: torch.Generator | None = None,
) -> None:
    """Scale the gradients in place by `coefficient`; with `noise`, add N(0, std(grad)²) per tensor,
    drawn from `generator` (a CPU generator seeded alike on every DDP process keeps them equal)."""
    for p in parameters:
        if p.grad is None:
            continue
        spread = float(p.grad.std()) if noise and p.grad.numel() > 1 else 0.0
        p.grad.mul_(coefficient)
        if spread > 0.0:
            draw = torch.randn(p.grad.shape, generator=generator, dtype=p.grad.dtype)  # on the CPU
            p.grad.add_(draw.to(p.grad.device) * spread)
