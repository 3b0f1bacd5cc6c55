"""Synthesis of a missing field's embedding from the fields present (`space.impute: true`).

For each field of the shared space, a small conditional model reads the shared-space embeddings
of the other fields that are present (zeros and a presence bit for the rest) and predicts the
missing field's
- embedding in the shared space (unit length): to find the nearest real items of that field, the
  examples of what it would have been;
- pooled encoder output (width D_f): what the fusion reads in its place, as a one-token
  EncoderOutput.

`EmbeddingImputer(fields=("sound", "thermal"), field_to_dim={"sound": 64, "thermal": 64}, dim=128)`.
It is fitted after training (plait.training.imputation) and used only when a prediction asks for it
(`impute="embedding"`); `impute_encoded` is the one place an imputed field enters a model run."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from plait.objectives.contrastive import normalise
from plait.types import EncoderOutput


class EmbeddingImputer(nn.Module):
    def __init__(
        self, fields: Sequence[str], field_to_dim: Mapping[str, int], dim: int, hidden: int = 128
    ) -> None:
        super().__init__()
        if len(fields) < 2:
            raise ValueError(
                f"EmbeddingImputer needs two or more fields to impute one from others; got {fields}"
            )
        self.fields = tuple(fields)
        self.dim = dim
        width = len(self.fields) * (dim + 1)  # every field's embedding and its presence bit
        self.nets = nn.ModuleDict(
            {
                f: nn.Sequential(nn.Linear(width, hidden), nn.GELU(), nn.Linear(hidden, hidden), nn.GELU())
                for f in self.fields
            }
        )
        self.to_space = nn.ModuleDict({f: nn.Linear(hidden, dim) for f in self.fields})
        self.to_pooled = nn.ModuleDict({f: nn.Linear(hidden, field_to_dim[f]) for f in self.fields})

    def forward(
        self, field: str, embedded: Mapping[str, Tensor], given: Mapping[str, Tensor]
    ) -> tuple[Tensor, Tensor]:
        """`field`'s (shared-space embedding (B, dim), pooled output (B, D_f)) from the other fields'
        embeddings (B, dim) where `given[f]` (BoolTensor[B]) is True; `field` itself is never read."""
        parts = []
        for f in self.fields:
            on = given[f].bool() & (f != field)  # (B,)
            parts.append(embedded[f] * on[:, None].to(embedded[f].dtype))
            parts.append(on[:, None].to(embedded[f].dtype))
        h = self.nets[field](torch.cat(parts, dim=1))  # (B, F·(dim+1)) -> (B, hidden)
        return normalise(self.to_space[field](h)), self.to_pooled[field](h)


@dataclass(frozen=True)
class Imputed:
    """A model run's inputs after imputation: the encodings with imputed fields filled in, the
    presence the fusion sees (observed or imputed), and which rows of each field were imputed,
    with their imputed shared-space embeddings (zero rows where not imputed)."""

    encoded: dict[str, EncoderOutput]
    present: dict[str, Tensor]
    imputed: dict[str, Tensor]  # field -> BoolTensor[B]
    embedded: dict[str, Tensor]  # field -> (B, dim)


def impute_encoded(
    imputer: EmbeddingImputer,
    space_embedded: Mapping[str, Tensor],
    encoded: Mapping[str, EncoderOutput],
    present: Mapping[str, Tensor],
    allowed: Tensor | None = None,
) -> Imputed:
    """Fill each imputable field absent in a row from that row's present fields in the space (a row
    with none of them present is left as it is). `space_embedded`: field -> (B, dim) for the space's
    fields, computed from `encoded`; `allowed` (BoolTensor[B]): only these rows may be imputed."""
    out = dict(encoded)
    seen = dict(present)
    imputed: dict[str, Tensor] = {}
    guesses: dict[str, Tensor] = {}
    observed = {f: present[f].bool() for f in imputer.fields}
    any_other = {
        f: torch.stack([observed[g] for g in imputer.fields if g != f]).any(dim=0) for f in imputer.fields
    }
    for field in imputer.fields:
        rows = ~observed[field] & any_other[field]  # (B,)
        if allowed is not None:
            rows = rows & allowed.bool()
        imputed[field] = rows
        z_hat, pooled_hat = imputer(field, space_embedded, observed)
        guesses[field] = z_hat * rows[:, None].to(z_hat.dtype)
        if not bool(rows.any()):
            continue
        out[field] = _with_rows(encoded[field], rows, pooled_hat)
        seen[field] = present[field].bool() | rows
    return Imputed(encoded=out, present=seen, imputed=imputed, embedded=guesses)


def _with_rows(enc: EncoderOutput, rows: Tensor, pooled_hat: Tensor) -> EncoderOutput:
    """`enc` with the rows `rows` replaced by one token: the imputed pooled output (B, D)."""
    tokens = enc.tokens.clone()  # (B, L, D)
    mask = (
        enc.token_mask.clone()
        if enc.token_mask is not None
        else torch.ones(tokens.shape[:2], dtype=torch.bool, device=tokens.device)
    )
    pooled_hat = pooled_hat.to(tokens.dtype)
    tokens[rows] = 0.0
    tokens[rows, 0] = pooled_hat[rows]
    mask[rows] = False
    mask[rows, 0] = True
    pooled = torch.where(rows[:, None], pooled_hat, enc.pooled)
    return EncoderOutput(tokens=tokens, pooled=pooled, token_mask=mask)
