"""The statistics token: each channel's mean, std, min and max over a row's real steps, projected
to one token. The figures a forest on summary statistics sees, given to a deep encoder as well, so
the convolutions can work on centred input (offset-free) without losing the level."""

from __future__ import annotations

import torch
from torch import Tensor, nn

STATISTICS = 4  # per channel: mean, std, min, max


def masked_channel_stats(x: Tensor, steps: Tensor) -> Tensor:
    """x (B, C, L) with steps BoolTensor[B, L] → (B, C, 4): mean, std, min, max over real steps
    (0 for a row with none)."""
    weight = steps[:, None, :].to(x.dtype)  # (B, 1, L)
    count = weight.sum(dim=2).clamp_min(1.0)  # (B, 1)
    mean = (x * weight).sum(dim=2) / count  # (B, C)
    var = ((x - mean[:, :, None]).square() * weight).sum(dim=2) / count
    big = torch.finfo(x.dtype).max
    real = steps[:, None, :]
    low = torch.where(real, x, torch.full_like(x, big)).amin(dim=2)
    high = torch.where(real, x, torch.full_like(x, -big)).amax(dim=2)
    any_step = steps.any(dim=1, keepdim=True)  # (B, 1)
    low, high = torch.where(any_step, low, 0.0), torch.where(any_step, high, 0.0)
    return torch.stack([mean, var.sqrt(), low, high], dim=-1)


def masked_max(tokens: Tensor, mask: Tensor) -> Tensor:
    """Max over L of tokens [B, L, D] at real positions (mask [B, L]) → [B, D]; 0 for none."""
    low = torch.finfo(tokens.dtype).min
    best = torch.where(mask[:, :, None], tokens, torch.full_like(tokens, low)).amax(dim=1)
    return torch.where(mask.any(dim=1, keepdim=True), best, torch.zeros_like(best))


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
