"""Task metrics with torchmetrics: accuracy / macro-F1 / AUROC and the confusion matrix, or
RMSE / MAE / R²; and a bootstrap 95 % interval for the headline metric."""

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
from torchmetrics.functional.classification import multiclass_auroc, multiclass_confusion_matrix

HEADLINE = {"classification": "accuracy", "regression": "rmse"}
BOOTSTRAP_SAMPLES = 1000


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


def confusion_matrix(logits: Tensor, target: Tensor) -> list[list[int]]:
    """counts[true class][predicted class] over logits (N, K) and class indices target (N,)."""
    k = int(logits.shape[1])
    matrix = multiclass_confusion_matrix(logits.float().softmax(dim=-1), target.long(), num_classes=k)
    return [[int(v) for v in row] for row in matrix.tolist()]


def bootstrap_interval(
    output: Tensor, target: Tensor, task_type: str, *, samples: int = BOOTSTRAP_SAMPLES, seed: int = 0
) -> tuple[float, float]:
    """95 % percentile-bootstrap interval of the headline metric (accuracy, or RMSE in the units
    given) over rows resampled with replacement; seeded, so the same inputs give the same interval."""
    n = int(target.shape[0])
    if n == 0:
        raise ValueError("bootstrap_interval: no rows")
    if task_type == "classification":
        per_row = (output.float().argmax(dim=-1) == target.long()).double()  # (N,) 1 when right
    else:
        per_row = (output.float().reshape(-1) - target.float().reshape(-1)).double() ** 2  # (N,)
    generator = torch.Generator().manual_seed(seed)
    idx = torch.randint(0, n, (samples, n), generator=generator)  # (S, N) resampled rows
    stats = per_row[idx].mean(dim=1)  # (S,)
    if task_type != "classification":
        stats = stats.sqrt()
    low, high = torch.quantile(stats, torch.tensor([0.025, 0.975], dtype=stats.dtype)).tolist()
    return float(low), float(high)
