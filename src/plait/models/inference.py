"""Run a model over a TensorTable in eval mode, optionally under a different presence mask."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from plait.data.dataset import TensorTable
from plait.models.fusion_model import FusionModel
from plait.types import ModelOutput

PresenceEdit = Callable[[Mapping[str, Tensor]], Mapping[str, Tensor]]


@dataclass(frozen=True)
class Outputs:
    output: Tensor  # (N, K)
    weights: Tensor | None  # (N, M)
    field_order: tuple[str, ...]


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
) -> Outputs:
    was_training = model.training
    model.eval()
    idx = torch.arange(len(table)) if indices is None else torch.as_tensor(indices, dtype=torch.long)
    outputs: list[Tensor] = []
    weights: list[Tensor] = []
    order: tuple[str, ...] = ()
    try:
        for start in range(0, len(idx), batch_size):
            batch = table.batch(idx[start : start + batch_size])
            if edit_present is not None:
                batch = batch.with_present(edit_present(batch.present))
            out: ModelOutput = model(batch)
            outputs.append(out.output.float())
            order = out.field_order
            if out.weights is not None:
                weights.append(out.weights.float())
    finally:
        model.train(was_training)
    if not outputs:
        raise ValueError("run_model: no rows to run")
    return Outputs(
        output=torch.cat(outputs),
        weights=torch.cat(weights) if weights else None,
        field_order=order,
    )


@torch.inference_mode()
def run_model_subsets(
    model: FusionModel,
    table: TensorTable,
    indices: Sequence[int] | Tensor,
    subsets: Mapping[str, Sequence[str] | None],
    *,
    batch_size: int = 512,
) -> dict[str, Outputs]:
    """Encode each batch ONCE, then fuse under each subset of fields (None: every present field).

    Exact, not an approximation: every fusion ignores an absent field's values (the conformance
    checks pin this), so marking a field absent after encoding equals encoding without it.
    """
    was_training = model.training
    model.eval()
    idx = torch.as_tensor(indices, dtype=torch.long)
    outputs: dict[str, list[Tensor]] = {name: [] for name in subsets}
    weights: dict[str, list[Tensor]] = {name: [] for name in subsets}
    order = tuple(model.encoders)
    try:
        for start in range(0, len(idx), batch_size):
            batch = table.batch(idx[start : start + batch_size])
            encoded = model.encode(batch)
            for name, keep in subsets.items():
                present = batch.present if keep is None else only_fields(keep)(batch.present)
                fused = model.fuse(encoded, present)
                outputs[name].append(model.head(fused.fused).float())  # (B, D) -> (B, K)
                if fused.weights is not None:
                    weights[name].append(fused.weights.float())
    finally:
        model.train(was_training)
    return {
        name: Outputs(
            output=torch.cat(outputs[name]),
            weights=torch.cat(weights[name]) if weights[name] else None,
            field_order=order,
        )
        for name in subsets
    }
