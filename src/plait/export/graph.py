"""The model as one graph of plain tensors: each field's collated values (and step mask) plus its
presence mask in, the head's raw output out — what `torch.onnx.export` traces.

`PresenceGraph(model, specs)` runs `model.decide(encoders(...), present)`, the same two steps as
`FusionModel.forward`, on positional tensors named by `GraphInputs`. Any subset of fields runs:
a field marked absent is zero-filled by its collate and ignored by the fusion. Besides `output`
(B, K) and the fusion's `weights` (B, M) when it has them, the graph returns each field's pooled
encoding (B, D): the serving engine checks those for non-finite values per field, as it does with
torch encoders.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from plait.modalities.base import Modality
from plait.models.fusion_model import FusionModel

# Field names cannot contain '.', so "<field>.<part>" never collides.
VALUES, MASK, PRESENT, POOLED = "values", "mask", "present", "pooled"
OUTPUT, WEIGHTS = "output", "weights"
BATCH_AXIS = "batch"


@dataclass(frozen=True)
class FieldInput:
    """One field's inputs to the graph: values (B, ...) of `dtype`; a step mask (B, L) when the
    modality pads sequences; `dynamic_axes` of values beyond the batch axis (padded lengths)."""

    field: str
    dtype: str  # torch dtype name: float32, int64
    shape: tuple[int, ...]  # of one absent row's collate, batch axis included (1, ...)
    has_mask: bool
    values_axes: tuple[int, ...]  # axes of values that vary from batch to batch, beyond axis 0
    mask_axes: tuple[int, ...]

    @property
    def names(self) -> tuple[str, ...]:
        """The graph input names of this field, in the order the graph takes them."""
        parts = (VALUES, MASK, PRESENT) if self.has_mask else (VALUES, PRESENT)
        return tuple(f"{self.field}.{p}" for p in parts)


def field_inputs(modalities: Mapping[str, Modality]) -> tuple[FieldInput, ...]:
    """Each field's graph inputs, asked of its modality: the collate of one absent row gives the
    dtype and the shape; an axis that changes when the padded length does (a step mask's axis 1,
    and the values' axis of that length) is dynamic."""
    return tuple(_field_input(name, m) for name, m in modalities.items())


def _field_input(name: str, modality: Modality) -> FieldInput:
    values, mask = modality.collate([None])  # (1, ...), (1, L) or None
    if mask is None:
        return FieldInput(name, _dtype_name(values), tuple(values.shape), False, (), ())
    # A padded axis has length 1 for an absent row (collate pads to the longest item, at least 1);
    # a tabular mask covers its columns (fixed): ask a second collate whether the length moves.
    longer, longer_mask = _collate_longer(modality, values)
    if longer is None or longer_mask is None:
        return FieldInput(name, _dtype_name(values), tuple(values.shape), True, (), ())
    values_axes = tuple(i for i in range(1, values.dim()) if longer.shape[i] != values.shape[i])
    mask_axes = tuple(i for i in range(1, mask.dim()) if longer_mask.shape[i] != mask.shape[i])
    return FieldInput(name, _dtype_name(values), tuple(values.shape), True, values_axes, mask_axes)


def _collate_longer(modality: Modality, values: Tensor) -> tuple[Tensor | None, Tensor | None]:
    """The collate of one item twice as long as an absent row along every axis of length 1 (an
    item is a row of values without its batch axis); (None, None) when the modality refuses it."""
    item_shape = [2 if size == 1 else size for size in values.shape[1:]]
    try:
        return modality.collate([torch.zeros(item_shape, dtype=values.dtype)])
    except (RuntimeError, ValueError, IndexError):  # the item's shape is fixed: no axis varies
        return None, None


def _dtype_name(x: Tensor) -> str:
    return str(x.dtype).removeprefix("torch.")


class PresenceGraph(nn.Module):
    """forward(*tensors) in `FieldInput.names` order, field by field → (output (B, K),
    [weights (B, M)], pooled (B, D) per field)."""

    def __init__(self, model: FusionModel, inputs: Sequence[FieldInput], *, with_weights: bool) -> None:
        super().__init__()
        self.model = model
        self.inputs = tuple(inputs)
        self.with_weights = with_weights

    def forward(self, *tensors: Tensor) -> tuple[Tensor, ...]:
        encoded = {}
        present: dict[str, Tensor] = {}
        i = 0
        for spec in self.inputs:
            values = tensors[i]
            mask = tensors[i + 1] if spec.has_mask else None
            i += 3 if spec.has_mask else 2
            present[spec.field] = tensors[i - 1]  # BoolTensor[B]
            encoded[spec.field] = self.model.encoders[spec.field](values, present[spec.field], mask)
        out = self.model.decide(encoded, present)  # output (B, K), weights (B, M) or None
        pooled = tuple(encoded[spec.field].pooled for spec in self.inputs)  # (B, D) each
        if self.with_weights:
            if out.weights is None:
                raise ValueError("PresenceGraph(with_weights=True): the fusion returned no weights")
            return (out.output, out.weights, *pooled)
        return (out.output, *pooled)

    def output_names(self) -> tuple[str, ...]:
        head = (OUTPUT, WEIGHTS) if self.with_weights else (OUTPUT,)
        return (*head, *(f"{spec.field}.{POOLED}" for spec in self.inputs))

    def input_names(self) -> tuple[str, ...]:
        return tuple(name for spec in self.inputs for name in spec.names)


def example_tensors(modalities: Mapping[str, Modality], inputs: Sequence[FieldInput]) -> tuple[Tensor, ...]:
    """Tensors to trace the graph with, in `PresenceGraph` order: three rows (the middle one absent)
    whose padded axes are 5 long. Sizes of 0 or 1 would be taken for constants by torch.export, so
    neither the batch nor a padded length is 1."""
    out: list[Tensor] = []
    for spec in inputs:
        modality = modalities[spec.field]
        item_shape = [5 if axis + 1 in spec.values_axes else n for axis, n in enumerate(spec.shape[1:])]
        item = torch.ones(item_shape, dtype=getattr(torch, spec.dtype))  # a real token / reading
        values, mask = modality.collate([item, None, item])  # (3, ...), (3, L) or None
        out.append(values)
        if mask is not None:
            out.append(mask)
        out.append(torch.tensor([True, False, True]))  # (3,)
    return tuple(out)


def dynamic_shapes(inputs: Sequence[FieldInput]) -> tuple[tuple[dict[int, object], ...]]:
    """torch.export's dynamic shapes for `PresenceGraph.forward(*tensors)`: the batch axis of every
    input and each padded axis, left for the exporter to relate (`Dim.AUTO`)."""
    auto = torch.export.Dim.AUTO
    shapes: list[dict[int, object]] = []
    for spec in inputs:
        shapes.append({0: auto, **{axis: auto for axis in spec.values_axes}})
        if spec.has_mask:
            shapes.append({0: auto, **{axis: auto for axis in spec.mask_axes}})
        shapes.append({0: auto})
    return (tuple(shapes),)  # one entry: the *tensors tuple
