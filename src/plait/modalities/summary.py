"""Summary features: a fixed-width row of numbers per field value, for the classical baseline
(gradient boosting) that every leaderboard shows beside the deep models.

Pure functions over the collated tensors a modality already produces (`collate`), so the baseline
sees exactly the rows, the preprocessing and the absent fields the deep models see. Each kind picks
its function in `summary_features`; a kind that declares none gets `generic_stats`. Absent rows are
the caller's business (it writes NaN, which boosting reads as missing)."""

from __future__ import annotations

import torch
from torch import Tensor

QUANTILES = (0.1, 0.25, 0.5, 0.75, 0.9)
BANDS = 4  # spectral bands per series channel, log-spaced over the rFFT bins
SERIES_STATS = 7 + len(QUANTILES) + BANDS  # mean, std, min, max, mean |Δ|, last, slope, quantiles, bands


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


def series_stats(values: Tensor, mask: Tensor | None) -> Tensor:
    """values (B, T, C) with mask (B, T) of real steps → (B, C * SERIES_STATS): per channel the
    mean, std, min, max, mean absolute first difference, last value, least-squares slope, the
    quantiles and the log energy of BANDS frequency bands. Padding never enters a statistic."""
    b, t, c = values.shape
    real = torch.ones(b, t, dtype=torch.bool) if mask is None else mask.bool()  # (B, T)
    weight = real.unsqueeze(-1).float()  # (B, T, 1)
    n = weight.sum(dim=1).clamp(min=1.0)  # (B, 1)
    mean, std, low, high = masked_channel_stats(values.transpose(1, 2), real).unbind(dim=-1)  # (B, C) each
    pairs = (real[:, 1:] & real[:, :-1]).unsqueeze(-1).float()  # (B, T-1, 1)
    step = ((values[:, 1:] - values[:, :-1]).abs() * pairs).sum(dim=1) / pairs.sum(dim=1).clamp(min=1.0)
    last_index = (real.long() * torch.arange(t)).amax(dim=1)  # (B,)
    last = values[torch.arange(b), last_index]  # (B, C)
    time = torch.arange(t, dtype=values.dtype).view(1, t, 1)
    t_mean = (time * weight).sum(dim=1) / n  # (B, 1)
    t_var = (((time - t_mean.unsqueeze(1)) ** 2) * weight).sum(dim=1).clamp(min=1e-12)
    slope = (((time - t_mean.unsqueeze(1)) * (values - mean.unsqueeze(1))) * weight).sum(dim=1) / t_var
    filled = torch.where(real.unsqueeze(-1), values, torch.full_like(values, float("nan")))
    quantiles = torch.nanquantile(filled, torch.tensor(QUANTILES, dtype=values.dtype), dim=1)  # (Q, B, C)
    centred = (values - mean.unsqueeze(1)) * weight
    bands = torch.zeros(b, BANDS, c, dtype=values.dtype)
    length = last_index + 1  # (B,): each row's spectrum over its own steps, not the batch's padding
    for steps in length.unique().tolist():
        rows = length == steps
        power = torch.fft.rfft(centred[rows, :steps], dim=1).abs() ** 2 / steps  # (b, steps//2 + 1, C)
        bands[rows] = _band_energy(power[:, 1:], BANDS)  # (b, BANDS, C)
    parts = [mean, std, low, high, step, last, slope, *quantiles, *bands.unbind(dim=1)]
    out = torch.stack(parts, dim=-1)  # (B, C, SERIES_STATS)
    return torch.nan_to_num(out.reshape(b, c * SERIES_STATS), nan=0.0)


def _band_energy(power: Tensor, bands: int) -> Tensor:
    """power (B, F, C) → (B, bands, C): log(1 + energy) in log-spaced bands of the F bins."""
    b, f, c = power.shape
    if f == 0:
        return torch.zeros(b, bands, c, dtype=power.dtype)
    edges = torch.unique(torch.logspace(0, torch.log10(torch.tensor(float(f + 1))), bands + 1).long() - 1)
    out = torch.zeros(b, bands, c, dtype=power.dtype)
    for i in range(min(bands, len(edges) - 1)):
        lo, hi = int(edges[i]), max(int(edges[i + 1]), int(edges[i]) + 1)
        out[:, i] = torch.log1p(power[:, lo:hi].sum(dim=1))
    return out


def spectrogram_stats(values: Tensor, mask: Tensor | None) -> Tensor:
    """A log-mel spectrogram (B, M, frames) with mask (B, frames) → (B, 2M + 4): each band's mean
    and std over the real frames, then the whole clip's mean, std, loudest-band mean and length."""
    b, _, frames = values.shape
    real = torch.ones(b, frames, dtype=torch.bool) if mask is None else mask.bool()
    weight = real.unsqueeze(1).float()  # (B, 1, F)
    n = weight.sum(dim=2).clamp(min=1.0)  # (B, 1)
    mean = (values * weight).sum(dim=2) / n  # (B, M)
    std = ((((values - mean.unsqueeze(2)) ** 2) * weight).sum(dim=2) / n).sqrt()
    frame_energy = (values * weight).mean(dim=1)  # (B, F)
    overall = torch.stack(
        [
            mean.mean(dim=1),
            frame_energy.std(dim=1) if frames > 1 else torch.zeros(b),
            mean.amax(dim=1),
            real.float().sum(dim=1),
        ],
        dim=1,
    )  # (B, 4)
    return torch.cat([mean, std, overall], dim=1)


def image_stats(values: Tensor, grid: int = 8) -> Tensor:
    """Images (B, C, H, W) → (B, C * (grid² + 4)): each channel averaged over a grid × grid layout
    (a coarse picture), and its mean, std, min and max."""
    b, c = values.shape[:2]
    coarse = torch.nn.functional.adaptive_avg_pool2d(values, grid).reshape(b, c * grid * grid)
    flat = values.reshape(b, c, -1)
    stats = torch.stack([flat.mean(-1), flat.std(-1), flat.amin(-1), flat.amax(-1)], dim=-1).reshape(b, -1)
    return torch.cat([coarse, stats], dim=1)


def token_stats(values: Tensor, mask: Tensor | None, buckets: int = 64) -> Tensor:
    """Token ids (B, L) with mask (B, L) → (B, buckets + 2): a hashed bag of tokens (share of the
    text's tokens in each bucket), the number of tokens and the share of distinct ones."""
    b = values.shape[0]
    real = (values > 0) if mask is None else mask.bool()  # (B, L)
    counts = torch.zeros(b, buckets)
    counts.scatter_add_(1, (values % buckets).long(), real.float())
    n = real.float().sum(dim=1)  # (B,)
    distinct = torch.tensor([len(set(row[keep].tolist())) for row, keep in zip(values, real, strict=True)])
    return torch.cat(
        [counts / n.clamp(min=1.0).unsqueeze(1), n.unsqueeze(1), (distinct / n.clamp(min=1.0)).unsqueeze(1)],
        dim=1,
    )


def masked_values(values: Tensor, mask: Tensor | None) -> Tensor:
    """Per-column values (B, D) with an optional mask (B, D) of observed cells → (B, D), NaN where
    a cell was not observed (boosting's missing value)."""
    out = values.float().clone()
    if mask is not None and mask.shape == values.shape:
        out[~mask.bool()] = float("nan")
    return out


def generic_stats(values: Tensor, mask: Tensor | None) -> Tensor:
    """Any other tensor (B, ...): the values themselves when there are at most 256 per row, else
    their mean, std, min and max."""
    flat = values.reshape(values.shape[0], -1).float()  # (B, D)
    if flat.shape[1] <= 256:
        return flat
    return torch.stack([flat.mean(1), flat.std(1), flat.amin(1), flat.amax(1)], dim=1)


def clip_stats(values: Tensor, mask: Tensor | None, grid: int = 4) -> Tensor:
    """Frames (B, F, C, H, W) with mask (B, F) of real frames → (B, 2 * C * (grid² + 4)): the
    frames' `image_stats` averaged over the real frames, then their standard deviation over them."""
    b, f = values.shape[:2]
    per_frame = image_stats(values.reshape(b * f, *values.shape[2:]), grid).reshape(b, f, -1)  # (B, F, D)
    real = torch.ones(b, f, dtype=torch.bool) if mask is None else mask.bool()
    weight = real.unsqueeze(-1).float()  # (B, F, 1)
    n = weight.sum(dim=1).clamp(min=1.0)  # (B, 1)
    mean = (per_frame * weight).sum(dim=1) / n
    std = ((((per_frame - mean.unsqueeze(1)) ** 2) * weight).sum(dim=1) / n).sqrt()
    return torch.cat([mean, std], dim=1)
