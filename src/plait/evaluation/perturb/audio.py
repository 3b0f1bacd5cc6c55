"""Audio as plait holds it: standardised log-mel [B, n_mels, F] with a frame mask [B, F] — not a
waveform, so both families work in the mel-power domain and need the field's log-mel statistics
(context `log_mel_mean`, `log_mel_std`, from `perturbation_context(modality)`).

values = (log(P + LOG_FLOOR) - mean) / std, P the mel power of one band in one frame.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from plait.errors import ConfigError
from plait.evaluation.perturb.base import check_level, observed_cells, require, uniform
from plait.modalities.melspec import LOG_FLOOR

SEGMENT_FRAMES = 10  # 0.1 s at the default hop of 160 samples at 16 kHz


def _stats(name: str, values: Tensor, mask: Tensor | None, context: dict[str, Any]) -> tuple[float, float]:
    if values.dim() != 3 or mask is None or tuple(mask.shape) != (values.shape[0], values.shape[2]):
        got = None if mask is None else tuple(mask.shape)
        raise ConfigError(
            f"perturbation '{name}': expected log-mel values [B, n_mels, F] with a frame mask [B, F], "
            f"got values {tuple(values.shape)} and mask {got}; apply it to audio fields"
        )
    mean, std = float(require(context, name, "log_mel_mean")), float(require(context, name, "log_mel_std"))
    if not (math.isfinite(mean) and math.isfinite(std) and std > 0):
        raise ConfigError(
            f"perturbation '{name}': log_mel_mean and log_mel_std must be finite with std > 0, got "
            f"{mean!r} and {std!r}; build the context from the fitted audio modality"
        )
    return mean, std


def background_noise(
    values: Tensor,
    present: Tensor,
    mask: Tensor | None,
    level: float,
    generator: torch.Generator,
    **context: Any,
) -> tuple[Tensor, Tensor, Tensor | None]:
    """Noise whose RMS is `level` times the clip's (SNR = -20 log10(level) dB: 1 → 0 dB).

    Each band and frame gets noise power level² · (the clip's mean mel power) · e, e ~ Exp(1) — the
    power of one spectral bin of gaussian noise. The noise is flat across mel bands (not white: the
    wider high bands would hold more of white noise), and a band's sum of bins would fluctuate less
    than e does; what matters here is that the clip drowns as the level rises."""
    level = check_level("background_noise", level)
    mean, std = _stats("background_noise", values, mask, context)
    if level == 0:
        return values, present, mask
    cells = observed_cells(values.transpose(1, 2), present, mask).transpose(1, 2)  # (B, M, F)
    power = (torch.exp(values.double() * std + mean) - LOG_FLOOR).clamp_min(0.0)  # (B, M, F)
    weight = cells.double()
    signal = (power * weight).sum(dim=(1, 2)) / weight.sum(dim=(1, 2)).clamp_min(1)  # (B,)
    draw = -torch.log1p(-uniform(tuple(values.shape), generator, values).double())  # Exp(1)
    noisy = power + (level**2) * signal[:, None, None] * draw
    scaled = ((torch.log(noisy + LOG_FLOOR) - mean) / std).to(values.dtype)
    return torch.where(cells, scaled, values), present, mask


def segment_dropout(
    values: Tensor,
    present: Tensor,
    mask: Tensor | None,
    level: float,
    generator: torch.Generator,
    **context: Any,
) -> tuple[Tensor, Tensor, Tensor | None]:
    """Silence each SEGMENT_FRAMES-frame segment with probability `level` (context `segment_frames`
    overrides the length). Silence is the log floor, not 0 (0 is the training mean log-mel), and
    silent frames stay real frames in the mask: the microphone recorded nothing, it did not fail."""
    level = check_level("segment_dropout", level, maximum=1.0)
    mean, std = _stats("segment_dropout", values, mask, context)
    if level == 0:
        return values, present, mask
    length = int(context.get("segment_frames", SEGMENT_FRAMES))
    if length < 1:
        raise ConfigError(f"perturbation 'segment_dropout': segment_frames must be >= 1, got {length}")
    batch, _, frames = values.shape
    segments = math.ceil(frames / length)
    dropped = uniform((batch, segments), generator, values) < level  # (B, S)
    dropped = dropped.repeat_interleave(length, dim=1)[:, :frames]  # (B, S) -> (B, F)
    cells = observed_cells(values.transpose(1, 2), present, mask).transpose(1, 2)  # (B, M, F)
    silence = (math.log(LOG_FLOOR) - mean) / std
    silenced = cells & dropped[:, None, :]
    return torch.where(silenced, torch.full_like(values, silence), values), present, mask
