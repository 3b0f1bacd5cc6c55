"""Attention fusion: a learned [FUSED] token attends over one token per field.

Each field's pooled vector is projected to output_dim and tagged with a learned field-type
embedding; a [FUSED] token is prepended and `layers` pre-LayerNorm transformer blocks run over the
sequence with absent fields masked out as keys. The [FUSED] token is never masked, so every
attention row has a valid key and no softmax runs over an empty set. weights [B, M] are the
[FUSED] token's attention mass over the field tokens in the last layer, averaged over heads and
renormalised over the present fields.

The block is written out (not nn.MultiheadAttention) so that it returns its attention
probabilities per head.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import torch
from torch import Tensor, nn

from plait.fusion.base import check_fusion_args, check_heads, check_positive, gather_present, masked_attention
from plait.types import EncoderOutput, FusionOutput


class _Block(nn.Module):
    """Pre-LayerNorm multi-head self-attention + MLP that also returns attention probabilities."""

    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(
            nn.Linear(dim, 2 * dim), nn.GELU(), nn.Dropout(dropout), nn.Linear(2 * dim, dim)
        )
        self.drop = nn.Dropout(dropout)

    def forward(self, x: Tensor, key_valid: Tensor) -> tuple[Tensor, Tensor]:
        """x [B, T, D]; key_valid BoolTensor[B, T] (True = may be attended to).
        Returns x [B, T, D] and attention probabilities [B, H, T, T]."""
        b, t, d = x.shape
        qkv = self.qkv(self.norm1(x)).reshape(b, t, 3, self.heads, d // self.heads)  # (B, T, 3, H, Dh)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)  # 3 × (B, H, T, Dh)
        ctx, probs = masked_attention(q, k, v, key_valid)  # (B, H, T, Dh), (B, H, T, T)
        ctx = ctx.transpose(1, 2).reshape(b, t, d)  # (B, H, T, Dh) -> (B, T, D)
        x = x + self.drop(self.out(ctx))
        x = x + self.drop(self.mlp(self.norm2(x)))
        return x, probs


class AttentionFusion(nn.Module):
    """`AttentionFusion(field_to_dim={"photo": 64, "note": 64}, output_dim=64, heads=4, layers=1)`."""

    decision_level: ClassVar[bool] = False

    def __init__(
        self,
        field_to_dim: Mapping[str, int],
        output_dim: int,
        heads: int = 4,
        layers: int = 1,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        check_fusion_args("attention fusion", field_to_dim, output_dim, dropout)
        check_positive("attention fusion", "heads", heads)
        check_positive("attention fusion", "layers", layers)
        check_heads("attention fusion", output_dim, heads)
        self.field_order: tuple[str, ...] = tuple(field_to_dim)
        self.output_dim = output_dim
        self.proj = nn.ModuleList(nn.Linear(field_to_dim[f], output_dim) for f in self.field_order)
        self.field_embedding = nn.Parameter(0.02 * torch.randn(len(self.field_order), output_dim))
        self.fused_token = nn.Parameter(0.02 * torch.randn(output_dim))
        self.blocks = nn.ModuleList(_Block(output_dim, heads, dropout) for _ in range(layers))
        self.norm = nn.LayerNorm(output_dim)

    def forward(self, inputs: Mapping[str, EncoderOutput], present: Mapping[str, Tensor]) -> FusionOutput:
        pooled, mask = gather_present(inputs, present, self.field_order)
        b = mask.shape[0]
        fields = torch.stack([proj(p) for proj, p in zip(self.proj, pooled, strict=True)], dim=1)  # (B, M, D)
        fields = fields + self.field_embedding.unsqueeze(0)
        fused_token = self.fused_token.expand(b, 1, -1)  # (B, 1, D)
        x = torch.cat([fused_token, fields], dim=1)  # (B, 1 + M, D)
        key_valid = torch.cat([torch.ones_like(mask[:, :1]), mask], dim=1)  # (B, 1 + M)
        probs = torch.empty(0)
        for block in self.blocks:
            x, probs = block(x, key_valid)
        fused = self.norm(x[:, 0])  # (B, 1 + M, D) -> (B, D)
        mass = probs[:, :, 0, 1:].mean(dim=1) * mask.to(x.dtype)  # fused token's row, field keys: (B, M)
        weights = mass / mass.sum(dim=1, keepdim=True).clamp_min(torch.finfo(x.dtype).tiny)
        return FusionOutput(fused=fused, weights=weights)
