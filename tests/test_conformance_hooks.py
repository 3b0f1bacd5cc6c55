"""check_fusion runs a fusion's optional hooks (prepare, fit_held_out) and catches broken ones."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import pytest
import torch
from torch import Tensor, nn

from plait.fusion.base import gather_present, softmax_over_present
from plait.testing.conformance import check_fusion
from plait.types import EncoderOutput, FusionOutput


class _Mean(nn.Module):
    """A correct fusion: mean of the present fields' projections, times a buffer `scale`."""

    decision_level: ClassVar[bool] = False
    scale: Tensor

    def __init__(self, field_to_dim: Mapping[str, int], output_dim: int) -> None:
        super().__init__()
        self.field_order = tuple(field_to_dim)
        self.output_dim = output_dim
        self.proj = nn.ModuleList(nn.Linear(d, output_dim) for d in field_to_dim.values())
        self.register_buffer("scale", torch.ones(()))

    def forward(self, inputs: Mapping[str, EncoderOutput], present: Mapping[str, Tensor]) -> FusionOutput:
        pooled, mask = gather_present(inputs, present, self.field_order)
        parts = torch.stack([p(x) for p, x in zip(self.proj, pooled, strict=True)], dim=1)  # (B, M, D)
        weights = softmax_over_present(torch.zeros(mask.shape), mask)
        return FusionOutput(fused=self.scale * (weights.unsqueeze(-1) * parts).sum(dim=1), weights=weights)


class _Recording(_Mean):
    calls: ClassVar[list[tuple[str, Any]]] = []

    def prepare(self, pooled: Mapping[str, Tensor], present: Mapping[str, Tensor]) -> None:
        rows = {f: (tuple(p.shape), present[f].dtype) for f, p in pooled.items()}
        self.calls.append(("prepare", rows))

    def fit_held_out(
        self, pooled: Mapping[str, Tensor], present: Mapping[str, Tensor], target: Tensor, task_type: str
    ) -> None:
        self.calls.append(("fit_held_out", (target.dtype, task_type)))


def test_check_fusion_calls_prepare_then_fit_held_out_with_fitting_data() -> None:
    _Recording.calls.clear()
    check_fusion(_Recording, output_dim=4)
    hooks = [name for name, _ in _Recording.calls]
    assert hooks == ["prepare", "prepare", "fit_held_out", "fit_held_out"] * 3  # twice, for each layout
    prepare_rows = _Recording.calls[-4][1]
    assert prepare_rows == {
        "a": ((40, 5), torch.bool),
        "b": ((40, 7), torch.bool),
        "c": ((40, 3), torch.bool),
    }
    assert _Recording.calls[-1][1] == (torch.int64, "classification")
    _Recording.calls.clear()
    check_fusion(_Recording, output_dim=1)
    assert _Recording.calls[-1][1] == (torch.float32, "regression")


class _MutatesInputs(_Mean):
    def prepare(self, pooled: Mapping[str, Tensor], present: Mapping[str, Tensor]) -> None:
        for p in pooled.values():
            p.sub_(p.mean(dim=0))  # centres in place


class _RandomFit(_Mean):
    def fit_held_out(
        self, pooled: Mapping[str, Tensor], present: Mapping[str, Tensor], target: Tensor, task_type: str
    ) -> None:
        self.scale.fill_(1 + float(torch.rand(())))


class _LeaksAfterPrepare(_Mean):
    """Correct until prepare runs; then it reads absent fields' raw inputs."""

    def prepare(self, pooled: Mapping[str, Tensor], present: Mapping[str, Tensor]) -> None:
        self.scale.fill_(2.0)

    def forward(self, inputs: Mapping[str, EncoderOutput], present: Mapping[str, Tensor]) -> FusionOutput:
        out = super().forward(inputs, present)
        if float(self.scale) == 2.0:
            leak = sum(p(inputs[f].pooled) for p, f in zip(self.proj, self.field_order, strict=True))
            return FusionOutput(fused=out.fused + leak, weights=out.weights)
        return out


class _StateOutsideBuffers(_Mean):
    def __init__(self, field_to_dim: Mapping[str, int], output_dim: int) -> None:
        super().__init__(field_to_dim, output_dim)
        self.shift = 0.0

    def prepare(self, pooled: Mapping[str, Tensor], present: Mapping[str, Tensor]) -> None:
        self.shift = 1.5  # a plain attribute: lost by state_dict

    def forward(self, inputs: Mapping[str, EncoderOutput], present: Mapping[str, Tensor]) -> FusionOutput:
        out = super().forward(inputs, present)
        return FusionOutput(fused=out.fused + self.shift, weights=out.weights)


class _NoPerFieldOutputs(_Mean):
    trains_fields_alone: ClassVar[bool] = True


@pytest.mark.parametrize(
    ("cls", "message"),
    [
        (_MutatesInputs, "prepare modified the tensors it was given"),
        (_RandomFit, "calling fit_held_out twice on the same data left different state"),
        (_LeaksAfterPrepare, "after prepare: .*absent"),
        (_StateOutsideBuffers, "keep all learned state in parameters or buffers"),
        (_NoPerFieldOutputs, "no per_field_outputs"),
    ],
)
def test_check_fusion_catches_broken_hooks(cls: type, message: str) -> None:
    with pytest.raises(AssertionError, match=message):
        check_fusion(cls)


def test_check_fusion_accepts_a_fusion_without_hooks() -> None:
    check_fusion(_Mean)
