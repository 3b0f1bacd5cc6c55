"""Set fusion: permutation-invariant attention pooling over the present fields (Set Transformer's
PMA with one seed, Lee et al. 2019).

Each field's pooled vector is projected to output_dim and tagged with a learned field embedding; a
learned seed query attends over these field vectors with absent fields masked out as keys, then a
residual MLP and a LayerNorm give the fused vector. Softmax attention is a weighted sum over a set, so
the result does not depend on the order of the fields, and any subset of fields is handled the same
way. A sample with no field present gets the seed alone through the MLP (a learned, finite vector).
weights [B, M] are the seed's attention over the fields, averaged over heads (0 for absent fields).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import torch
from torch import Tensor, nn

from plait.fusion.base import check_fusion_args, check_heads, check_positive, gather_present, masked_attention
from plait.types import EncoderOutput, FusionOutput

_NAME = "set fusion"


class SetFusion(nn.Module):
    """`SetFusion(field_to_dim={"photo": 64, "note": 64}, output_dim=64, heads=4)`."""

    decision_level: ClassVar[bool] = False

    def __init__(
        self, field_to_dim: Mapping[str, int], output_dim: int, *, heads: int = 4, dropout: float = 0.1
    ) -> None:
        super().__init__()
        check_fusion_args(_NAME, field_to_dim, output_dim, dropout)
        check_positive(_NAME, "heads", heads)
        check_heads(_NAME, output_dim, heads)
        self.field_order: tuple[str, ...] = tuple(field_to_dim)
        self.output_dim = output_dim
        self.heads = heads
        self.proj = nn.ModuleList(nn.Linear(field_to_dim[f], output_dim) for f in self.field_order)
        self.field_embedding = nn.Parameter(0.02 * torch.randn(len(self.field_order), output_dim))
        self.seed = nn.Parameter(0.02 * torch.randn(output_dim))
        self.norm_kv = nn.LayerNorm(output_dim)
        self.q = nn.Linear(output_dim, output_dim)
        self.kv = nn.Linear(output_dim, 2 * output_dim)
        self.out = nn.Linear(output_dim, output_dim)
        self.norm_mlp = nn.LayerNorm(output_dim)
        self.mlp = nn.Sequential(
            nn.Linear(output_dim, 2 * output_dim),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(2 * output_dim, output_dim),
        )
        self.drop = nn.Dropout(dropout)
        self.norm_out = nn.LayerNorm(output_dim)

    def forward(self, inputs: Mapping[str, EncoderOutput], present: Mapping[str, Tensor]) -> FusionOutput:
        pooled, mask = gather_present(inputs, present, self.field_order)  # mask (B, M)
        fields = torch.stack([proj(p) for proj, p in zip(self.proj, pooled, strict=True)], dim=1)  # (B, M, D)
        fields = fields + self.field_embedding.unsqueeze(0)
        ctx, probs = self._pool(fields, mask)  # (B, D), (B, H, M)
        any_present = mask.any(dim=1, keepdim=True)  # (B, 1)
        # nothing present: no information to add, the seed alone goes on (not the dummy key's value)
        ctx = torch.where(any_present, ctx, torch.zeros_like(ctx))
        h = self.seed + self.drop(self.out(ctx))  # (B, D)
        h = h + self.drop(self.mlp(self.norm_mlp(h)))
        mass = probs.mean(dim=1) * mask.to(h.dtype)  # (B, H, M) -> (B, M)
        weights = mass / mass.sum(dim=1, keepdim=True).clamp_min(torch.finfo(h.dtype).tiny)
        return FusionOutput(fused=self.norm_out(h), weights=weights)

    def _pool(self, fields: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """The seed attends over fields [B, M, D] with absent keys masked → context [B, D] and
        attention probabilities [B, H, M]."""
        b, m, d = fields.shape
        dh = d // self.heads
        q = self.q(self.seed).reshape(1, self.heads, 1, dh)  # (D) -> (1, H, 1, Dh)
        kv = self.kv(self.norm_kv(fields)).reshape(b, m, 2, self.heads, dh)  # (B, M, 2, H, Dh)
        k, v = kv.permute(2, 0, 3, 1, 4)  # 2 × (B, H, M, Dh)
        # A row with no present field would softmax over nothing (NaN): unmask its first (zeroed)
        # field as a dummy key; forward discards the context and the weights of such rows.
        key_valid = mask.clone()
        key_valid[:, 0] |= ~mask.any(dim=1)
        ctx, probs = masked_attention(q, k, v, key_valid)  # (B, H, 1, Dh), (B, H, 1, M)
        ctx = ctx.reshape(b, d)  # (B, H, 1, Dh) -> (B, D)
        return ctx, probs.squeeze(2)
