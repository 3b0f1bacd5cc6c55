"""The perturbation record, its registry, and helpers the perturbation families share.

A perturbation is a pure function over one field of a batch:

    fn(values, present, mask, level, generator, **context) -> (values, present, mask)

values: the field's collated tensor [B, ...]; present: BoolTensor[B]; mask: the step or cell mask
(BoolTensor[B, L] for sequences, [B, C] for tabular) or None. It returns new tensors and never writes
into its inputs; level 0 returns the inputs themselves; the same generator state gives the same
output. Randomness is drawn so that levels share it (common random numbers): the samples dropped at
0.3 are among those dropped at 0.5, and noise at 0.4 is the noise at 0.2 scaled by two, which makes
robustness curves smooth. Nothing is borrowed from another row: noise is synthetic, replacement
ids and codes are drawn at random, and a statistic of the batch (a channel's std) only scales noise.

Which families apply to a field is its modality's declaration (`perturbations`, read by
`perturbations_for`), and what a family needs about the fitted field (the tabular layout, the text
vocabulary, the audio log-mel statistics) comes in `context`, from `perturbation_context(modality)`.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any, Protocol

import torch
from torch import Tensor

from plait.errors import ConfigError
from plait.registry import Registry


class PerturbFn(Protocol):
    def __call__(
        self,
        values: Tensor,
        present: Tensor,
        mask: Tensor | None,
        level: float,
        generator: torch.Generator,
        **context: Any,
    ) -> tuple[Tensor, Tensor, Tensor | None]: ...


@dataclass(frozen=True)
class Perturbation:
    """One family: its name, the function, the levels the default sweep visits (0 first, evenly
    spaced up to the largest), its definition (`description`: what a level does, in words a
    figure's reader needs), what one unit of level is, the largest level the function accepts
    (`max_level`, inf: unbounded), whether it draws random numbers (blur does not: its seed
    changes nothing) and whether the default sweep runs it (`default`; families kept for
    comparison with published figures run only when chosen). Which fields it applies to is not
    its say: each modality names its families (`perturbations`)."""

    name: str
    fn: PerturbFn
    levels: tuple[float, ...]
    description: str
    unit: str = ""
    max_level: float = math.inf
    seeded: bool = True
    default: bool = True

    @property
    def level_range(self) -> str:
        """The levels the function accepts, for messages: `[0, 1]` or `[0, ∞)`."""
        return "[0, ∞)" if math.isinf(self.max_level) else f"[0, {self.max_level:g}]"


PERTURBATIONS: Registry[Perturbation] = Registry("perturbation")


def evenly(maximum: float, count: int) -> tuple[float, ...]:
    """`count` levels from 0 to `maximum`, evenly spaced (rounded so they print cleanly)."""
    return tuple(round(maximum * i / (count - 1), 6) for i in range(count))


def check_level(name: str, level: object, maximum: float = math.inf) -> float:
    """`level` as a float when it is a finite number in [0, maximum]; else ConfigError."""
    number = float(level) if isinstance(level, numbers.Real) and not isinstance(level, bool) else math.nan
    if not (math.isfinite(number) and 0.0 <= number <= maximum):
        bound = "a finite number >= 0" if math.isinf(maximum) else f"a number in [0, {maximum:g}]"
        raise ConfigError(f"perturbation '{name}': level must be {bound}, got {level!r}")
    return number


def require(context: dict[str, Any], name: str, key: str) -> Any:
    """context[key], or a ConfigError saying where it comes from."""
    if key not in context:
        raise ConfigError(
            f"perturbation '{name}' needs '{key}' in its context; "
            "pass context=perturbation_context(modality) built from the field's fitted modality"
        )
    return context[key]


def rows(flags: Tensor, like: Tensor) -> Tensor:
    """BoolTensor[B] → [B, 1, …, 1], broadcastable against `like` [B, ...]."""
    return flags.reshape(flags.shape[0], *([1] * (like.dim() - 1)))


def observed_cells(values: Tensor, present: Tensor, mask: Tensor | None) -> Tensor:
    """BoolTensor shaped like values: cells of present samples on real steps (or observed cells).

    A step mask [B, L] covers every trailing dim of values [B, L, ...]; a cell mask of values'
    own shape (tabular) is used as it is."""
    cells = rows(present.to(torch.bool), values).expand_as(values)
    if mask is None:
        return cells
    step = mask.to(torch.bool)
    step = step.reshape(*step.shape, *([1] * (values.dim() - step.dim())))  # (B, L) -> (B, L, 1, …)
    return cells & step.expand_as(values)


def uniform(shape: tuple[int, ...], generator: torch.Generator, like: Tensor) -> Tensor:
    """U[0, 1) FloatTensor drawn on the generator's device, moved to `like`'s device."""
    return torch.rand(shape, generator=generator, device=generator.device).to(like.device)


def normal(shape: tuple[int, ...], generator: torch.Generator, like: Tensor) -> Tensor:
    """N(0, 1) in `like`'s dtype and device."""
    draw = torch.randn(shape, generator=generator, device=generator.device)
    return draw.to(device=like.device, dtype=like.dtype)


def absent_if_empty(values: Tensor, present: Tensor, mask: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """A present sample left with no real step becomes absent, as the loader would have made it."""
    empty = present & ~mask.any(dim=1)
    if not bool(empty.any()):
        return values, present, mask
    return torch.where(rows(empty, values), torch.zeros_like(values), values), present & ~empty, mask
