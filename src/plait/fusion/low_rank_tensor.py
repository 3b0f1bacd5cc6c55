"""Low-rank tensor fusion (Low-rank Multimodal Fusion, Liu et al. 2018).

The tensor-fusion weight over the outer product of z_f = [h_f; 1] is factorised into `rank`
per-field factors W_f[r] of shape (D_f+1, output_dim), so the product is never built:

    fused = Σ_r λ_r ∏_f (z_f · W_f[r]) + bias

The cost grows linearly with the field count instead of exponentially. An absent field gets
z_f = [0, …, 0; 1], so its factor is the constant row W_f[r, D_f] and its input cannot influence
the output (a sample with no field present gets a learned prior). There are no per-field weights.

Numerics: a product of M factors explodes or vanishes unless each factor stays near 1. So
  - each present field's pooled vector goes through an RMSNorm first, so the factors do not scale
    with the input's magnitude (a field whose encoder emits values of 1e4 cannot blow up the
    product). RMSNorm, not LayerNorm: it drops only the overall scale and keeps the mean, which
    matters for narrow fields (LayerNorm maps every 1-wide vector to its bias);
  - the constant row of every factor starts at 1 and the other rows at N(0, 1/(M·D_f)), so each
    factor starts at 1 + a_f with Var(a_f) ≈ 1/M and E[∏_f (1 + a_f)^2] = (1 + 1/M)^M < e for any M;
  - λ_r starts at 1/rank and the bias at -1, which cancels the constant 1: the initial output is
    ≈ Σ_f a_f plus small cross terms, and exactly 0 for a sample with no field present.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import ClassVar

import torch
from torch import Tensor, nn

from plait.fusion.base import check_fusion_args, check_positive, gather_present
from plait.fusion.tensor import with_constant
from plait.types import EncoderOutput, FusionOutput


def _init_factor(rank: int, in_dim: int, output_dim: int, n_fields: int) -> Tensor:
    """(rank, in_dim+1, output_dim): small random rows for h, a row of ones for the constant 1."""
    factor = torch.randn(rank, in_dim + 1, output_dim) / math.sqrt(n_fields * in_dim)
    factor[:, in_dim, :] = 1.0
    return factor


class LowRankTensorFusion(nn.Module):
    """`LowRankTensorFusion(field_to_dim={"photo": 64, "note": 32}, output_dim=64, rank=4, dropout=0.1)`."""

    decision_level: ClassVar[bool] = False

    def __init__(
        self, field_to_dim: Mapping[str, int], output_dim: int, *, rank: int = 4, dropout: float = 0.1
    ) -> None:
        super().__init__()
        check_fusion_args("low-rank tensor fusion", field_to_dim, output_dim, dropout)
        check_positive("low-rank tensor fusion", "rank", rank)
        self.field_order: tuple[str, ...] = tuple(field_to_dim)
        self.output_dim = output_dim
        self.rank = rank
        m = len(self.field_order)
        self.norms = nn.ModuleList(nn.RMSNorm(field_to_dim[f], eps=1e-5) for f in self.field_order)
        self.dropout = nn.Dropout(dropout)
        self.factors = nn.ParameterList(
            nn.Parameter(_init_factor(rank, field_to_dim[f], output_dim, m)) for f in self.field_order
        )
        self.rank_weights = nn.Parameter(torch.full((rank,), 1.0 / rank))  # λ_r
        self.bias = nn.Parameter(torch.full((output_dim,), -1.0))

    def field_vectors(self, pooled: list[Tensor], mask: Tensor) -> list[Tensor]:
        """z_f = [dropout(norm(h_f)); 1] for present samples and [0, …, 0; 1] for absent ones."""
        z = []
        for i, (norm, p) in enumerate(zip(self.norms, pooled, strict=True)):
            h = self.dropout(norm(p))  # (B, D_f)
            # Dropout and the norm keep zero rows zero, but masking here states the contract
            # (absent -> exactly [0, …, 0; 1]) without relying on either.
            h = torch.where(mask[:, i : i + 1], h, torch.zeros_like(h))
            z.append(with_constant(h))  # (B, D_f) -> (B, D_f+1)
        return z

    def fuse_vectors(self, z: list[Tensor]) -> Tensor:
        """Σ_r λ_r ∏_f (z_f · W_f[r]) + bias -> (B, output_dim)."""
        product: Tensor | None = None
        for zf, factor in zip(z, self.factors, strict=True):
            term = torch.einsum("bd,rdo->bro", zf, factor)  # (B, D_f+1) x (r, D_f+1, O) -> (B, r, O)
            product = term if product is None else product * term
        if product is None:  # unreachable: check_fusion_args requires a field
            raise RuntimeError("low-rank tensor fusion has no fields")
        return torch.einsum("bro,r->bo", product, self.rank_weights) + self.bias  # (B, r, O) -> (B, O)

    def forward(self, inputs: Mapping[str, EncoderOutput], present: Mapping[str, Tensor]) -> FusionOutput:
        pooled, mask = gather_present(inputs, present, self.field_order)
        fused = self.fuse_vectors(self.field_vectors(pooled, mask))
        return FusionOutput(fused=fused, weights=None)
