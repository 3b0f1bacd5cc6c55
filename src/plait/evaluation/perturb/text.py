"""Text as token ids [B, L] (0 = [PAD], 1 = [UNK], as `train_tokenizer` fixes them) with a token
mask [B, L]: `typo` and `word_drop`. Both work on tokens (BPE subwords), not characters or words:
a "typo" is a subword swapped for a random one, a dropped "word" one dropped subword."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from plait.errors import ConfigError
from plait.evaluation.perturb.base import check_level, require, uniform

FIRST_WORD_ID = 2  # ids below are [PAD] and [UNK]; a typo never produces them


def _tokens(name: str, values: Tensor, present: Tensor, mask: Tensor | None) -> tuple[Tensor, Tensor]:
    """(token mask, real tokens of present samples), both BoolTensor[B, L]."""
    if values.dim() != 2 or values.is_floating_point() or mask is None or mask.shape != values.shape:
        got = None if mask is None else tuple(mask.shape)
        raise ConfigError(
            f"perturbation '{name}': expected token ids [B, L] with a token mask [B, L], got "
            f"{values.dtype} {tuple(values.shape)} and mask {got}; apply it to text fields"
        )
    steps = mask.to(torch.bool)
    return steps, steps & present[:, None]


def typo(
    values: Tensor,
    present: Tensor,
    mask: Tensor | None,
    level: float,
    generator: torch.Generator,
    **context: Any,
) -> tuple[Tensor, Tensor, Tensor | None]:
    """Replace each real token with probability `level` by another random id of the vocabulary
    (context `vocab_size`), never [PAD] or [UNK]."""
    level = check_level("typo", level, maximum=1.0)
    _, real = _tokens("typo", values, present, mask)
    vocab = int(require(context, "typo", "vocab_size"))
    if vocab < FIRST_WORD_ID + 2:
        raise ConfigError(f"perturbation 'typo': vocab_size={vocab} has fewer than two non-special ids")
    if level == 0:
        return values, present, mask
    chosen = (uniform(tuple(values.shape), generator, values) < level) & real  # (B, L)
    # Uniform over the vocab's word ids other than the original one: draw from one fewer and skip it.
    draw = torch.randint(0, vocab - FIRST_WORD_ID - 1, tuple(values.shape), generator=generator)
    replacement = draw.to(device=values.device, dtype=values.dtype) + FIRST_WORD_ID
    replacement = replacement + ((replacement >= values) & (values >= FIRST_WORD_ID)).to(values.dtype)
    return torch.where(chosen, replacement, values), present, mask


def word_drop(
    values: Tensor,
    present: Tensor,
    mask: Tensor | None,
    level: float,
    generator: torch.Generator,
    **context: Any,
) -> tuple[Tensor, Tensor, Tensor | None]:
    """Remove each real token with probability `level`; the rest move left in order, the tail is
    [PAD] and masked. A text left with no token becomes absent, as the loader makes an empty text."""
    level = check_level("word_drop", level, maximum=1.0)
    steps, real = _tokens("word_drop", values, present, mask)
    if level == 0:
        return values, present, mask
    kept = real & ~(uniform(tuple(values.shape), generator, values) < level)  # (B, L)
    order = torch.sort((~kept).to(torch.int8), dim=1, stable=True).indices  # kept tokens first, in order
    packed = values.gather(1, order)
    count = kept.sum(dim=1)  # (B,)
    new_mask = torch.arange(values.shape[1], device=values.device)[None, :] < count[:, None]  # (B, L)
    packed = torch.where(new_mask, packed, torch.zeros_like(packed))
    untouched = ~present  # absent rows keep their (zero) values and mask as they came
    packed = torch.where(untouched[:, None], values, packed)
    new_mask = torch.where(untouched[:, None], steps, new_mask)
    return packed, present & (count > 0), new_mask
