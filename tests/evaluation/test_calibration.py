"""Calibration errors against cases worked out by hand."""

from __future__ import annotations

import math

import pytest
import torch

from plait.evaluation.calibration import expected_calibration_error, maximum_calibration_error


def _logits(probs: list[list[float]]) -> torch.Tensor:
    return torch.tensor(probs).log()  # softmax(log p) = p


def test_confident_and_correct_is_perfectly_calibrated():
    logits = torch.tensor([[20.0, -20.0, -20.0], [-20.0, 20.0, -20.0], [-20.0, -20.0, 20.0]])
    target = torch.tensor([0, 1, 2])
    assert expected_calibration_error(logits, target) == pytest.approx(0.0, abs=1e-6)
    assert maximum_calibration_error(logits, target) == pytest.approx(0.0, abs=1e-6)


def test_confident_and_wrong_is_maximally_miscalibrated():
    logits = torch.tensor([[20.0, -20.0], [-20.0, 20.0]])
    assert expected_calibration_error(logits, torch.tensor([1, 0])) == pytest.approx(1.0, abs=1e-6)


def test_two_bins_by_hand():
    # Bin at confidence 0.9: 4 rows, 3 correct -> gap |0.75 - 0.9| = 0.15.
    # Bin at confidence 0.6: 2 rows, both correct -> gap |1.0 - 0.6| = 0.4.
    # ECE = (4 * 0.15 + 2 * 0.4) / 6 = 0.2333…; MCE = 0.4.
    probs = [[0.9, 0.1]] * 4 + [[0.4, 0.6]] * 2
    target = torch.tensor([0, 0, 0, 1, 1, 1])
    logits = _logits(probs)
    assert expected_calibration_error(logits, target) == pytest.approx(1.4 / 6, abs=1e-5)
    assert maximum_calibration_error(logits, target) == pytest.approx(0.4, abs=1e-5)


def test_logits_are_softmaxed_even_inside_unit_interval():
    # Logits (0, 0) mean p = (0.5, 0.5): a correct argmax at confidence 0.5 is 0.5 off.
    ece = expected_calibration_error(torch.zeros(1, 2), torch.tensor([0]))
    assert math.isclose(ece, 0.5, abs_tol=1e-6)


def test_shapes_are_checked():
    with pytest.raises(ValueError, match=r"expected logits \(N, K\)"):
        expected_calibration_error(torch.zeros(3), torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="no rows"):
        expected_calibration_error(torch.zeros(0, 2), torch.zeros(0, dtype=torch.long))
