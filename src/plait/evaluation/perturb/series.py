"""Sensor series [B, T, C] with step mask [B, T]: `time_shift` and `sample_dropout`.

Both only ever mask steps; no reading is made up. A present series left without a real step
becomes absent, as the loader makes a series with no finite reading.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from plait.errors import ConfigError
from plait.evaluation.perturb.base import absent_if_empty, check_level, uniform


def _step_mask(name: str, values: Tensor, mask: Tensor | None) -> Tensor:
    if values.dim() != 3 or mask is None or tuple(mask.shape) != tuple(values.shape[:2]):
        got = None if mask is None else tuple(mask.shape)
        raise ConfigError(
            f"perturbation '{name}': expected timeseries values [B, T, C] with a step mask [B, T], "
            f"got values {tuple(values.shape)} and mask {got}; apply it to timeseries fields"
        )
    return mask.to(torch.bool)


def time_shift(
    values: Tensor,
    present: Tensor,
    mask: Tensor | None,
    level: float,
    generator: torch.Generator,
    **context: Any,
) -> tuple[Tensor, Tensor, Tensor | None]:
    """Shift each series by a seeded s in [-level · n, level · n] steps (n = its length), inside
    its own window: what leaves the window is lost, vacated steps are masked (no wrap-around)."""
    level = check_level("time_shift", level, maximum=1.0)
    real = _step_mask("time_shift", values, mask)
    if level == 0:
        return values, present, mask
    batch, steps = real.shape
    position = torch.arange(steps, device=values.device)  # (T,)
    length = torch.where(real, position + 1, torch.zeros_like(position)).amax(dim=1)  # (B,) last real + 1
    draw = uniform((batch,), generator, values) * 2 - 1  # (B,) in [-1, 1)
    shift = torch.round(draw * level * length).long()  # (B,)
    source = position[None, :] - shift[:, None]  # (B, T): output step t reads input step t - s
    inside = (source >= 0) & (source < length[:, None]) & (position[None, :] < length[:, None])
    source = source.clamp(0, steps - 1)
    shifted_mask = real.gather(1, source) & inside  # (B, T)
    shifted = values.gather(1, source[:, :, None].expand_as(values))  # (B, T, C)
    shifted = torch.where(shifted_mask[:, :, None], shifted, torch.zeros_like(shifted))
    return absent_if_empty(shifted, present, shifted_mask)


def sample_dropout(
    values: Tensor,
    present: Tensor,
    mask: Tensor | None,
    level: float,
    generator: torch.Generator,
    **context: Any,
) -> tuple[Tensor, Tensor, Tensor | None]:
    """Mask out each real step with probability `level` (all its channels), zeroing its values."""
    level = check_level("sample_dropout", level, maximum=1.0)
    real = _step_mask("sample_dropout", values, mask)
    if level == 0:
        return values, present, mask
    dropped = (uniform(tuple(real.shape), generator, values) < level) & real  # (B, T)
    kept = real & ~dropped
    thinned = torch.where(dropped[:, :, None], torch.zeros_like(values), values)
    return absent_if_empty(thinned, present, kept)
