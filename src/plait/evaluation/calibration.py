"""Calibration: does a predicted confidence of 0.8 come true 80 % of the time?

Predictions are binned by their confidence (the top class's probability) into `n_bins` equal-width
bins; each bin's gap is |accuracy - mean confidence|. Expected calibration error (ECE) averages the
gaps weighted by the bin's share of rows; maximum calibration error (MCE) is the largest gap of a
non-empty bin.

One binning serves the numbers and the diagram: `reliability_curve` bins the rows and ECE / MCE are
read off its bins, so a reliability diagram always shows the ECE printed beside it. Bin i holds
confidences in [edge_i, edge_i+1); the last bin is closed, so a confidence of exactly 1.0 (a
saturated softmax) lands in it. (torchmetrics 1.9 gives such rows a hidden extra bin, which
differs only when saturated rows exist; softmax runs in float64 here, which makes them rare.)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from plait.errors import DataError


@dataclass(frozen=True)
class ReliabilityCurve:
    """What a reliability diagram draws: per confidence bin, the rows' mean confidence, their
    accuracy and their count. Empty bins have confidence and accuracy 0.0 and count 0."""

    edges: tuple[float, ...]  # n_bins + 1, from 0.0 to 1.0
    confidence: tuple[float, ...]  # n_bins
    accuracy: tuple[float, ...]  # n_bins
    count: tuple[int, ...]  # n_bins

    @property
    def rows(self) -> int:
        return sum(self.count)

    @property
    def ece(self) -> float:
        """sum over bins of count * |accuracy - confidence|, divided by the number of rows."""
        gaps = (n * abs(a - c) for n, a, c in zip(self.count, self.accuracy, self.confidence, strict=True))
        return sum(gaps) / self.rows

    @property
    def mce(self) -> float:
        return max(
            abs(a - c) for n, a, c in zip(self.count, self.accuracy, self.confidence, strict=True) if n > 0
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "edges": list(self.edges),
            "confidence": list(self.confidence),
            "accuracy": list(self.accuracy),
            "count": list(self.count),
            "ece": self.ece,
            "mce": self.mce,
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> ReliabilityCurve:
        """The bins back from `to_json` (ece and mce are recomputed from them)."""
        return cls(
            edges=tuple(float(x) for x in raw["edges"]),
            confidence=tuple(float(x) for x in raw["confidence"]),
            accuracy=tuple(float(x) for x in raw["accuracy"]),
            count=tuple(int(x) for x in raw["count"]),
        )


def reliability_curve(logits: Tensor, target: Tensor, n_bins: int = 15) -> ReliabilityCurve:
    """Bin logits (N, K) against class indices target (N,) by top-class confidence."""
    _check(logits, target, n_bins)
    probs = logits.detach().double().softmax(dim=-1)  # (N, K)
    confidence, predicted = probs.max(dim=-1)  # (N,), (N,)
    correct = (predicted == target.long()).double()  # (N,)
    edges = torch.linspace(0.0, 1.0, n_bins + 1, dtype=torch.float64)
    # right=True: a confidence equal to edge i opens bin i; the clamp closes the last bin at 1.0.
    index = (torch.bucketize(confidence, edges, right=True) - 1).clamp(0, n_bins - 1)  # (N,)
    count = torch.zeros(n_bins, dtype=torch.float64).scatter_add_(0, index, torch.ones_like(confidence))
    conf_sum = torch.zeros(n_bins, dtype=torch.float64).scatter_add_(0, index, confidence)
    acc_sum = torch.zeros(n_bins, dtype=torch.float64).scatter_add_(0, index, correct)
    safe = count.clamp(min=1.0)  # empty bins divide 0 by 1 and report 0.0
    return ReliabilityCurve(
        edges=tuple(edges.tolist()),
        confidence=tuple((conf_sum / safe).tolist()),
        accuracy=tuple((acc_sum / safe).tolist()),
        count=tuple(int(n) for n in count.tolist()),
    )


def expected_calibration_error(logits: Tensor, target: Tensor, n_bins: int = 15) -> float:
    """ECE in [0, 1] of logits (N, K) against class indices target (N,)."""
    return reliability_curve(logits, target, n_bins).ece


def maximum_calibration_error(logits: Tensor, target: Tensor, n_bins: int = 15) -> float:
    """MCE in [0, 1]: the largest gap of any non-empty confidence bin."""
    return reliability_curve(logits, target, n_bins).mce


def _check(logits: Tensor, target: Tensor, n_bins: int) -> None:
    if logits.ndim != 2 or target.ndim != 1 or logits.shape[0] != target.shape[0]:
        raise DataError(
            f"calibration error: expected logits (N, K) and target (N,); "
            f"got {tuple(logits.shape)} and {tuple(target.shape)}"
        )
    if logits.shape[0] == 0:
        raise DataError("calibration error: no rows; it needs at least one prediction")
    if isinstance(n_bins, bool) or not isinstance(n_bins, int) or n_bins < 1:
        raise DataError(f"calibration error: n_bins must be an integer ≥ 1; got {n_bins!r}")
    if not bool(torch.isfinite(logits).all()):
        raise DataError("calibration error: logits contain NaN or infinity; check the model's outputs")
    k = int(logits.shape[1])
    if target.is_floating_point() or int(target.min()) < 0 or int(target.max()) >= k:
        raise DataError(
            f"calibration error: target must hold class indices in [0, {k}) for {k} logits per row; "
            f"got {target.dtype} values in [{target.min().item()}, {target.max().item()}]"
        )
