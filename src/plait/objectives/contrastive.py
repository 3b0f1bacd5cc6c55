"""The contrastive objective of the shared space as a pure function: symmetric InfoNCE (CLIP's loss)
between two fields' embeddings of the same rows, with rows where either field is absent left out
of the loss — never paired with a zero vector, and never a negative for another row.

Across processes (DDP) each process passes its own rows and the rows of every process, gathered
(`gathered`), so each row meets the negatives of the whole global batch; with equal batch sizes
per process the mean over processes equals the one-process loss on the concatenated batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch
import torch.nn.functional as F
from torch import Tensor


@dataclass(frozen=True)
class Gathered:
    """One pair's embeddings of every process's rows, in rank order: a (N, d), b (N, d),
    both BoolTensor[N] (both fields present); this process's rows start at `offset`."""

    a: Tensor
    b: Tensor
    both: Tensor
    offset: int


class GatherFn(Protocol):
    """Gathers one pair's local rows into `Gathered` across processes (Lightning's
    `all_gather(..., sync_grads=True)` in training; torch.distributed in the tests)."""

    def __call__(self, a: Tensor, b: Tensor, both: Tensor) -> Gathered: ...


def symmetric_info_nce(
    a: Tensor, b: Tensor, both: Tensor, scale: Tensor, gathered: Gathered | None = None
) -> Tensor:
    """Mean of the a→b and b→a cross-entropies of `scale · cos` logits, over the rows where both
    fields are present. a, b: (B, d) unit vectors of the same B rows; both: BoolTensor[B];
    scale: the inverse temperature (a scalar tensor, learnable). Candidates are the rows (of
    `gathered`, when given) where both are present. A batch with fewer than two such candidates
    gives a zero loss that still belongs to the graph — through the gathered rows too, so that under
    DDP the backward pass of the gather runs on every process (one that skipped it would leave
    the others waiting)."""
    if a.shape != b.shape or a.dim() != 2 or both.shape != a.shape[:1]:
        raise ValueError(
            f"symmetric_info_nce expects a and b (B, d) and both (B,); got {tuple(a.shape)}, "
            f"{tuple(b.shape)} and {tuple(both.shape)}"
        )
    everyone = gathered or Gathered(a=a, b=b, both=both, offset=0)
    rows = both.nonzero().squeeze(1)  # (n,) local rows with a pair
    if rows.numel() == 0 or int(everyone.both.sum()) < 2:
        return (a.sum() + b.sum() + everyone.a.sum() + everyone.b.sum()) * 0.0 + scale * 0.0
    candidates = ~everyone.both.bool()  # (N,) True: not a candidate
    target = rows + everyone.offset  # each row's own pair among the N
    logits_ab = scale * a[rows] @ everyone.b.T  # (n, d) @ (d, N) -> (n, N)
    logits_ba = scale * b[rows] @ everyone.a.T  # (n, N)
    logits_ab = logits_ab.masked_fill(candidates[None, :], float("-inf"))
    logits_ba = logits_ba.masked_fill(candidates[None, :], float("-inf"))
    return (F.cross_entropy(logits_ab, target) + F.cross_entropy(logits_ba, target)) / 2


def normalise(x: Tensor) -> Tensor:
    """Rows scaled to unit length (a zero row stays zero): (B, d) -> (B, d)."""
    return F.normalize(x, dim=-1, eps=1e-8)


def pairs_loss(
    embedded: dict[str, Tensor],
    present: dict[str, Tensor],
    pairs: tuple[tuple[str, str], ...],
    scale: Tensor,
    gather: GatherFn | None = None,
) -> Tensor:
    """The mean InfoNCE over `pairs` of fields' unit embeddings (B, d) each, with `present[f]`
    BoolTensor[B]; `gather` (under DDP) turns local rows into every process's."""
    losses = []
    for first, second in pairs:
        both = present[first].bool() & present[second].bool()
        shared = None if gather is None else gather(embedded[first], embedded[second], both)
        losses.append(symmetric_info_nce(embedded[first], embedded[second], both, scale, shared))
    return torch.stack(losses).mean()
