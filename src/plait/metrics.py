"""Task metrics with torchmetrics, as pure functions: accuracy / macro-F1 / AUROC, or RMSE / MAE /
R². Training's validation, the `Task` and evaluation all score with these (evaluation adds the
confusion matrix and the bootstrap interval: plait.evaluation.metrics)."""

from __future__ import annotations

import torch
from torch import Tensor
from torchmetrics.functional import (
    accuracy,
    f1_score,
    mean_absolute_error,
    mean_squared_error,
    r2_score,
)
from torchmetrics.functional.classification import multiclass_auroc


def classification_metrics(logits: Tensor, target: Tensor) -> dict[str, float]:
    """logits (N, K), target (N,) class indices."""
    k = int(logits.shape[1])
    probs = logits.float().softmax(dim=-1)
    target = target.long()
    metrics = {
        "accuracy": float(accuracy(probs, target, task="multiclass", num_classes=k)),
        "macro_f1": float(f1_score(probs, target, task="multiclass", num_classes=k, average="macro")),
        "n": int(target.numel()),
    }
    if int(torch.unique(target).numel()) == k:  # AUROC needs every class in the targets
        metrics["auroc"] = float(multiclass_auroc(probs, target, num_classes=k, average="macro"))
    return metrics


def regression_metrics(pred: Tensor, target: Tensor) -> dict[str, float]:
    """pred (N,) or (N, 1), target (N,), both in the target's own units."""
    pred = pred.float().reshape(-1)
    target = target.float().reshape(-1)
    metrics = {
        "rmse": float(mean_squared_error(pred, target, squared=False)),
        "mae": float(mean_absolute_error(pred, target)),
        "n": int(target.numel()),
    }
    if target.numel() >= 2:
        metrics["r2"] = float(r2_score(pred, target))
    return metrics
