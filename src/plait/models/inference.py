"""Run a model over a TensorTable in eval mode, optionally under a different presence mask.

Outputs come back as one `ModelOutput` per run, in float32: output (N, K), weights (N, M).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import torch
from torch import Tensor, nn

from plait.data.dataset import TensorTable
from plait.models.fusion_model import FusionModel
from plait.types import ModelOutput

PresenceEdit = Callable[[Mapping[str, Tensor]], Mapping[str, Tensor]]


def only_fields(keep: Sequence[str]) -> PresenceEdit:
    """A presence edit that marks every field outside `keep` absent (ablation without retraining)."""
    kept = set(keep)

    def edit(present: Mapping[str, Tensor]) -> Mapping[str, Tensor]:
        return {f: p if f in kept else torch.zeros_like(p) for f, p in present.items()}

    return edit


@torch.inference_mode()
def run_model(
    model: nn.Module,
    table: TensorTable,
    indices: Sequence[int] | Tensor | None = None,
    *,
    batch_size: int = 512,
    edit_present: PresenceEdit | None = None,
) -> ModelOutput:
    was_training = model.training
    model.eval()
    idx = torch.arange(len(table)) if indices is None else torch.as_tensor(indices, dtype=torch.long)
    parts: list[ModelOutput] = []
    try:
        for start in range(0, len(idx), batch_size):
            batch = table.batch(idx[start : start + batch_size])
            if edit_present is not None:
                batch = batch.with_present(edit_present(batch.present))
            parts.append(model(batch).float())
    finally:
        model.train(was_training)
    return _concat(parts)


@torch.inference_mode()
def run_model_subsets(
    model: FusionModel,
    table: TensorTable,
    indices: Sequence[int] | Tensor,
    subsets: Mapping[str, Sequence[str] | None],
    *,
    batch_size: int = 512,
) -> dict[str, ModelOutput]:
    """Encode each batch ONCE, then fuse and decide under each subset of fields (None: every
    present field). Exact, not an approximation: see `FusionModel.decide`."""
    was_training = model.training
    model.eval()
    idx = torch.as_tensor(indices, dtype=torch.long)
    parts: dict[str, list[ModelOutput]] = {name: [] for name in subsets}
    try:
        for start in range(0, len(idx), batch_size):
            batch = table.batch(idx[start : start + batch_size])
            encoded = model.encode(batch)
            for name, keep in subsets.items():
                present = batch.present if keep is None else only_fields(keep)(batch.present)
                parts[name].append(model.decide(encoded, present).float())
    finally:
        model.train(was_training)
    return {name: _concat(parts[name]) for name in subsets}


def _concat(parts: Sequence[ModelOutput]) -> ModelOutput:
    """The batches of one run as one output: output (N, K), weights (N, M) or None."""
    if not parts:
        raise ValueError("run_model: no rows to run")
    weights = [p.weights for p in parts if p.weights is not None]
    return ModelOutput(
        output=torch.cat([p.output for p in parts]),
        weights=torch.cat(weights) if weights else None,
        field_order=parts[0].field_order,
    )
