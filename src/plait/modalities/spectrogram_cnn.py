"""The default audio encoder: 2-D convolutions over the log-mel spectrogram (bands × frames).

The plain 1-D encoder (`encoder: conv1d`) treats each mel band as an input channel, so a sound
shifted up by one band looks new to it. Here 3×3 kernels slide over bands and frames alike
(the LeNet-on-a-spectrogram recipe that speech-command models start from): three blocks halve
the bands each time and the frames in the first two, each remaining frame becomes one token
(its bands × channels flattened and projected), and the pooled vector mixes the tokens' mean and
max. With `augment` (the default), SpecAugment masks random bands and frame spans while training.
With `centre`, each band is first centred on its mean over the clip, which removes a speaker's or
a microphone's colouring: it helps speech from unseen speakers and hurts sounds whose spectrum's
shape is the signal (figures in bench/RESULTS.md, "Encoders"), so it is off by default.
Masked frames (padding, a dropped-out field) are zeroed before every conv and never enter a norm
or a pooled value.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from plait.modalities.base import masked_max, masked_mean, present_steps, zero_absent
from plait.modalities.conv import MaskedGroupNorm
from plait.modalities.spec_augment import spec_augment
from plait.modalities.statistics_token import centred
from plait.types import EncoderOutput

TIME_STRIDES = (2, 2, 1)  # frames are halved in the first two blocks; bands in all three


class SpectrogramEncoder(nn.Module):
    """Log-mels [B, M, F] with frame mask [B, F] → tokens [B, F', D] (F' = ceil(F / 4)),
    token_mask [B, F'], pooled [B, D] (zero where the field is absent)."""

    def __init__(self, n_mels: int, dim: int, augment: bool = True, centre: bool = False) -> None:
        super().__init__()
        self.output_dim = dim
        self.augment = augment
        self.centre = centre
        widths = [1, max(8, dim // 4), max(8, dim // 2), dim]
        self.convs = nn.ModuleList(
            nn.Conv2d(widths[i], widths[i + 1], kernel_size=3, stride=(2, s), padding=1)
            for i, s in enumerate(TIME_STRIDES)
        )
        self.norms = nn.ModuleList(MaskedGroupNorm(w) for w in widths[1:])
        bands = n_mels
        for _ in TIME_STRIDES:
            bands = math.ceil(bands / 2)  # a stride-2, padding-1, k=3 conv: ceil(M / 2)
        self.proj = nn.Linear(dim * bands, dim)
        self.pool = nn.Linear(2 * dim, dim)

    def forward(self, x: Tensor, present: Tensor, mask: Tensor | None = None) -> EncoderOutput:
        frames = present_steps(x, present, mask)  # (B, L)
        if self.centre:  # each band minus its mean over the clip's real frames (CMVN's mean part)
            x = centred(x, frames)
        if self.training and self.augment:
            x = spec_augment(x, frames)
        h = x[:, None, :, :]  # (B, M, F) -> (B, 1, M, F)
        for conv, norm, stride in zip(self.convs, self.norms, TIME_STRIDES, strict=True):
            h = conv(h * frames[:, None, None, :].to(h.dtype))  # (B, W, M, F) -> (B, W', M/2, F/stride)
            frames = frames[:, ::stride]
            h = F.gelu(norm(h, frames))
        b, width, bands, length = h.shape
        flat = h.reshape(b, width * bands, length).transpose(1, 2)  # (B, D * M', F') -> (B, F', D * M')
        tokens = self.proj(flat) * frames[:, :, None].to(h.dtype)  # (B, F', D)
        pooled = self.pool(torch.cat([masked_mean(tokens, frames), masked_max(tokens, frames)], dim=1))
        return EncoderOutput(tokens=tokens, pooled=zero_absent(pooled, present), token_mask=frames)
