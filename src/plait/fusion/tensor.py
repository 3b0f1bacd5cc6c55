"""Tensor fusion (Tensor Fusion Network, Zadeh et al. 2017): the outer product of [h_f; 1] vectors.

Each field's pooled vector is projected to `dim` and extended with a constant 1, z_f = [h_f; 1].
The outer product z_1 ⊗ z_2 ⊗ … ⊗ z_M holds every unimodal term, every pairwise term and so on up
to the M-way term; a linear layer maps its (dim+1)^M entries to output_dim.

An absent field gets z_f = [0, …, 0; 1]: the product then keeps the other fields' unimodal and
cross terms exactly and every term involving the absent field is zero, so its input cannot
influence the output. A sample with no field present keeps only the constant term (a learned
prior). The size grows exponentially with the field count, hence the cap below; for more fields
use `low_rank_tensor`. There are no per-field weights.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import torch
from torch import Tensor, nn

from plait.errors import ConfigError
from plait.fusion.base import check_fusion_args, check_positive, gather_present
from plait.types import EncoderOutput, FusionOutput

# Cap on (dim+1)^M, the width of the flattened product. The output layer holds this many weights
# per output unit (2^20 x 64 outputs is already 67M parameters) and each sample's product takes
# 4 MiB at the cap, so beyond it the fusion is not practical on a CPU.
MAX_PRODUCT_SIZE = 2**20


def _largest_dim(n_fields: int, cap: int) -> int:
    """The largest dim with (dim+1)^n_fields <= cap (0 when even dim=1 is over it)."""
    dim = 0
    while (dim + 2) ** n_fields <= cap:
        dim += 1
    return dim


def check_product_size(n_fields: int, dim: int, cap: int = MAX_PRODUCT_SIZE) -> int:
    """(dim+1)^n_fields, or ConfigError when it exceeds `cap`."""
    size = (dim + 1) ** n_fields
    if size > cap:
        largest = _largest_dim(n_fields, cap)
        smaller = f"a smaller fusion option 'dim' (at most {largest} for {n_fields} fields)"
        if largest < 1:
            smaller = f"fewer fields (even dim=1 gives 2^{n_fields} features)"
        raise ConfigError(
            f"tensor fusion: {n_fields} fields with dim={dim} give an outer product of "
            f"{dim + 1}^{n_fields} = {size:,} features, over the cap of {cap:,}; "
            f"use fusion 'low_rank_tensor' (its size grows linearly with the field count) or {smaller}"
        )
    return size


def with_constant(h: Tensor) -> Tensor:
    """[h; 1]: (B, D) -> (B, D + 1)."""
    return torch.cat([h, torch.ones_like(h[:, :1])], dim=1)


class TensorFusion(nn.Module):
    """`TensorFusion(field_to_dim={"photo": 64, "note": 32}, output_dim=64, dim=16, dropout=0.1)`."""

    decision_level: ClassVar[bool] = False

    def __init__(
        self, field_to_dim: Mapping[str, int], output_dim: int, *, dim: int = 8, dropout: float = 0.1
    ) -> None:
        super().__init__()
        check_fusion_args("tensor fusion", field_to_dim, output_dim, dropout)
        check_positive("tensor fusion", "dim", dim)
        self.field_order: tuple[str, ...] = tuple(field_to_dim)
        self.output_dim = output_dim
        self.product_size = check_product_size(len(self.field_order), dim)
        self.proj = nn.ModuleList(nn.Linear(field_to_dim[f], dim) for f in self.field_order)
        self.out = nn.Sequential(nn.Linear(self.product_size, output_dim), nn.GELU(), nn.Dropout(dropout))

    def field_vectors(self, pooled: list[Tensor], mask: Tensor) -> list[Tensor]:
        """z_f = [proj(h_f); 1] for present samples and [0, …, 0; 1] for absent ones, each (B, dim+1)."""
        z = []
        for i, (proj, p) in enumerate(zip(self.proj, pooled, strict=True)):
            h = proj(p)  # (B, D_f) -> (B, dim)
            # The projection's bias would make a zero input nonzero: zero absent rows after it.
            h = torch.where(mask[:, i : i + 1], h, torch.zeros_like(h))
            z.append(with_constant(h))  # (B, dim) -> (B, dim+1)
        return z

    def fuse_vectors(self, z: list[Tensor]) -> Tensor:
        """Outer product of the z_f, flattened, then the output layer: -> (B, output_dim)."""
        product = z[0]  # (B, dim+1)
        for zf in z[1:]:
            # (B, K, 1) * (B, 1, dim+1) -> (B, K, dim+1) -> (B, K * (dim+1))
            product = (product.unsqueeze(2) * zf.unsqueeze(1)).flatten(1)
        return self.out(product)  # (B, (dim+1)^M) -> (B, output_dim)

    def forward(self, inputs: Mapping[str, EncoderOutput], present: Mapping[str, Tensor]) -> FusionOutput:
        pooled, mask = gather_present(inputs, present, self.field_order)
        fused = self.fuse_vectors(self.field_vectors(pooled, mask))
        return FusionOutput(fused=fused, weights=None)
