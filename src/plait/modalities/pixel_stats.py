"""Per-channel mean and std of training pixels, shared by the kinds that read pictures (image, video)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from plait.types import Absent

DEFAULT_MEAN, DEFAULT_STD = 0.5, 0.25  # when no training value decodes


def channel_stats(
    values: Sequence[Any], read: Callable[[Any], np.ndarray | Absent], channels: int, limit: int
) -> tuple[list[float], list[float]]:
    """Mean and std per channel of at most `limit` decodable values, taken in a seeded permutation
    (a deterministic sample that does not depend on the row order). `read(value)` gives the value's
    pixels as (C, N) or Absent; each decoded value weighs the same. Std is at least 1e-3."""
    total = np.zeros(channels)
    squares = np.zeros(channels)
    used = 0
    for index in np.random.default_rng(0).permutation(len(values)).tolist():
        if used >= limit:
            break
        pixels = read(values[index])
        if isinstance(pixels, Absent):
            continue
        flat = pixels.astype(np.float64)  # (C, N)
        total += flat.mean(axis=1)
        squares += np.square(flat).mean(axis=1)
        used += 1
    if used == 0:
        return [DEFAULT_MEAN] * channels, [DEFAULT_STD] * channels
    m = total / used
    std = np.maximum(np.sqrt(np.maximum(squares / used - m**2, 0.0)), 1e-3)
    return m.tolist(), std.tolist()
