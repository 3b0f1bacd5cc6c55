"""Tabular values [B, C]: the numeric columns (standardised) first, then one category code per
categorical column as a float (0 = missing or a level unseen in training, 1…k = the k levels),
with a cell mask [B, C] (numeric: observed; categorical: code > 0). Numeric noise is
`gaussian_noise` (noise.py); this file swaps categories."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from plait.errors import ConfigError
from plait.evaluation.perturb.base import check_level, require, uniform


def category_swap(
    values: Tensor,
    present: Tensor,
    mask: Tensor | None,
    level: float,
    generator: torch.Generator,
    **context: Any,
) -> tuple[Tensor, Tensor, Tensor | None]:
    """Replace each known category code with probability `level` by another level of its column,
    drawn uniformly (context `numeric_columns`, `level_counts`). Missing and unknown codes (0) and
    columns with fewer than two levels are left alone; the mask does not change."""
    level = check_level("category_swap", level, maximum=1.0)
    numeric = int(require(context, "category_swap", "numeric_columns"))
    counts = [int(k) for k in require(context, "category_swap", "level_counts")]
    if values.dim() != 2 or numeric + len(counts) != values.shape[1]:
        raise ConfigError(
            f"perturbation 'category_swap': context says {numeric} numeric and {len(counts)} categorical "
            f"columns but the values are {tuple(values.shape)}; expected [B, {numeric + len(counts)}] — "
            "build the context from this field's tabular modality"
        )
    if level == 0 or not counts:
        return values, present, mask
    codes = values[:, numeric:]  # (B, Cc)
    k = torch.tensor(counts, dtype=values.dtype, device=values.device)  # (Cc,)
    known = (codes > 0) & present[:, None] & (k >= 2)
    chosen = (uniform(tuple(codes.shape), generator, values) < level) & known
    # Uniform over the column's levels 1…k other than the original: draw one of k - 1, skip it.
    draw = uniform(tuple(codes.shape), generator, values).to(values.dtype)
    other = 1 + torch.minimum(torch.floor(draw * (k - 1)), (k - 2).clamp_min(0))
    other = other + (other >= codes).to(values.dtype)
    swapped = torch.cat([values[:, :numeric], torch.where(chosen, other, codes)], dim=1)
    return swapped, present, mask
