"""Applying a registered perturbation to one field of a batch. Which families apply to a field is
its modality's declaration (`perturbations`), plus `missing`, which applies to every field; what a
family needs about the fitted field is the modality's `perturbation_context()`. Both are read
through the contract (plait.modalities.contract), so no kind is named here.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from typing import Any

import torch

from plait.errors import ConfigError, UnknownNameError
from plait.evaluation.perturb.base import PERTURBATIONS, Perturbation
from plait.modalities import MODALITIES
from plait.modalities.contract import noise_family, perturbation_context, perturbation_families
from plait.registry import suggest
from plait.types import Batch

EVERY_FIELD = ("missing",)  # families that apply to a field of any kind


def kind_name(modality: Any) -> str:
    """The modality's kind, for messages (its class name when it declares none); `modality` is
    a modality or its class."""
    kind = getattr(modality, "kind", None)
    if isinstance(kind, str):
        return kind
    return (modality if isinstance(modality, type) else type(modality)).__name__


def perturbations_for(modality: Any) -> list[Perturbation]:
    """The perturbations that apply to a field of `modality` (a modality or its class): `missing`,
    then the families the modality declares, in its order."""
    _not_a_name(modality, "perturbations_for")
    declared = perturbation_families(modality)
    names = [*EVERY_FIELD, *(n for n in declared if n not in EVERY_FIELD)]
    return [_registered(modality, name, "perturbations") for name in names]


def noise_perturbation(modality: Any) -> Perturbation | None:
    """The family the all-fields noise curve perturbs a field of `modality` with, or None when the
    modality declares none (the field is then left out of that curve)."""
    _not_a_name(modality, "noise_perturbation")
    name = noise_family(modality)
    return None if name is None else _registered(modality, name, "noise_family")


def applies_to(family: str) -> str:
    """Which fields `family` applies to, for messages: "image fields" (the registered kinds that
    declare it)."""
    if family in EVERY_FIELD:
        return "all fields"
    kinds = [k for k in MODALITIES if family in perturbation_families(MODALITIES.get(k))]
    return f"{', '.join(kinds)} fields" if kinds else "fields of no registered kind"


def _not_a_name(modality: Any, caller: str) -> None:
    """A kind's name is not its modality: the contract would read no declaration off a string."""
    if isinstance(modality, str):
        raise TypeError(
            f"{caller} takes a modality or its class, not the kind name {modality!r}; pass the "
            "field's modality (trained.modalities[field]) or plait.modalities.MODALITIES.get(kind)"
        )


def _registered(modality: Any, name: str, declaration: str) -> Perturbation:
    """The registered family `name` a modality declares, or an error naming the modality."""
    if name in PERTURBATIONS:
        return PERTURBATIONS.get(name)
    registered = PERTURBATIONS.names()
    owner = modality if isinstance(modality, type) else type(modality)
    raise UnknownNameError(
        f"the {kind_name(modality)} modality ({owner.__name__}) declares the perturbation family "
        f"'{name}' in `{declaration}`, which is not registered;{suggest(str(name), registered)} "
        f"Registered families: {', '.join(registered)}; fix the declaration or register the family "
        "in plait.evaluation.perturb"
    )


def field_context(modality: Any) -> dict[str, Any]:
    """What the families need about a fitted field of `modality` (`perturbation_context`);
    nothing for a modality's class, which has no fitted state."""
    return {} if isinstance(modality, type) else perturbation_context(modality)


def field_seed(seed: int, field: str) -> int:
    """The generator seed for one field: fields perturbed together get independent draws (the same
    seed for two fields would drop the same samples from both). crc32, not hash(): stable across runs."""
    return (int(seed) * 1_000_003 + zlib.crc32(field.encode("utf-8"))) % (2**63)


def perturb_batch(
    batch: Batch,
    field: str,
    modality: Any,
    perturbation_name: str,
    level: float,
    seed: int,
    context: Mapping[str, Any] | None = None,
) -> Batch:
    """A new batch with `field` (a field of `modality`) perturbed at `level`; other fields and the
    target are the same tensors. `context`: what the family needs about the fitted field; None
    reads it from `modality` (`field_context`). Pass it in when perturbing many batches, as
    `sweep` does.

    >>> perturb_batch(batch, "photo", modalities["photo"], "blur", 1.5, seed=0)
    """
    perturbation = PERTURBATIONS.get(perturbation_name)
    families = [p.name for p in perturbations_for(modality)]
    if perturbation.name not in families:
        kind = kind_name(modality)
        raise ConfigError(
            f"perturbation '{perturbation_name}' applies to {applies_to(perturbation.name)}, not to {kind} "
            f"field '{field}'; perturbations for {kind}: {', '.join(families)}"
        )
    if field not in batch.values:
        fields = list(batch.values)
        raise ConfigError(
            f"field '{field}' is not in the batch;{suggest(field, fields)} Fields: {', '.join(fields)}"
        )
    if context is None:
        context = field_context(modality)
    generator = torch.Generator().manual_seed(field_seed(seed, field))
    values, present, mask = perturbation.fn(
        batch.values[field],
        batch.present[field],
        batch.masks.get(field),
        level,
        generator,
        **context,
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
