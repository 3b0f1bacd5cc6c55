"""`missing`: the field is dropped for a fraction of the samples that have it (every kind)."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from plait.evaluation.perturb.base import check_level, rows


def drop_samples(
    values: Tensor,
    present: Tensor,
    mask: Tensor | None,
    level: float,
    generator: torch.Generator,
    **context: Any,
) -> tuple[Tensor, Tensor, Tensor | None]:
    """Mark round(level · P) of the P present samples absent (a seeded choice) and zero their
    values and steps, exactly as the loader fills an absent field. Already absent samples stay so."""
    level = check_level("missing", level, maximum=1.0)
    if level == 0:
        return values, present, mask
    observed = present.nonzero().squeeze(1)  # (P,)
    order = torch.randperm(observed.shape[0], generator=generator, device=generator.device)
    count = math.floor(level * observed.shape[0] + 0.5)
    keep = present.clone()
    keep[observed[order[:count].to(observed.device)]] = False
    values = torch.where(rows(keep, values), values, torch.zeros_like(values))
    mask = None if mask is None else mask & rows(keep, mask)
    return values, keep, mask
