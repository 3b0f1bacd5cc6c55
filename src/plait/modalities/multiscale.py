"""An opt-in timeseries encoder (`encoder: multiscale`): a multi-scale conv stem, residual conv
blocks and a statistics token.

Measured against the default plain 3-block conv (`encoder: conv1d`) with bench/encoders.py on the
demo's vibration, BasicMotions and JapaneseVowels, it was not better (within the seed noise, a
little below) and costs about twice the training time, so it is not the default; it is kept for
series where a sensor offset between subjects or machines hides the shape (bench/RESULTS.md,
"Encoders"). What it adds over conv1d:
- a **statistics token**: each channel's mean, std, min and max over the row's real steps, the
  figures a forest on summary statistics sees, projected to one token;
- **per-row centring**: the convolutions see each channel minus its own mean over the row, so a
  sensor offset between subjects or machines does not move the shape features (the level still
  reaches the model through the statistics token);
- a **multi-scale stem**: convs of 3, 9, 25 and 49 steps side by side over the raw channels (an
  InceptionTime-style first layer; cheap because the input has few channels), so the first layer
  sees both the sample-to-sample texture and the slower movement, then residual k=3 conv blocks;
- **mean and max pooling** of the conv tokens together with the statistics token.

Masked steps (padding, a step with no reading, a dropped-out field) never enter a statistic, a
convolution input or a pooled value.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from plait.modalities.base import masked_max, masked_mean, present_steps, zero_absent
from plait.modalities.conv import MaskedGroupNorm
from plait.modalities.statistics_token import StatisticsToken, centred
from plait.types import EncoderOutput

STEM_KERNELS = (3, 9, 25, 49)  # the stem's branches: patterns of 3 to 49 steps


def branch_widths(dim: int) -> list[int]:
    """Output channels of the stem's STEM_KERNELS branches, summing to dim."""
    share = dim // len(STEM_KERNELS)
    return [share] * (len(STEM_KERNELS) - 1) + [dim - share * (len(STEM_KERNELS) - 1)]


class MultiScaleStem(nn.Module):
    """Parallel convs over the input channels, one per STEM_KERNELS size, concatenated to dim
    channels → masked norm → GELU. Cheap at full length: the input has only C channels."""

    def __init__(self, in_channels: int, dim: int) -> None:
        super().__init__()
        self.branches = nn.ModuleList(
            nn.Conv1d(in_channels, width, kernel_size=k, padding=k // 2)
            for k, width in zip(STEM_KERNELS, branch_widths(dim), strict=True)
        )
        self.norm = MaskedGroupNorm(dim)

    def forward(self, x: Tensor, steps: Tensor) -> Tensor:
        """x (B, C, T) zero at masked steps → (B, D, T)."""
        scales = torch.cat([branch(x) for branch in self.branches], dim=1)  # (B, D, T)
        return F.gelu(self.norm(scales, steps))


class ResidualConvBlock(nn.Module):
    """Conv1d(k=3, stride) → masked norm → GELU, added to the strided input."""

    def __init__(self, dim: int, stride: int) -> None:
        super().__init__()
        self.stride = stride
        self.conv = nn.Conv1d(dim, dim, kernel_size=3, stride=stride, padding=1)
        self.norm = MaskedGroupNorm(dim)

    def forward(self, x: Tensor, steps: Tensor) -> tuple[Tensor, Tensor]:
        """x (B, D, L) zero at masked steps → (B, D, ceil(L / stride)) and its step mask."""
        steps = steps[:, :: self.stride]
        y = F.gelu(self.norm(self.conv(x), steps))
        return (x[:, :, :: self.stride] + y) * steps[:, None, :].to(x.dtype), steps


class MultiScaleSeriesEncoder(nn.Module):
    """Series [B, T, C] (standardised, 0 at masked steps) with step mask [B, T] → tokens
    [B, 1 + L', D]: the statistics token first, then one token per remaining conv step;
    token_mask [B, 1 + L']; pooled [B, D] (zero where the field is absent)."""

    def __init__(
        self, in_channels: int, dim: int, strides: Sequence[int] = (2, 2, 1), centre: bool = True
    ) -> None:
        super().__init__()
        self.output_dim = dim
        self.centre = centre
        self.stats = StatisticsToken(in_channels, dim)
        self.stem = MultiScaleStem(in_channels, dim)
        self.blocks = nn.ModuleList(ResidualConvBlock(dim, s) for s in strides)
        self.proj = nn.Linear(dim, dim)
        self.pool = nn.Linear(3 * dim, dim)

    def forward(self, x: Tensor, present: Tensor, mask: Tensor | None = None) -> EncoderOutput:
        x = x.transpose(1, 2)  # (B, T, C) -> (B, C, T)
        steps = present_steps(x, present, mask)  # (B, L)
        x = x * steps[:, None, :].to(x.dtype)
        stat_token = self.stats(x, steps)  # (B, C, T) -> (B, D)
        if self.centre:
            x = centred(x, steps)  # each channel minus its row mean
        h = self.stem(x, steps)  # (B, C, T) -> (B, D, T), zero at masked steps
        for block in self.blocks:
            h, steps = block(h, steps)  # (B, D, L) -> (B, D, L / stride)
        tokens = self.proj(h.transpose(1, 2)) * steps[:, :, None].to(h.dtype)  # (B, L', D)
        summary = torch.cat([masked_mean(tokens, steps), masked_max(tokens, steps), stat_token], dim=1)
        pooled = zero_absent(self.pool(summary), present)  # (B, 3D) -> (B, D)
        stat_token = zero_absent(stat_token, present)
        tokens = torch.cat([stat_token[:, None, :], tokens], dim=1)  # (B, 1 + L', D)
        token_mask = torch.cat([present[:, None], steps], dim=1)
        return EncoderOutput(tokens=tokens, pooled=pooled, token_mask=token_mask)
