"""`gaussian_noise` on sensor series, tabular numerics and embeddings (channels last).

Noise N(0, level²) is added to observed cells only. The modalities standardise these fields with
the TRAINING statistics, so a level reads "noise as a fraction of the training data's spread", and a
sample's noise does not depend on which other samples share its batch.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from plait.errors import ConfigError
from plait.evaluation.perturb.base import check_level, normal, observed_cells


def gaussian_noise(
    values: Tensor,
    present: Tensor,
    mask: Tensor | None,
    level: float,
    generator: torch.Generator,
    **context: Any,
) -> tuple[Tensor, Tensor, Tensor | None]:
    """values [B, T, C] (timeseries, step mask), [B, C] (tabular, cell mask) or [B, D] (embedding).
    With `numeric_columns` in the context (a tabular field's), only that many leading columns get noise."""
    level = check_level("gaussian_noise", level)
    if level == 0:
        return values, present, mask
    cells = observed_cells(values, present, mask)
    if "numeric_columns" in context:  # a tabular layout: numeric columns, then category codes to spare
        numeric = int(context["numeric_columns"])
        if not 0 <= numeric <= values.shape[-1]:
            raise ConfigError(
                f"perturbation 'gaussian_noise': numeric_columns={numeric} but the field has "
                f"{values.shape[-1]} columns; build the context from this field's modality"
            )
        cells = cells.clone()
        cells[..., numeric:] = False
    noise = normal(tuple(values.shape), generator, values) * level
    return torch.where(cells, values + noise, values), present, mask
