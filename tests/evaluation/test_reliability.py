"""The reliability curve: its bins by hand, and the ECE / MCE read off it agree with torchmetrics."""

from __future__ import annotations

import json

import pytest
import torch
from torchmetrics.functional.classification import multiclass_calibration_error

from plait.errors import DataError
from plait.evaluation.calibration import (
    expected_calibration_error,
    maximum_calibration_error,
    reliability_curve,
)


def test_bins_by_hand() -> None:
    # 4 rows at confidence 0.9 (3 right) fall in bin 13 = [13/15, 14/15); 2 rows at 0.62 (both
    # right) in bin 9 = [9/15, 10/15).
    probs = torch.tensor([[0.9, 0.1]] * 4 + [[0.38, 0.62]] * 2, dtype=torch.float64)
    curve = reliability_curve(probs.log(), torch.tensor([0, 0, 0, 1, 1, 1]))
    assert len(curve.edges) == 16 and curve.edges[0] == 0.0 and curve.edges[-1] == 1.0
    assert curve.count == (0,) * 9 + (2,) + (0,) * 3 + (4,) + (0,)
    assert curve.accuracy[13] == pytest.approx(0.75) and curve.confidence[13] == pytest.approx(0.9)
    assert curve.accuracy[9] == pytest.approx(1.0) and curve.confidence[9] == pytest.approx(0.62)
    assert curve.confidence[0] == 0.0 and curve.accuracy[0] == 0.0  # empty bins
    assert curve.ece == pytest.approx((4 * 0.15 + 2 * 0.38) / 6)
    assert curve.mce == pytest.approx(0.38)


def test_a_saturated_confidence_lands_in_the_last_bin() -> None:
    curve = reliability_curve(torch.tensor([[1000.0, 0.0], [0.0, 1000.0]]), torch.tensor([0, 0]), n_bins=4)
    assert curve.count == (0, 0, 0, 2)
    assert curve.confidence[-1] == 1.0 and curve.accuracy[-1] == 0.5


@pytest.mark.parametrize("n_bins", [1, 10, 15])
def test_ece_and_mce_are_read_off_the_curve_and_match_torchmetrics(n_bins: int) -> None:
    g = torch.Generator().manual_seed(n_bins)
    logits = torch.randn(500, 4, generator=g, dtype=torch.float64) * 3
    target = torch.randint(0, 4, (500,), generator=g)
    curve = reliability_curve(logits, target, n_bins)
    assert curve.rows == 500 and len(curve.count) == n_bins
    gaps = sum(n * abs(a - c) for n, a, c in zip(curve.count, curve.accuracy, curve.confidence, strict=True))
    assert expected_calibration_error(logits, target, n_bins) == pytest.approx(gaps / 500, abs=1e-12)
    probs = logits.softmax(dim=-1)
    for norm, ours in (("l1", curve.ece), ("max", curve.mce)):
        theirs = float(multiclass_calibration_error(probs, target, num_classes=4, n_bins=n_bins, norm=norm))
        assert ours == pytest.approx(theirs, abs=1e-6)  # torchmetrics works in float32
    assert maximum_calibration_error(logits, target, n_bins) == curve.mce


def test_curve_is_json_ready() -> None:
    curve = reliability_curve(
        torch.randn(20, 3, generator=torch.Generator().manual_seed(0)), torch.zeros(20).long()
    )
    data = json.loads(json.dumps(curve.to_json()))
    assert data["count"] == list(curve.count) and data["ece"] == pytest.approx(curve.ece)


@pytest.mark.parametrize(
    ("logits", "target", "n_bins", "message"),
    [
        (torch.zeros(2, 2), torch.tensor([0, 1]), 0, "n_bins must be an integer ≥ 1"),
        (torch.zeros(2, 2), torch.tensor([0, 2]), 15, r"class indices in \[0, 2\)"),
        (torch.tensor([[0.0, float("inf")]]), torch.tensor([0]), 15, "NaN or infinity"),
    ],
)
def test_bad_inputs_are_named(logits: torch.Tensor, target: torch.Tensor, n_bins: int, message: str) -> None:
    with pytest.raises(DataError, match=message):
        reliability_curve(logits, target, n_bins)
