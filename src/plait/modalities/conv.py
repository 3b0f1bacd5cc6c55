"""The masked 1-D conv encoder shared by audio (log-mel frames) and timeseries (sensor steps),
and the GroupNorm group count the conv encoders here use."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from plait.modalities.base import masked_mean, present_steps, zero_absent
from plait.types import EncoderOutput


def group_count(channels: int) -> int:
    """The most GroupNorm groups (≤ 8) that divide `channels`."""
    return next(g for g in (8, 4, 2, 1) if channels % g == 0)


class MaskedGroupNorm(nn.Module):
    """GroupNorm whose statistics cover only real steps, so a sample's features do not depend
    on how much padding its batch happened to need."""

    def __init__(self, channels: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.groups = group_count(channels)
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        """x (B, C, L) or (B, C, H, L), mask BoolTensor[B, L] → same shape, zero at masked steps.
        A (B, C, H, L) map (a spectrogram's bands × frames) is normalised over H as well."""
        b, c, length = x.shape[0], x.shape[1], x.shape[-1]
        grouped = x.reshape(b, self.groups, -1, length)  # (B, G, C/G [* H], L)
        weights = mask.to(x.dtype)[:, None, None, :]  # (B, 1, 1, L)
        count = (weights.sum(dim=(2, 3)) * grouped.shape[2]).clamp_min(1.0)  # (B, 1)
        mean = (grouped * weights).sum(dim=(2, 3)) / count  # (B, G)
        centred = grouped - mean[:, :, None, None]
        var = (centred.square() * weights).sum(dim=(2, 3)) / count  # (B, G)
        normed = (centred / torch.sqrt(var[:, :, None, None] + self.eps)).reshape(x.shape)
        affine = (c,) + (1,) * (x.dim() - 2)  # broadcast the per-channel weight over H and L
        out = normed * self.weight.reshape(affine) + self.bias.reshape(affine)
        return out * mask.reshape((b,) + (1,) * (x.dim() - 2) + (length,)).to(x.dtype)


class MaskedConv1dEncoder(nn.Module):
    """Conv1d(k=3) → masked GroupNorm → GELU blocks over time, then a linear projection.

    Masked steps are zeroed before every conv, so a real step never sees padding or a missing
    reading as a value; a strided conv keeps the mask of its centre step. Tokens [B, L', D],
    token_mask [B, L'], pooled = masked mean over real tokens, zero where the field is absent.
    """

    def __init__(
        self, in_channels: int, dim: int, strides: Sequence[int] = (2, 2, 1), channels_last: bool = False
    ) -> None:
        super().__init__()
        self.output_dim = dim
        self.strides = tuple(strides)
        self.channels_last = channels_last
        widths = [in_channels] + [dim] * len(self.strides)
        self.convs = nn.ModuleList(
            nn.Conv1d(widths[i], widths[i + 1], kernel_size=3, stride=s, padding=1)
            for i, s in enumerate(self.strides)
        )
        self.norms = nn.ModuleList(MaskedGroupNorm(dim) for _ in self.strides)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: Tensor, present: Tensor, mask: Tensor | None = None) -> EncoderOutput:
        if self.channels_last:
            x = x.transpose(1, 2)  # (B, L, C) -> (B, C, L)
        steps = present_steps(x, present, mask)  # (B, L)
        for conv, norm, stride in zip(self.convs, self.norms, self.strides, strict=True):
            x = conv(x * steps[:, None, :].to(x.dtype))  # (B, C, L) -> (B, D, ceil(L / stride))
            steps = steps[:, ::stride]
            x = F.gelu(norm(x, steps))
        tokens = self.proj(x.transpose(1, 2))  # (B, D, L') -> (B, L', D)
        tokens = tokens * steps[:, :, None].to(tokens.dtype)
        pooled = zero_absent(masked_mean(tokens, steps), present)  # (B, D)
        return EncoderOutput(tokens=tokens, pooled=pooled, token_mask=steps)
