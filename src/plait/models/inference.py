"""Run a model over a TensorTable in eval mode, optionally under a different presence mask.

Outputs come back as one `ModelOutput` per run, in float32: output (N, K), weights (N, M).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from plait.data.dataset import TensorTable
from plait.models.fusion_model import FusionModel
from plait.models.imputer import impute_encoded
from plait.modes import evaluating
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
    idx = torch.arange(len(table)) if indices is None else torch.as_tensor(indices, dtype=torch.long)
    parts: list[ModelOutput] = []
    with evaluating(model):
        for start in range(0, len(idx), batch_size):
            batch = table.batch(idx[start : start + batch_size])
            if edit_present is not None:
                batch = batch.with_present(edit_present(batch.present))
            parts.append(model(batch).float())
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
    idx = torch.as_tensor(indices, dtype=torch.long)
    parts: dict[str, list[ModelOutput]] = {name: [] for name in subsets}
    with evaluating(model):
        for start in range(0, len(idx), batch_size):
            batch = table.batch(idx[start : start + batch_size])
            encoded = model.encode(batch)
            for name, keep in subsets.items():
                present = batch.present if keep is None else only_fields(keep)(batch.present)
                parts[name].append(model.decide(encoded, present).float())
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


@torch.inference_mode()
def run_embeddings(
    model: FusionModel,
    table: TensorTable,
    indices: Sequence[int] | Tensor | None = None,
    *,
    fields: Sequence[str] | None = None,
    batch_size: int = 512,
) -> dict[str, Tensor]:
    """Fields of the model's shared space (`fields`, default all of them) for rows of `table`
    (which needs only those fields): field -> (N, dim) unit vectors in float32. Only those fields'
    encoders run. Rows where a field is absent are there too: read them with `table.present`."""
    space = model.space
    if space is None:
        raise ValueError("run_embeddings: the model has no shared space")
    chosen = tuple(fields) if fields is not None else space.fields
    idx = torch.arange(len(table)) if indices is None else torch.as_tensor(indices, dtype=torch.long)
    parts: dict[str, list[Tensor]] = {f: [] for f in chosen}
    with evaluating(model):
        for start in range(0, len(idx), batch_size):
            batch = table.batch(idx[start : start + batch_size])
            for f in chosen:
                out = model.encoders[f](batch.values[f], batch.present[f], batch.masks.get(f))
                parts[f].append(space.project(f, out.pooled).float())  # (B, D_f) -> (B, dim)
    return {f: torch.cat(chunks) for f, chunks in parts.items()}


@dataclass(frozen=True)
class ImputedRun:
    """A run where each missing field of the shared space was imputed from the fields present
    (plait.models.imputer). observed[f]: BoolTensor[N], the field's own value was used;
    imputed[f]: BoolTensor[N], it was synthesised; embedded[f]: (N, dim) the imputed shared-space
    embeddings (zero rows where not imputed)."""

    out: ModelOutput
    observed: dict[str, Tensor]
    imputed: dict[str, Tensor]
    embedded: dict[str, Tensor]


@torch.inference_mode()
def run_imputed(
    model: FusionModel,
    table: TensorTable,
    indices: Sequence[int] | Tensor | None = None,
    subsets: Mapping[str, Sequence[str] | None] | None = None,
    *,
    batch_size: int = 512,
) -> dict[str, ImputedRun]:
    """Like `run_model_subsets` (each batch encoded once; None = every present field), with the
    fields each subset leaves missing imputed where the model has an imputer and the row has
    another field of the space."""
    if model.imputer is None or model.space is None:
        raise ValueError("run_imputed: the model has no embedding imputer (space.impute: true)")
    plan = subsets if subsets is not None else {"all": None}
    idx = torch.arange(len(table)) if indices is None else torch.as_tensor(indices, dtype=torch.long)
    parts: dict[str, list[ImputedRun]] = {name: [] for name in plan}
    with evaluating(model):
        for start in range(0, len(idx), batch_size):
            batch = table.batch(idx[start : start + batch_size])
            encoded = model.encode(batch)
            space_z = model.embed(encoded)  # field -> (B, dim)
            for name, keep in plan.items():
                present = batch.present if keep is None else only_fields(keep)(batch.present)
                filled = impute_encoded(model.imputer, space_z, encoded, present)
                out = model.decide(filled.encoded, filled.present).float()
                observed = {f: present[f].bool() for f in present}
                parts[name].append(ImputedRun(out, observed, filled.imputed, filled.embedded))
    return {name: _concat_imputed(runs) for name, runs in parts.items()}


def _concat_imputed(runs: Sequence[ImputedRun]) -> ImputedRun:
    def cat(key: str) -> dict[str, Tensor]:
        first: dict[str, Tensor] = getattr(runs[0], key)
        return {f: torch.cat([getattr(r, key)[f] for r in runs]) for f in first}

    return ImputedRun(
        out=_concat([r.out for r in runs]),
        observed=cat("observed"),
        imputed=cat("imputed"),
        embedded=cat("embedded"),
    )
