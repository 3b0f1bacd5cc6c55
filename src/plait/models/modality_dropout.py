"""Modality dropout: hide present fields at random during training so the model learns to cope
with any subset of its inputs, as it will meet them at prediction time.

Only the presence masks change; the model zeroes what a mask hides (encoders zero the pooled
vector of absent samples and fusions ignore absent fields).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor

from plait.errors import ConfigError


def drop_modalities(
    present: Mapping[str, Tensor], p: float, generator: torch.Generator | None = None
) -> dict[str, Tensor]:
    """New presence masks where each present field of each sample is dropped with probability p.

    A sample never loses its last present field: when every present field of a sample was drawn
    for dropping, one of them (chosen uniformly) is kept. Absent fields stay absent. p = 0 returns
    copies of the masks. `generator` must live on the masks' device.
    """
    if not 0.0 <= p <= 1.0:
        raise ConfigError(
            f"modality dropout p (train.modality_dropout) must be a probability in [0, 1]; got {p!r}"
        )
    names = list(present)
    if len(names) == 0 or p == 0.0:
        return {f: m.clone() for f, m in present.items()}
    mask = _stacked(present)  # (B, M)
    draws = torch.rand(mask.shape, generator=generator, device=mask.device)
    kept = mask & (draws >= p)
    lost_all = mask.any(dim=1) & ~kept.any(dim=1)  # (B,)
    rescue = _one_present(mask, generator)
    kept = kept | (rescue & lost_all.unsqueeze(1))
    return _unstacked(kept, present)


def sample_subsets(
    present: Mapping[str, Tensor], generator: torch.Generator | None = None
) -> dict[str, Tensor]:
    """New presence masks holding, for each sample with two or more present fields, a random
    proper non-empty subset of them (every such subset can be drawn; with two fields, one of the
    two alone); a sample with one present field keeps it. Training on these teaches the model
    every "field missing" case it may meet. `generator` must live on the masks' device."""
    names = list(present)
    if not names:
        return {}
    mask = _stacked(present)  # (B, M)
    kept = mask & (torch.rand(mask.shape, generator=generator, device=mask.device) < 0.5)
    pick = _one_present(mask, generator)
    full = (kept == mask).all(dim=1) & (mask.sum(dim=1) >= 2)  # every present field drawn: drop one
    kept = torch.where(full.unsqueeze(1), mask & ~pick, kept)
    empty = ~kept.any(dim=1)  # none drawn: keep one
    kept = torch.where(empty.unsqueeze(1), pick & mask, kept)
    return _unstacked(kept, present)


def _stacked(present: Mapping[str, Tensor]) -> Tensor:
    """The masks side by side: BoolTensor (B, M), fields in `present`'s order."""
    return torch.stack([m.bool() for m in present.values()], dim=1)


def _unstacked(kept: Tensor, present: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """(B, M) back to one mask per field, each in its own dtype."""
    return {f: kept[:, i].to(m.dtype) for i, (f, m) in enumerate(present.items())}


def _one_present(mask: Tensor, generator: torch.Generator | None) -> Tensor:
    """One present field per sample, chosen uniformly (the largest fresh draw among them), as a
    one-hot BoolTensor (B, M); arbitrary for a sample with none present (callers mask it)."""
    scores = torch.rand(mask.shape, generator=generator, device=mask.device).masked_fill(~mask, -1.0)
    return torch.zeros_like(mask).scatter(1, scores.argmax(dim=1, keepdim=True), True)
