"""Cross-attention fusion (MulT, Tsai et al. 2019): every field's tokens attend to every other field's.

Each field becomes a sequence [summary; tokens]: its pooled vector as a first "summary" token, then
its encoder tokens, all projected to output_dim and tagged with a learned field embedding. The
summary token gives every present field at least one valid token, even when its encoder masks all
of its tokens. For every ordered pair (target t, source s) a stack of `layers` pre-LayerNorm
cross-modal blocks lets t's sequence (queries) attend to s's sequence (keys/values) under s's
key-padding mask; the two sequences need not be aligned nor of equal length. As in MulT the keys
and values stay s's projected input in every layer while the queries are refined.

Per sample, a target averages what it learned from each PRESENT source (its own projected sequence
when no source is present) and masked-mean-pools that over its own valid tokens. fused =
Linear(LayerNorm(mean over the present targets)). Absent fields and padding are zeroed at the input
and absent pairs are discarded with torch.where, so neither the output nor its gradient depends on
what they hold. weights [B, M] are each field's share of that mean: 1/#present for present fields,
0 for absent ones (all zero when nothing is present).

There is one block stack per ordered pair, M·(M−1) in all, so the cost grows quadratically with the
number of fields: `max_pairs` caps it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import torch
from torch import Tensor, nn

from plait.errors import ConfigError
from plait.fusion.base import check_fusion_args, check_heads, check_positive, gather_present, masked_attention
from plait.modalities.base import masked_mean
from plait.types import EncoderOutput, FusionOutput

_NAME = "cross_attention fusion"


class _CrossBlock(nn.Module):
    """Pre-LayerNorm multi-head cross-attention (target queries, source keys/values) + MLP."""

    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.heads = heads
        self.norm_q = nn.LayerNorm(dim)
        self.norm_kv = nn.LayerNorm(dim)
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * dim)
        self.out = nn.Linear(dim, dim)
        self.norm_mlp = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(
            nn.Linear(dim, 2 * dim), nn.GELU(), nn.Dropout(dropout), nn.Linear(2 * dim, dim)
        )
        self.drop = nn.Dropout(dropout)

    def forward(self, x: Tensor, source: Tensor, key_valid: Tensor) -> Tensor:
        """x [B, T, D]; source [B, S, D]; key_valid BoolTensor[B, S] with at least one True per row.
        Returns x [B, T, D]."""
        b, t, d = x.shape
        s, dh = source.shape[1], d // self.heads
        q = self.q(self.norm_q(x)).reshape(b, t, self.heads, dh).transpose(1, 2)  # (B, H, T, Dh)
        kv = self.kv(self.norm_kv(source)).reshape(b, s, 2, self.heads, dh)  # (B, S, 2, H, Dh)
        k, v = kv.permute(2, 0, 3, 1, 4)  # 2 × (B, H, S, Dh)
        ctx, _ = masked_attention(q, k, v, key_valid)  # (B, H, T, Dh)
        ctx = ctx.transpose(1, 2).reshape(b, t, d)  # (B, H, T, Dh) -> (B, T, D)
        x = x + self.drop(self.out(ctx))
        return x + self.drop(self.mlp(self.norm_mlp(x)))


class _PairStack(nn.Module):
    """The `layers` blocks of one (target, source) pair: target queries are refined layer by layer,
    keys/values stay the source's projected sequence."""

    def __init__(self, dim: int, heads: int, layers: int, dropout: float) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(_CrossBlock(dim, heads, dropout) for _ in range(layers))

    def forward(self, target: Tensor, source: Tensor, source_valid: Tensor) -> Tensor:
        """target [B, T, D] attends to source [B, S, D] (validity BoolTensor[B, S]) → [B, T, D]."""
        # A row with every key masked (source absent) gives NaN attention: unmask its summary token,
        # which is then a constant (zero input); the caller discards that row's result.
        key_valid = torch.cat([torch.ones_like(source_valid[:, :1]), source_valid[:, 1:]], dim=1)  # (B, S)
        h = target
        for block in self.blocks:
            h = block(h, source, key_valid)
        return h


class CrossAttentionFusion(nn.Module):
    """`CrossAttentionFusion(field_to_dim={"audio": 64, "note": 64}, output_dim=64, heads=4, layers=1)`."""

    decision_level: ClassVar[bool] = False

    def __init__(
        self,
        field_to_dim: Mapping[str, int],
        output_dim: int,
        *,
        heads: int = 4,
        layers: int = 1,
        dropout: float = 0.1,
        max_pairs: int = 20,
    ) -> None:
        super().__init__()
        check_fusion_args(_NAME, field_to_dim, output_dim, dropout)
        check_positive(_NAME, "heads", heads)
        check_positive(_NAME, "layers", layers)
        check_positive(_NAME, "max_pairs", max_pairs)
        check_heads(_NAME, output_dim, heads)
        m = len(field_to_dim)
        if m * (m - 1) > max_pairs:
            raise ConfigError(
                f"{_NAME}: {m} fields give {m * (m - 1)} ordered cross-modal pairs (M·(M−1)), more than "
                f"max_pairs={max_pairs}; each pair has its own transformer, so the cost grows "
                "quadratically. Use fusion 'attention' or 'set' for this many fields, or raise max_pairs"
            )
        self.field_order: tuple[str, ...] = tuple(field_to_dim)
        self.output_dim = output_dim
        self.proj = nn.ModuleList(nn.Linear(field_to_dim[f], output_dim) for f in self.field_order)
        self.field_embedding = nn.Parameter(0.02 * torch.randn(m, output_dim))
        self.summary_embedding = nn.Parameter(0.02 * torch.randn(output_dim))
        # pairs[k] for the k-th (target, source) in _pairs(): row-major over targets, sources ≠ target
        self.pairs = nn.ModuleList(_PairStack(output_dim, heads, layers, dropout) for _ in self._pairs())
        self.norm = nn.LayerNorm(output_dim)
        self.head = nn.Linear(output_dim, output_dim)

    def _pairs(self) -> list[tuple[int, int]]:
        m = len(self.field_order)
        return [(t, s) for t in range(m) for s in range(m) if s != t]

    def forward(self, inputs: Mapping[str, EncoderOutput], present: Mapping[str, Tensor]) -> FusionOutput:
        pooled, mask = gather_present(inputs, present, self.field_order)  # mask (B, M)
        seqs, valid = [], []
        for i, f in enumerate(self.field_order):
            x, v = self._sequence(i, inputs[f], pooled[i], mask[:, i])
            seqs.append(x)
            valid.append(v)
        learned: list[list[tuple[int, Tensor]]] = [[] for _ in self.field_order]  # per target: (source, x)
        for (t, s), pair in zip(self._pairs(), self.pairs, strict=True):
            learned[t].append((s, pair(seqs[t], seqs[s], valid[s])))
        targets = [
            masked_mean(self._combine(seqs[t], learned[t], mask), valid[t]) for t in range(len(seqs))
        ]  # M × (B, D)
        share = mask.to(seqs[0].dtype) / mask.sum(dim=1, keepdim=True).clamp_min(1)  # (B, M)
        mean = (share.unsqueeze(-1) * torch.stack(targets, dim=1)).sum(dim=1)  # (B, M, D) -> (B, D)
        return FusionOutput(fused=self.head(self.norm(mean)), weights=share)

    def _sequence(self, i: int, enc: EncoderOutput, pooled: Tensor, present: Tensor) -> tuple[Tensor, Tensor]:
        """Field i as [summary; tokens] projected to (B, 1 + L, D) and its validity BoolTensor[B, 1 + L]
        (False everywhere for absent samples, False on padding)."""
        tokens = enc.tokens
        real = torch.ones(tokens.shape[:2], dtype=torch.bool, device=tokens.device)
        if enc.token_mask is not None:
            real = enc.token_mask.to(torch.bool)
        valid = torch.cat([present.unsqueeze(1), real & present.unsqueeze(1)], dim=1)  # (B, 1 + L)
        # exact zeros (not a product) so the output and gradient ignore absent samples and padding
        tokens = torch.where(valid[:, 1:, None], tokens, torch.zeros_like(tokens))
        summary = self.proj[i](pooled) + self.summary_embedding  # (B, D_f) -> (B, D)
        x = torch.cat([summary.unsqueeze(1), self.proj[i](tokens)], dim=1)  # (B, 1 + L, D)
        return x + self.field_embedding[i], valid

    @staticmethod
    def _combine(own: Tensor, learned: list[tuple[int, Tensor]], mask: Tensor) -> Tensor:
        """Mean over present sources of what target learned from each, own [B, T, D] where none is."""
        total = torch.zeros_like(own)
        count = torch.zeros(own.shape[0], 1, 1, dtype=own.dtype, device=own.device)  # (B, 1, 1)
        for s, h in learned:
            src = mask[:, s, None, None]  # (B, 1, 1)
            total = total + torch.where(src, h, torch.zeros_like(h))
            count = count + src.to(own.dtype)
        return torch.where(count > 0, total / count.clamp_min(1), own)  # (B, T, D)
