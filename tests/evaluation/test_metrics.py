"""Confusion matrix and the bootstrap interval of the headline metric."""

from __future__ import annotations

import pytest
import torch

from plait.evaluation.metrics import bootstrap_interval, confusion_matrix
from plait.task import Task

CLS = Task(type="classification", label="y", classes=("a", "b", "c"))
REG = Task(type="regression", label="y")


def _logits(pred: list[int], k: int = 3) -> torch.Tensor:
    return torch.nn.functional.one_hot(torch.tensor(pred), k).float() * 5.0


def test_confusion_matrix_counts_true_rows_predicted_columns() -> None:
    target = torch.tensor([0, 0, 1, 2, 2, 2])
    matrix = confusion_matrix(_logits([0, 1, 1, 2, 0, 2]), target)
    assert matrix == [[1, 1, 0], [0, 1, 0], [1, 0, 2]]


def test_bootstrap_interval_brackets_accuracy_and_is_seeded() -> None:
    g = torch.Generator().manual_seed(0)
    target = torch.randint(0, 3, (400,), generator=g)
    pred = torch.where(torch.rand(400, generator=g) < 0.8, target, (target + 1) % 3)
    low, high = bootstrap_interval(_logits(pred.tolist()), target, CLS)
    accuracy = float((pred == target).float().mean())
    assert low < accuracy < high
    assert 0.02 < high - low < 0.2
    assert bootstrap_interval(_logits(pred.tolist()), target, CLS) == (low, high)
    few_low, few_high = bootstrap_interval(_logits(pred[:40].tolist()), target[:40], CLS)
    assert few_high - few_low > high - low  # fewer rows, wider interval


def test_bootstrap_interval_for_regression_is_an_rmse_interval() -> None:
    g = torch.Generator().manual_seed(1)
    target = torch.randn(300, generator=g) * 10
    pred = target + torch.randn(300, generator=g) * 2.0
    low, high = bootstrap_interval(pred.unsqueeze(1), target, REG)
    rmse = float(((pred - target) ** 2).mean().sqrt())
    assert low < rmse < high
    assert low > 1.5 and high < 2.5
    with pytest.raises(ValueError, match="no rows"):
        bootstrap_interval(pred[:0], target[:0], REG)
