"""SpecAugment (Park et al. 2019) for log-mel spectrograms: zero random bands and frame spans.

Used by the audio encoders while training only. The values are standardised log-mels, so a zeroed
cell is the training mean: a masked band reads as "average loudness", not silence.
"""

from __future__ import annotations

import torch
from torch import Tensor

FREQUENCY_MASKS = 2
MAX_BAND_SHARE = 0.15  # a frequency mask covers at most this share of the bands
TIME_MASKS = 2
MAX_FRAME_SHARE = 0.1  # a time mask covers at most this share of the row's real frames


def _spans(count: int, limit: Tensor, length: Tensor, size: int) -> Tensor:
    """BoolTensor[B, size]: True inside `count` random spans per row, each of width below
    limit[b] + 1 and starting so it ends within length[b]."""
    positions = torch.arange(size, device=limit.device)[None, :]  # (1, size)
    inside = torch.zeros(limit.shape[0], size, dtype=torch.bool, device=limit.device)
    for _ in range(count):
        width = torch.floor(torch.rand(limit.shape, device=limit.device) * (limit + 1))  # (B,)
        start = torch.floor(torch.rand(limit.shape, device=limit.device) * (length - width + 1).clamp_min(1))
        inside |= (positions >= start[:, None]) & (positions < (start + width)[:, None])
    return inside


def spec_augment(values: Tensor, frames: Tensor) -> Tensor:
    """values (B, M, F) standardised log-mels, frames BoolTensor[B, F] (real frames) → (B, M, F)
    with FREQUENCY_MASKS band spans and TIME_MASKS frame spans per row set to 0. Uses torch's
    global generator, so a seeded run augments the same way twice."""
    b, bands, size = values.shape
    band_limit = torch.full((b,), float(int(bands * MAX_BAND_SHARE)), device=values.device)
    band_masked = _spans(
        FREQUENCY_MASKS, band_limit, torch.full((b,), float(bands), device=values.device), bands
    )
    real = frames.sum(dim=1).to(values.dtype)  # (B,)
    frame_masked = _spans(TIME_MASKS, torch.floor(real * MAX_FRAME_SHARE), real, size)
    keep = ~(band_masked[:, :, None] | frame_masked[:, None, :])  # (B, M, F)
    return values * keep.to(values.dtype)
