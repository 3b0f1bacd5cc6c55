"""Applying a registered perturbation to one field of a batch, and the field facts it may need."""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from typing import Any

import torch

from plait.errors import ConfigError
from plait.evaluation.perturb.base import PERTURBATIONS, Perturbation
from plait.modalities.audio import AudioModality
from plait.modalities.base import Modality, NotFittedError
from plait.modalities.image import ImageModality
from plait.modalities.tabular import TabularModality
from plait.modalities.text import TextModality
from plait.registry import suggest
from plait.types import KINDS, Batch


def perturbations_for(kind: str) -> list[Perturbation]:
    """The perturbations that apply to fields of `kind`, by name."""
    if kind not in KINDS:
        raise ConfigError(
            f"unknown field kind '{kind}';{suggest(kind, list(KINDS))} Kinds: {', '.join(KINDS)}"
        )
    every = (PERTURBATIONS.get(name) for name in PERTURBATIONS)
    return [p for p in every if kind in p.kinds]


def perturbation_context(modality: Modality) -> dict[str, Any]:
    """What some families need to know about a fitted field beyond its tensors:
    tabular → numeric_columns, level_counts; text → vocab_size; audio → log_mel_mean, log_mel_std;
    image → pixel_mean, pixel_std (per channel, of pixels in [0, 1])."""
    if isinstance(modality, TabularModality):
        state = modality.get_state()
        return {"numeric_columns": len(state["numeric"]), "level_counts": [len(c) for c in state["levels"]]}
    if isinstance(modality, TextModality):
        if modality.tokenizer_ is None:
            raise NotFittedError.for_field(modality.name, modality.kind)
        return {"vocab_size": modality.tokenizer_.get_vocab_size()}
    if isinstance(modality, AudioModality):
        state = modality.get_state()
        return {"log_mel_mean": state["mean"], "log_mel_std": state["std"]}
    if isinstance(modality, ImageModality):
        state = modality.get_state()
        return {"pixel_mean": state["mean"], "pixel_std": state["std"]}
    return {}


def field_seed(seed: int, field: str) -> int:
    """The generator seed for one field: fields perturbed together get independent draws (the same
    seed for two fields would drop the same samples from both). crc32, not hash(): stable across runs."""
    return (int(seed) * 1_000_003 + zlib.crc32(field.encode("utf-8"))) % (2**63)


def perturb_batch(
    batch: Batch,
    field: str,
    kind: str,
    perturbation_name: str,
    level: float,
    seed: int,
    context: Mapping[str, Any] | None = None,
) -> Batch:
    """A new batch with `field` perturbed at `level`; other fields and the target are the same tensors.

    >>> perturb_batch(batch, "photo", "image", "blur", 1.5, seed=0)
    """
    perturbation = PERTURBATIONS.get(perturbation_name)
    if kind not in perturbation.kinds:
        names = ", ".join(p.name for p in perturbations_for(kind))
        raise ConfigError(
            f"perturbation '{perturbation_name}' applies to {', '.join(perturbation.kinds)} fields, not to "
            f"{kind} field '{field}'; perturbations for {kind}: {names}"
        )
    if field not in batch.values:
        fields = list(batch.values)
        raise ConfigError(
            f"field '{field}' is not in the batch;{suggest(field, fields)} Fields: {', '.join(fields)}"
        )
    generator = torch.Generator().manual_seed(field_seed(seed, field))
    values, present, mask = perturbation.fn(
        batch.values[field],
        batch.present[field],
        batch.masks.get(field),
        level,
        generator,
        **{**(context or {}), "kind": kind},
    )
    masks = dict(batch.masks)
    if mask is not None:
        masks[field] = mask
    return Batch(
        values={**batch.values, field: values},
        present={**batch.present, field: present},
        masks=masks,
        target=batch.target,
    )
