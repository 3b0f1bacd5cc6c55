"""Supervised losses as pure functions (no module: they hold no learnable state)."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor


def classification_loss(logits: Tensor, target: Tensor, label_smoothing: float = 0.0) -> Tensor:
    """Mean cross-entropy of logits [B, K] against class indices target [B]."""
    if logits.dim() != 2 or target.dim() != 1 or logits.shape[0] != target.shape[0]:
        raise ValueError(
            f"classification_loss expects logits [B, K] and target [B]; got logits {tuple(logits.shape)} "
            f"and target {tuple(target.shape)}"
        )
    if not 0.0 <= label_smoothing < 1.0:
        raise ValueError(f"label_smoothing must be in [0, 1); got {label_smoothing!r}")
    return F.cross_entropy(logits, target.long(), label_smoothing=label_smoothing)


def regression_loss(pred: Tensor, target: Tensor) -> Tensor:
    """Mean squared error of predictions [B, 1] or [B] against target [B]."""
    if pred.dim() == 2 and pred.shape[1] == 1:
        pred = pred.squeeze(1)  # (B, 1) -> (B,)
    if pred.dim() != 1 or target.dim() != 1 or pred.shape[0] != target.shape[0]:
        raise ValueError(
            f"regression_loss expects pred [B, 1] or [B] and target [B]; got pred {tuple(pred.shape)} "
            f"and target {tuple(target.shape)}"
        )
    return F.mse_loss(pred, target.to(pred.dtype))


def distillation_loss(student: Tensor, teacher: Tensor, *, classification: bool) -> Tensor:
    """How far the student's outputs are from the teacher's (the teacher is not trained by it):
    KL(teacher ‖ student) of the class distributions from logits [B, K], or the mean squared
    difference of predictions [B, 1]."""
    if student.shape != teacher.shape:
        raise ValueError(
            "distillation_loss expects outputs of one shape; got "
            f"{tuple(student.shape)} and {tuple(teacher.shape)}"
        )
    target = teacher.detach()
    if classification:
        return F.kl_div(
            F.log_softmax(student, dim=-1),
            F.log_softmax(target, dim=-1),
            log_target=True,
            reduction="batchmean",
        )
    return F.mse_loss(student, target)
