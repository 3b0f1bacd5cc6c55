"""Images [B, C, H, W], standardised per channel with training statistics: `blur`, `occlusion`,
`pixel_noise`, and `pixel_gaussian`, which works on the pixel values in [0, 1] the modality read
(context `pixel_mean`, `pixel_std`: the per-channel training statistics) so that its level is the
σ published figures use (MultiBench, ImageNet-C). Absent samples (zero-filled) are left as they are."""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from plait.errors import ConfigError
from plait.evaluation.perturb.base import check_level, normal, require, rows, uniform


def _check_image(name: str, values: Tensor) -> None:
    if values.dim() != 4 or not values.is_floating_point():
        raise ConfigError(
            f"perturbation '{name}': expected float images [B, C, H, W], got {values.dtype} "
            f"{tuple(values.shape)}; apply it to image fields"
        )


def gaussian_kernel(sigma: float, dtype: torch.dtype, device: torch.device) -> Tensor:
    """Normalised 1-D gaussian [2r + 1], r = ceil(3 sigma)."""
    radius = max(1, math.ceil(3 * sigma))
    x = torch.arange(-radius, radius + 1, dtype=torch.float64)
    kernel = torch.exp(-0.5 * (x / sigma) ** 2)
    return (kernel / kernel.sum()).to(dtype=dtype, device=device)


def blur(
    values: Tensor,
    present: Tensor,
    mask: Tensor | None,
    level: float,
    generator: torch.Generator,
    **context: Any,
) -> tuple[Tensor, Tensor, Tensor | None]:
    """Gaussian blur with sigma = level pixels: separable conv2d, edges replicated."""
    level = check_level("blur", level)
    _check_image("blur", values)
    if level == 0:
        return values, present, mask
    b, c, h, w = values.shape
    kernel = gaussian_kernel(level, values.dtype, values.device)
    r = (kernel.shape[0] - 1) // 2
    x = values.reshape(b * c, 1, h, w)  # each channel blurred on its own
    x = F.conv2d(F.pad(x, (r, r, 0, 0), mode="replicate"), kernel.view(1, 1, 1, -1))  # along W
    x = F.conv2d(F.pad(x, (0, 0, r, r), mode="replicate"), kernel.view(1, 1, -1, 1))  # along H
    blurred = x.reshape(b, c, h, w)
    return torch.where(rows(present, values), blurred, values), present, mask


def occlusion(
    values: Tensor,
    present: Tensor,
    mask: Tensor | None,
    level: float,
    generator: torch.Generator,
    **context: Any,
) -> tuple[Tensor, Tensor, Tensor | None]:
    """A rectangle of sqrt(level)·H × sqrt(level)·W pixels (a square on square images) at a seeded
    position, filled with 0 — after standardisation, the training mean colour."""
    level = check_level("occlusion", level, maximum=1.0)
    _check_image("occlusion", values)
    if level == 0:
        return values, present, mask
    b, _, h, w = values.shape
    side = math.sqrt(level)
    ph, pw = round(side * h), round(side * w)
    corner = uniform((b, 2), generator, values)  # (B, 2): where the patch starts, as a fraction
    top = (corner[:, 0] * (h - ph + 1)).long()  # (B,)
    left = (corner[:, 1] * (w - pw + 1)).long()
    ys = torch.arange(h, device=values.device)
    xs = torch.arange(w, device=values.device)
    in_rows = (ys[None, :] >= top[:, None]) & (ys[None, :] < top[:, None] + ph)  # (B, H)
    in_cols = (xs[None, :] >= left[:, None]) & (xs[None, :] < left[:, None] + pw)  # (B, W)
    patch = in_rows[:, :, None] & in_cols[:, None, :] & present[:, None, None]  # (B, H, W)
    return torch.where(patch[:, None], torch.zeros_like(values), values), present, mask


def pixel_noise(
    values: Tensor,
    present: Tensor,
    mask: Tensor | None,
    level: float,
    generator: torch.Generator,
    **context: Any,
) -> tuple[Tensor, Tensor, Tensor | None]:
    """Additive N(0, level · σ_i) per pixel, σ_i the std of image i (1 for a flat image)."""
    level = check_level("pixel_noise", level)
    _check_image("pixel_noise", values)
    if level == 0:
        return values, present, mask
    std = values.flatten(1).std(dim=1)  # (B,)
    std = torch.where(std > 1e-8, std, torch.ones_like(std))
    noise = normal(tuple(values.shape), generator, values) * (level * std)[:, None, None, None]
    return torch.where(rows(present, values), values + noise, values), present, mask


def pixel_gaussian(
    values: Tensor,
    present: Tensor,
    mask: Tensor | None,
    level: float,
    generator: torch.Generator,
    **context: Any,
) -> tuple[Tensor, Tensor, Tensor | None]:
    """x + N(0, level²) on the pixel values x in [0, 1], clipped to [0, 1]: the standardisation is
    undone with the field's training mean and std per channel, and redone after."""
    level = check_level("pixel_gaussian", level)
    _check_image("pixel_gaussian", values)
    channels = values.shape[1]
    mean = torch.as_tensor(require(context, "pixel_gaussian", "pixel_mean"), dtype=values.dtype)
    std = torch.as_tensor(require(context, "pixel_gaussian", "pixel_std"), dtype=values.dtype)
    if mean.shape != (channels,) or std.shape != (channels,) or not bool((std > 0).all()):
        raise ConfigError(
            f"perturbation 'pixel_gaussian': expected pixel_mean and pixel_std of {channels} channel(s) "
            f"with stds > 0, got {mean.tolist()} and {std.tolist()}; build the context from this "
            "field's fitted image modality"
        )
    if level == 0:
        return values, present, mask
    mean = mean.to(values.device)[None, :, None, None]  # (C,) -> (1, C, 1, 1)
    std = std.to(values.device)[None, :, None, None]
    pixels = values * std + mean  # (B, C, H, W) in [0, 1]
    noisy = (pixels + normal(tuple(values.shape), generator, values) * level).clamp(0.0, 1.0)
    return torch.where(rows(present, values), (noisy - mean) / std, values), present, mask
