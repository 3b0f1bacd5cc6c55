"""Checks on the data the trainer hands to a fusion's optional hooks (`prepare`, `fit_held_out`;
see the OPTIONAL HOOKS comment in plait.fusion.base)."""

from __future__ import annotations

from collections.abc import Mapping

from torch import Tensor

from plait.errors import DataError


def check_hook_inputs(
    fusion: str,
    hook: str,
    field_to_dim: Mapping[str, int],
    pooled: Mapping[str, Tensor],
    present: Mapping[str, Tensor],
) -> int:
    """Check pooled[f] FloatTensor[N, D_f] and present[f] BoolTensor[N] for every field; return N."""
    missing = [f for f in field_to_dim if f not in pooled or f not in present]
    if missing:
        raise DataError(
            f"{fusion}.{hook}: no pooled outputs or presence mask for fields {missing}; expected every field "
            f"of {list(field_to_dim)}, got pooled for {list(pooled)} and present for {list(present)}"
        )
    rows: set[int] = set()
    for f, dim in field_to_dim.items():
        p, m = pooled[f], present[f]
        if p.dim() != 2 or p.shape[1] != dim:
            raise DataError(
                f"{fusion}.{hook}: pooled['{f}'] has shape {tuple(p.shape)}; expected [N, {dim}] "
                "(the encoder's pooled output for N rows)"
            )
        if tuple(m.shape) != (p.shape[0],):
            raise DataError(
                f"{fusion}.{hook}: present['{f}'] has shape {tuple(m.shape)}; expected [{p.shape[0]}] "
                "(one flag per row of pooled)"
            )
        rows.add(p.shape[0])
    if len(rows) != 1:
        counts = {f: pooled[f].shape[0] for f in field_to_dim}
        raise DataError(
            f"{fusion}.{hook}: fields have different numbers of rows {counts}; pass the same rows"
        )
    return rows.pop()
