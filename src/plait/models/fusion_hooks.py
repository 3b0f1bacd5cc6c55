"""Call a fusion's optional data hooks (see plait.fusion.base): `prepare` before it trains,
`fit_held_out` after training. Plain torch: the trainer calls these, and so can a user's own loop."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from plait.data.dataset import TensorTable
from plait.fusion.base import PREPARE_ROWS
from plait.models.fusion_model import FusionModel
from plait.modes import evaluating
from plait.task import Task


@torch.no_grad()
def pooled_outputs(
    model: FusionModel, table: TensorTable, rows: Sequence[int] | np.ndarray, batch_size: int = 256
) -> tuple[dict[str, Tensor], dict[str, Tensor], Tensor | None]:
    """Each field's pooled encoder output [N, D_f] and presence [N] over `rows`, in eval mode,
    and the rows' targets; all on the model's device."""
    idx = torch.as_tensor(np.asarray(rows), dtype=torch.long)
    pooled: dict[str, list[Tensor]] = {f: [] for f in model.encoders}
    present: dict[str, list[Tensor]] = {f: [] for f in model.encoders}
    device = next(model.parameters()).device
    with evaluating(model):
        for start in range(0, len(idx), batch_size):
            batch = table.batch(idx[start : start + batch_size]).to(device)
            for field, out in model.encode(batch).items():
                pooled[field].append(out.pooled.float())
                present[field].append(batch.present[field].bool())
    target = None if table.target is None else table.target[idx].to(device)
    return (
        {f: torch.cat(v) for f, v in pooled.items()},
        {f: torch.cat(v) for f, v in present.items()},
        target,
    )


def prepare_fusion(model: FusionModel, table: TensorTable, train_rows: np.ndarray, seed: int) -> bool:
    """Run `fusion.prepare` on up to PREPARE_ROWS training rows (a seeded sample). True if it ran."""
    prepare = getattr(model.fusion, "prepare", None)
    if prepare is None or len(train_rows) == 0:
        return False
    rows = np.asarray(train_rows)
    if len(rows) > PREPARE_ROWS:
        rows = np.sort(np.random.default_rng(seed).choice(rows, size=PREPARE_ROWS, replace=False))
    pooled, present, _ = pooled_outputs(model, table, rows)
    prepare(pooled, present)
    return True


def fit_fusion_held_out(model: FusionModel, table: TensorTable, rows: np.ndarray, task: Task) -> bool:
    """Run `fusion.fit_held_out` on `rows` (the validation rows). True if it ran. The hook is a
    plug-in boundary: it hears the task's type as a string (one of plait.task.TASK_TYPES)."""
    fit = getattr(model.fusion, "fit_held_out", None)
    if fit is None or len(rows) == 0 or table.target is None:
        return False
    pooled, present, target = pooled_outputs(model, table, rows)
    assert target is not None
    fit(pooled, present, target, task.type)
    return True
