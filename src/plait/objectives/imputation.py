"""The loss of the embedding imputer (plait.models.imputer) as a pure function."""

from __future__ import annotations

from torch import Tensor


def imputation_loss(
    z_hat: Tensor, z: Tensor, pooled_hat: Tensor, pooled: Tensor, rows: Tensor, pooled_var: Tensor
) -> Tensor:
    """Over `rows` (BoolTensor[B], the field present and imputed from others): 1 − cosine between
    the imputed and the real shared-space embedding (B, dim, unit rows), plus the squared error of
    the imputed pooled output (B, D), per dimension in units of that dimension's variance
    `pooled_var` (D,). Zero, still in the graph, when no row counts."""
    if not bool(rows.any()):
        return (z_hat.sum() + pooled_hat.sum()) * 0.0
    cosine = 1.0 - (z_hat[rows] * z[rows]).sum(dim=1)  # (n,)
    squared = ((pooled_hat[rows] - pooled[rows]) ** 2 / pooled_var.clamp_min(1e-6)).mean(dim=1)  # (n,)
    return (cosine + squared).mean()
