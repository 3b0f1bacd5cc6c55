"""Hierarchical fusion: fields join one at a time, most similar first.

Each field is projected to output_dim. The field at position 0 of the join order starts the running
state; stage k (one small module per POSITION) merges the state with the field at position k:
    u = x_k + MLP([z; x_k]),   a = sigmoid(gate([z; x_k])),   z <- (1 - a) z + a u.
Presence decides which branch a sample takes rather than being fed to the MLP as bits, so an absent
field contributes exactly nothing: state absent and field present -> the state becomes the field's
projection; field absent -> the state passes through unchanged. A sample with no field present gets
a learned fallback vector; the others get LayerNorm(z).

The join order is a buffer (default: field_order), so it round-trips through state_dict. `prepare`
sets it from data: first the pair of fields whose embeddings are most similar, then greedily the
field with the highest mean similarity to those already joined. Similarity is linear CKA (Kornblith
et al. 2019), which compares representations of different widths, computed over the rows where both
fields are present.

weights [B, M] are each field's share of the convex mix: a stage gives (1 - a) of the mass to the
fields already joined and a to the joining field (which is credited with the whole update u).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import torch
from torch import Tensor, nn

from plait.errors import ConfigError
from plait.fusion.base import check_fusion_args, check_positive, gather_present, stack_present
from plait.fusion.hooks import check_hook_inputs
from plait.types import EncoderOutput, FusionOutput

_NAME = "hierarchical fusion"


def linear_cka(x: Tensor, y: Tensor) -> float:
    """Linear CKA between paired rows x [N, D1] and y [N, D2] (widths may differ): 1 when one is an
    orthogonal transform and scaling of the other, near 0 when unrelated. 0 when a side has no variance."""
    x = x.double() - x.double().mean(dim=0)
    y = y.double() - y.double().mean(dim=0)
    if x.shape[0] < max(x.shape[1], y.shape[1]):  # fewer rows than features: N×N Gram matrices are smaller
        kx, ky = x @ x.T, y @ y.T
        cross, norm = (kx * ky).sum(), torch.linalg.matrix_norm(kx) * torch.linalg.matrix_norm(ky)
    else:
        cross = (y.T @ x).pow(2).sum()
        norm = torch.linalg.matrix_norm(x.T @ x) * torch.linalg.matrix_norm(y.T @ y)
    return float(cross / norm) if float(norm) > 0 else 0.0


def greedy_join_order(similarity: Tensor) -> list[int]:
    """Field indices in join order from a symmetric similarity [M, M]: the most similar pair first
    (lower index first), then repeatedly the field with the highest mean similarity to the joined
    ones. Ties go to the lower index."""
    m = similarity.shape[0]
    if m < 3:
        return list(range(m))
    pairs = [(i, j) for i in range(m) for j in range(i + 1, m)]
    pair_similarity = {(i, j): float(similarity[i, j]) for i, j in pairs}
    i, j = max(pairs, key=pair_similarity.__getitem__)  # max keeps the first of equals
    order = [i, j]
    rest = [k for k in range(m) if k not in order]
    while rest:
        nxt = max(rest, key=lambda k: float(similarity[k, order].mean()))
        order.append(nxt)
        rest.remove(nxt)
    return order


class _Stage(nn.Module):
    """Merge the running state z [B, D] with a joining field x [B, D] (both present)."""

    def __init__(self, dim: int, hidden: int, dropout: float) -> None:
        super().__init__()
        self.mlp = nn.Sequential(
            nn.Linear(2 * dim, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, dim)
        )
        self.gate = nn.Linear(2 * dim, 1)

    def forward(self, z: Tensor, x: Tensor) -> tuple[Tensor, Tensor]:
        zx = torch.cat([z, x], dim=-1)  # (B, 2D)
        a = torch.sigmoid(self.gate(zx))  # (B, 1)
        return (1 - a) * z + a * (x + self.mlp(zx)), a


class HierarchicalFusion(nn.Module):
    """`HierarchicalFusion(field_to_dim={"photo": 64, "note": 32, "specs": 8}, output_dim=64, hidden=64)`."""

    decision_level: ClassVar[bool] = False
    order: Tensor

    def __init__(
        self, field_to_dim: Mapping[str, int], output_dim: int, hidden: int = 64, dropout: float = 0.1
    ) -> None:
        super().__init__()
        check_fusion_args(_NAME, field_to_dim, output_dim, dropout)
        check_positive(_NAME, "hidden", hidden)
        self.field_order: tuple[str, ...] = tuple(field_to_dim)
        self.field_to_dim = dict(field_to_dim)
        self.output_dim = output_dim
        m = len(self.field_order)
        self.proj = nn.ModuleList(nn.Linear(field_to_dim[f], output_dim) for f in self.field_order)
        self.stages = nn.ModuleList(
            _Stage(output_dim, hidden, dropout) for _ in range(m - 1)
        )  # positions 1..M-1
        self.norm = nn.LayerNorm(output_dim)
        self.fallback = nn.Parameter(torch.zeros(output_dim))  # the output when no field is present
        self.register_buffer("order", torch.arange(m))  # field index at each position

    @property
    def join_order(self) -> tuple[str, ...]:
        return tuple(self.field_order[i] for i in self.order.tolist())

    def prepare(self, pooled: Mapping[str, Tensor], present: Mapping[str, Tensor]) -> None:
        """Set the join order from pooled[f] [N, D_f] and present[f] [N] (training rows)."""
        check_hook_inputs(_NAME, "prepare", self.field_to_dim, pooled, present)
        mask = stack_present(present, self.field_order).bool().cpu()  # (N, M)
        m = len(self.field_order)
        similarity = torch.zeros(m, m, dtype=torch.float64)
        for i in range(m):
            for j in range(i + 1, m):
                both = mask[:, i] & mask[:, j]
                x = pooled[self.field_order[i]].detach().cpu()[both]
                y = pooled[self.field_order[j]].detach().cpu()[both]
                similarity[i, j] = similarity[j, i] = linear_cka(x, y)
        self.set_join_order([self.field_order[k] for k in greedy_join_order(similarity)])

    def set_join_order(self, names: list[str] | tuple[str, ...]) -> None:
        """Fix the join order by field names (every field exactly once)."""
        if sorted(names) != sorted(self.field_order):
            raise ConfigError(
                f"{_NAME}: join order {list(names)} must name every field exactly once; "
                f"fields are {list(self.field_order)}"
            )
        index = [self.field_order.index(f) for f in names]
        self.order.copy_(torch.tensor(index, dtype=self.order.dtype, device=self.order.device))

    def forward(self, inputs: Mapping[str, EncoderOutput], present: Mapping[str, Tensor]) -> FusionOutput:
        pooled, mask = gather_present(inputs, present, self.field_order)
        x = torch.stack([proj(p) for proj, p in zip(self.proj, pooled, strict=True)], dim=1)  # (B, M, D)
        x, here = x[:, self.order], mask[:, self.order]  # field order -> join order
        state = here[:, :1]  # (B, 1): does the running state hold anything yet
        z = torch.where(state, x[:, 0], torch.zeros_like(x[:, 0]))  # (B, D)
        shares = [state.to(z.dtype)]  # per position, (B, 1) each
        for k, stage in enumerate(self.stages, start=1):
            new = here[:, k : k + 1]  # (B, 1)
            merged, a = stage(z, x[:, k])
            both = state & new
            z = torch.where(new, torch.where(both, merged, x[:, k]), z)
            # mass moving to the joining field: a when merged, all when it starts the state, none when absent
            moved = torch.where(both, a, new.to(a.dtype))
            shares = [s * (1 - moved) for s in shares] + [moved]
            state = state | new
        fused = torch.where(state, self.norm(z), self.fallback.expand_as(z))
        weights = torch.cat(shares, dim=1)[:, torch.argsort(self.order)]  # join order -> field order
        return FusionOutput(fused=fused, weights=weights)
