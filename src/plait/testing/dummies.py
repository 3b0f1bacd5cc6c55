"""Public test doubles: a trivial encoder and random encoder outputs / batches, for testing
fusions, models and plug-ins without real data (in the spirit of Lightning's BoringModel)."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn

from plait.modalities.base import zero_absent
from plait.types import Batch, EncoderOutput


class DummyEncoder(nn.Module):
    """Linear on x [B, input_dim] → one token [B, 1, output_dim]; absent samples give zeros."""

    def __init__(self, input_dim: int, output_dim: int) -> None:
        super().__init__()
        self.output_dim = output_dim
        self.linear = nn.Linear(input_dim, output_dim)

    def forward(self, x: Tensor, present: Tensor, mask: Tensor | None = None) -> EncoderOutput:
        pooled = zero_absent(self.linear(x.float()), present)  # (B, input_dim) -> (B, D)
        return EncoderOutput(tokens=pooled.unsqueeze(1), pooled=pooled)  # tokens (B, 1, D)


def random_present(
    names: list[str] | tuple[str, ...],
    batch_size: int,
    present_prob: float = 0.7,
    generator: torch.Generator | None = None,
) -> dict[str, Tensor]:
    """Independent Bernoulli(present_prob) presence masks BoolTensor[B] per field."""
    return {f: torch.rand(batch_size, generator=generator) < present_prob for f in names}


def random_encoder_outputs(
    field_to_dim: Mapping[str, int],
    batch_size: int,
    tokens: int = 3,
    present_prob: float = 0.7,
    generator: torch.Generator | None = None,
) -> tuple[dict[str, EncoderOutput], dict[str, Tensor]]:
    """Random encoder outputs honouring the contract (pooled = token mean, zero where absent)
    and the presence masks they were made with."""
    present = random_present(tuple(field_to_dim), batch_size, present_prob, generator)
    outputs = {}
    for f, dim in field_to_dim.items():
        toks = torch.randn(batch_size, tokens, dim, generator=generator)
        toks = toks * present[f].float()[:, None, None]  # absent samples: zero tokens
        outputs[f] = EncoderOutput(tokens=toks, pooled=toks.mean(dim=1))
    return outputs, present


def tiny_batch(
    field_to_input_dim: Mapping[str, int],
    batch_size: int = 4,
    num_classes: int | None = 3,
    present_prob: float = 0.7,
    generator: torch.Generator | None = None,
) -> Batch:
    """A batch of flat float fields [B, input_dim] (zero-filled where absent) for DummyEncoders,
    with class targets (num_classes) or, when num_classes is None, float regression targets."""
    present = random_present(tuple(field_to_input_dim), batch_size, present_prob, generator)
    values = {
        f: torch.randn(batch_size, dim, generator=generator) * present[f].float().unsqueeze(1)
        for f, dim in field_to_input_dim.items()
    }
    if num_classes is None:
        target = torch.randn(batch_size, generator=generator)
    else:
        target = torch.randint(0, num_classes, (batch_size,), generator=generator)
    return Batch(values=values, present=present, target=target)
