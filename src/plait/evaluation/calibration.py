"""Calibration: does a predicted confidence of 0.8 come true 80 % of the time?

Predictions are binned by their confidence (the top class's probability) into `n_bins` equal-width
bins; each bin's gap is |accuracy - mean confidence|. Expected calibration error (ECE) averages the
gaps weighted by the bin's share of rows; maximum calibration error (MCE) is the largest gap.
"""

from __future__ import annotations

from typing import Literal

from torch import Tensor
from torchmetrics.functional.classification import multiclass_calibration_error


def expected_calibration_error(logits: Tensor, target: Tensor, n_bins: int = 15) -> float:
    """ECE in [0, 1] of logits (N, K) against class indices target (N,)."""
    return _calibration_error(logits, target, n_bins, "l1")


def maximum_calibration_error(logits: Tensor, target: Tensor, n_bins: int = 15) -> float:
    """MCE in [0, 1]: the largest gap of any non-empty confidence bin."""
    return _calibration_error(logits, target, n_bins, "max")


def _calibration_error(logits: Tensor, target: Tensor, n_bins: int, norm: Literal["l1", "max"]) -> float:
    if logits.ndim != 2 or target.ndim != 1 or logits.shape[0] != target.shape[0]:
        raise ValueError(
            f"calibration error: expected logits (N, K) and target (N,); "
            f"got {tuple(logits.shape)} and {tuple(target.shape)}"
        )
    if logits.shape[0] == 0:
        raise ValueError("calibration error: no rows; it needs at least one prediction")
    # Softmax here: torchmetrics takes inputs that already lie in [0, 1] for probabilities as they are.
    probs = logits.float().softmax(dim=-1)  # (N, K)
    k = int(logits.shape[1])
    return float(multiclass_calibration_error(probs, target.long(), num_classes=k, n_bins=n_bins, norm=norm))
