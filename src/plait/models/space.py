"""The shared embedding space: one projection per field from its pooled encoder output into a
space of width `dim` where paired fields land close together, and the InfoNCE temperature.

`SharedSpace(field_to_dim={"thermal": 64, "sound": 64}, dim=128, pairs=(("thermal", "sound"),))`.
The loss is `plait.objectives.contrastive` (pure); this module holds only the learnable state.
A pretrained field's encoder is a head on frozen backbone vectors, so aligning it trains that
head and the projection, never the backbone (locked-image tuning)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
from torch import Tensor, nn

from plait.objectives.contrastive import normalise

MAX_SCALE = 100.0  # CLIP's clamp on the inverse temperature


class SharedSpace(nn.Module):
    def __init__(
        self,
        field_to_dim: Mapping[str, int],
        dim: int,
        pairs: Sequence[tuple[str, str]],
        temperature: float = 0.07,
        learn_temperature: bool = True,
        hidden: int = 0,
    ) -> None:
        super().__init__()
        if dim < 2 or not pairs:
            raise ValueError(f"SharedSpace needs dim ≥ 2 and at least one pair; got dim {dim}, pairs {pairs}")
        unknown = sorted({f for p in pairs for f in p} - set(field_to_dim))
        if unknown:
            raise ValueError(f"SharedSpace: pairs name fields {unknown} that have no width in field_to_dim")
        used = [f for f in field_to_dim if any(f in p for p in pairs)]
        self.projections = nn.ModuleDict({f: _projection(field_to_dim[f], dim, hidden) for f in used})
        self.pairs = tuple((str(a), str(b)) for a, b in pairs)
        self.dim = dim
        log_scale = torch.tensor(math.log(1.0 / temperature))
        if learn_temperature:
            self.log_scale = nn.Parameter(log_scale)
        else:
            self.register_buffer("log_scale", log_scale)

    @property
    def fields(self) -> tuple[str, ...]:
        return tuple(self.projections)

    def scale(self) -> Tensor:
        """The inverse temperature of the InfoNCE logits, at most MAX_SCALE."""
        return self.log_scale.exp().clamp(max=MAX_SCALE)

    def project(self, field: str, pooled: Tensor) -> Tensor:
        """A field's pooled encoder output in the space, unit length: (B, D_f) -> (B, dim)."""
        return normalise(self.projections[field](pooled))

    def project_all(self, pooled: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """Every field of `pooled` that has a projection: field -> (B, dim) unit vectors."""
        return {f: self.project(f, x) for f, x in pooled.items() if f in self.projections}


def _projection(width: int, dim: int, hidden: int) -> nn.Module:
    if hidden <= 0:
        return nn.Linear(width, dim)
    return nn.Sequential(nn.Linear(width, hidden), nn.GELU(), nn.Linear(hidden, dim))
