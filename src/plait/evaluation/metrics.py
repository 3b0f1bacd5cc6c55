"""Evaluation's figures beyond the task metrics (plait.metrics): the confusion matrix and a
bootstrap 95 % interval for the headline metric."""

from __future__ import annotations

import torch
from torch import Tensor
from torchmetrics.functional.classification import multiclass_confusion_matrix

from plait.task import Task

BOOTSTRAP_SAMPLES = 1000


def confusion_matrix(logits: Tensor, target: Tensor) -> list[list[int]]:
    """counts[true class][predicted class] over logits (N, K) and class indices target (N,)."""
    k = int(logits.shape[1])
    matrix = multiclass_confusion_matrix(logits.float().softmax(dim=-1), target.long(), num_classes=k)
    return [[int(v) for v in row] for row in matrix.tolist()]


def bootstrap_interval(
    output: Tensor, target: Tensor, task: Task, *, samples: int = BOOTSTRAP_SAMPLES, seed: int = 0
) -> tuple[float, float]:
    """95 % percentile-bootstrap interval of the task's headline metric (accuracy, or RMSE in the
    units given) over rows resampled with replacement; seeded, so the same inputs give the same
    interval."""
    n = int(target.shape[0])
    if n == 0:
        raise ValueError("bootstrap_interval: no rows")
    if task.is_classification:
        per_row = (output.float().argmax(dim=-1) == target.long()).double()  # (N,) 1 when right
    else:
        per_row = (output.float().reshape(-1) - target.float().reshape(-1)).double() ** 2  # (N,)
    generator = torch.Generator().manual_seed(seed)
    idx = torch.randint(0, n, (samples, n), generator=generator)  # (S, N) resampled rows
    stats = per_row[idx].mean(dim=1)  # (S,)
    if not task.is_classification:
        stats = stats.sqrt()  # mean squared error -> RMSE
    low, high = torch.quantile(stats, torch.tensor([0.025, 0.975], dtype=stats.dtype)).tolist()
    return float(low), float(high)
