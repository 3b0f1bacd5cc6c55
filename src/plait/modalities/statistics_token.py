"""The statistics token: each channel's mean, std, min and max over a row's real steps, projected
to one token. The figures a forest on summary statistics sees, given to a deep encoder as well, so
the convolutions can work on centred input (offset-free) without losing the level."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from plait.modalities.summary import masked_channel_stats

STATISTICS = 4  # per channel: mean, std, min, max


def signed_log(x: Tensor) -> Tensor:
    """sign(x) · log(1 + |x|): keeps small values, tames an absurd reading's scale."""
    return torch.sign(x) * torch.log1p(x.abs())


def centred(x: Tensor, steps: Tensor) -> Tensor:
    """x (B, C, L) minus each channel's mean over the real steps, zero at masked steps."""
    weight = steps[:, None, :].to(x.dtype)  # (B, 1, L)
    mean = (x * weight).sum(dim=2, keepdim=True) / weight.sum(dim=2, keepdim=True).clamp_min(1.0)
    return (x - mean) * weight


class StatisticsToken(nn.Module):
    """x (B, C, L) with steps BoolTensor[B, L] → (B, D): MLP over signed_log of the C × 4 stats."""

    def __init__(self, in_channels: int, dim: int) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(in_channels * STATISTICS, dim), nn.GELU(), nn.Linear(dim, dim))

    def forward(self, x: Tensor, steps: Tensor) -> Tensor:
        return self.mlp(signed_log(masked_channel_stats(x, steps)).flatten(1))  # (B, 4C) -> (B, D)
