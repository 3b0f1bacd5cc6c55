"""The Task object: what depends on classification vs regression, in one place."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from plait.errors import ConfigError
from plait.objectives.supervised import classification_loss, regression_loss
from plait.task import CLASSIFICATION, REGRESSION, Task

CLS = Task(CLASSIFICATION, "fault", ("ok", "worn", "broken"))
REG = Task(REGRESSION, "flow", target_mean=10.0, target_std=2.0)


def test_the_json_is_plait_json_task_object_and_round_trips():
    """Bundles written before Task existed hold exactly these keys; they must still load."""
    written = {"type": "classification", "label": "fault", "classes": ["ok", "worn", "broken"]}
    old = {**written, "target_mean": 0.0, "target_std": 1.0}
    assert CLS.to_json() == old and Task.from_json(old) == CLS
    assert Task.from_json(REG.to_json()) == REG
    with pytest.raises(ConfigError, match="classification, regression or embedding"):
        Task("ranking", "y")  # type: ignore[arg-type]


def test_outputs_metrics_and_direction():
    assert (CLS.is_classification, CLS.n_outputs, REG.is_classification, REG.n_outputs) == (True, 3, False, 1)
    assert (CLS.headline_metric, CLS.higher_is_better, CLS.robustness_metric) == (
        "accuracy",
        True,
        "accuracy",
    )
    assert (REG.headline_metric, REG.higher_is_better, REG.robustness_metric) == ("rmse", False, "r2")


def test_targets_encode_and_answers_decode():
    assert CLS.encode_targets(np.array([2, 0, -1])).dtype == np.int64
    values = REG.encode_targets(np.array([10.0, 14.0, np.nan]))
    assert values.dtype == np.float32 and values[:2].tolist() == [0.0, 2.0] and np.isnan(values[2])
    assert CLS.answer(torch.tensor([0.1, 2.0, -1.0])) == "worn"
    assert CLS.answer(torch.tensor(2)) == "broken"  # an encoded target
    assert REG.answer(torch.tensor([1.5])) == pytest.approx(13.0)
    assert REG.to_target_units(torch.tensor([[0.0], [-1.0]])).tolist() == [10.0, 8.0]
    logits = torch.tensor([[0.0, 1.0, 2.0]])
    assert torch.allclose(CLS.probabilities(logits), logits.softmax(dim=-1))
    with pytest.raises(ConfigError, match="no class probabilities"):
        REG.probabilities(logits)


def test_standardisation_uses_the_rows_given():
    task = Task(REGRESSION, "flow").standardised_on(np.array([1.0, 3.0]))
    assert (task.target_mean, task.target_std) == (2.0, 1.0)
    assert Task(REGRESSION, "flow").standardised_on(np.array([4.0, 4.0])).target_std == 1.0  # constant
    assert CLS.standardised_on(np.array([0, 1, 2])) is CLS


def test_loss_and_metrics_are_the_task_s():
    logits, classes = torch.tensor([[2.0, 0.0, 0.0], [0.0, 0.0, 3.0]]), torch.tensor([0, 1])
    assert torch.equal(CLS.loss(logits, classes), classification_loss(logits, classes))
    pred, target = torch.tensor([[0.5], [1.0]]), torch.tensor([0.0, 1.0])
    assert torch.equal(REG.loss(pred, target), regression_loss(pred, target))
    assert CLS.metrics(logits, classes)["accuracy"] == pytest.approx(0.5)
    rmse = REG.metrics(pred, target)["rmse"]  # in target units: errors of 0.5 std = 1.0
    assert rmse == pytest.approx(float(np.sqrt((1.0**2 + 0.0) / 2)))
