"""Video clips [B, T, C, H, W] with a frame mask [B, T], standardised per channel with training
statistics: `frame_drop` (frames lost) and `frame_noise` (sensor noise on every real frame).

The image families take [B, C, H, W] and do not apply here. Dropping only ever masks frames, no
frame is made up; a present clip left without a real frame becomes absent, as the loader makes a
clip with no decodable frame. Absent clips and padded frames are left as they are.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from plait.errors import ConfigError
from plait.evaluation.perturb.base import absent_if_empty, check_level, normal, observed_cells, uniform


def _frame_mask(name: str, values: Tensor, mask: Tensor | None) -> Tensor:
    if values.dim() != 5 or not values.is_floating_point() or mask is None or mask.shape != values.shape[:2]:
        got = None if mask is None else tuple(mask.shape)
        raise ConfigError(
            f"perturbation '{name}': expected float video values [B, T, C, H, W] with a frame mask "
            f"[B, T], got {values.dtype} {tuple(values.shape)} and mask {got}; apply it to video fields"
        )
    return mask.to(torch.bool)


def frame_drop(
    values: Tensor,
    present: Tensor,
    mask: Tensor | None,
    level: float,
    generator: torch.Generator,
    **context: Any,
) -> tuple[Tensor, Tensor, Tensor | None]:
    """Mask out each real frame with probability `level`, zeroing its pixels."""
    level = check_level("frame_drop", level, maximum=1.0)
    real = _frame_mask("frame_drop", values, mask)
    if level == 0:
        return values, present, mask
    dropped = (uniform(tuple(real.shape), generator, values) < level) & real  # (B, T)
    thinned = torch.where(dropped[:, :, None, None, None], torch.zeros_like(values), values)
    return absent_if_empty(thinned, present, real & ~dropped)


def frame_noise(
    values: Tensor,
    present: Tensor,
    mask: Tensor | None,
    level: float,
    generator: torch.Generator,
    **context: Any,
) -> tuple[Tensor, Tensor, Tensor | None]:
    """Additive N(0, (level · σ_i)²) per pixel of every real frame, σ_i the std of clip i over its
    real frames (1 for a flat clip): the image family `pixel_noise`, per clip."""
    level = check_level("frame_noise", level)
    real = _frame_mask("frame_noise", values, mask)
    if level == 0:
        return values, present, mask
    cells = observed_cells(values, present, real)  # (B, T, C, H, W)
    weights = cells.to(values.dtype).flatten(1)  # (B, T*C*H*W)
    count = weights.sum(dim=1).clamp_min(1.0)  # (B,)
    flat = values.flatten(1)
    mean = (flat * weights).sum(dim=1) / count
    std = (((flat - mean[:, None]) ** 2 * weights).sum(dim=1) / count).sqrt()  # (B,)
    std = torch.where(std > 1e-8, std, torch.ones_like(std))
    noise = normal(tuple(values.shape), generator, values) * (level * std)[:, None, None, None, None]
    return torch.where(cells, values + noise, values), present, mask
