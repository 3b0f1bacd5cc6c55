"""A seed ensemble as one FusionModel: N models of the same config, trained with different seeds,
that predict their average — so inference, calibration, evaluation, the bundle and the server
treat it like any model.

The ensemble's encoder for a field runs every member's encoder and lays their features side by
side (tokens [B, L, N·D], pooled [B, N·D]); the ensemble's fusion (decision-level) cuts them back
per member, runs each member's fusion and head, and averages: class probabilities for a
classification (the output is the log of the mean probability, a valid logit: its softmax is the
mean), predictions for a regression. Presence masks work as for one model: every member sees the
same mask. Encoding once and deciding under several masks (ablation, calibration per subset)
works unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor, nn

from plait.errors import ConfigError
from plait.models.fusion_model import FusionModel
from plait.types import EncoderOutput, FusionOutput

MAX_MEMBERS = 32


class MemberEncoders(nn.Module):
    """One field's encoders of every member, their features side by side."""

    def __init__(self, members: Sequence[nn.Module]) -> None:
        super().__init__()
        self.members = nn.ModuleList(members)
        self.dims = tuple(int(m.output_dim) for m in members)  # type: ignore[arg-type]
        self.output_dim = sum(self.dims)

    def forward(self, values: Tensor, present: Tensor, mask: Tensor | None = None) -> EncoderOutput:
        outs = [m(values, present, mask) for m in self.members]
        return EncoderOutput(
            tokens=torch.cat([o.tokens for o in outs], dim=-1),  # N × (B, L, D) -> (B, L, N·D)
            pooled=torch.cat([o.pooled for o in outs], dim=-1),  # N × (B, D) -> (B, N·D)
            token_mask=outs[0].token_mask,  # the same input: the same real tokens for every member
        )


class MemberDecision(nn.Module):
    """One member's fusion and head."""

    def __init__(self, fusion: nn.Module, head: nn.Module) -> None:
        super().__init__()
        self.fusion = fusion
        self.head = head

    def forward(self, encoded: Mapping[str, EncoderOutput], present: Mapping[str, Tensor]) -> FusionOutput:
        fused: FusionOutput = self.fusion(encoded, present)
        return FusionOutput(fused=self.head(fused.fused), weights=fused.weights)


class EnsembleFusion(nn.Module):
    """Cuts each field's side-by-side features per member, decides with each member, averages."""

    decision_level = True

    def __init__(
        self,
        members: Sequence[MemberDecision],
        dims: Mapping[str, Sequence[int]],
        field_order: Sequence[str],
        *,
        classification: bool,
    ) -> None:
        super().__init__()
        self.members = nn.ModuleList(members)
        self.dims = {f: tuple(d) for f, d in dims.items()}
        self.field_order = tuple(field_order)
        self.classification = classification

    def _per_member(self, encoded: Mapping[str, EncoderOutput]) -> list[dict[str, EncoderOutput]]:
        """Each member's encodings, cut once per field from the side-by-side features."""
        cut = {
            f: zip(
                enc.tokens.split(self.dims[f], dim=-1),  # (B, L, N·D) -> N × (B, L, D)
                enc.pooled.split(self.dims[f], dim=-1),  # (B, N·D) -> N × (B, D)
                strict=True,
            )
            for f, enc in encoded.items()
        }
        members: list[dict[str, EncoderOutput]] = [{} for _ in self.members]
        for f, parts in cut.items():
            for i, (tokens, pooled) in enumerate(parts):
                members[i][f] = EncoderOutput(tokens=tokens, pooled=pooled, token_mask=encoded[f].token_mask)
        return members

    def forward(self, encoded: Mapping[str, EncoderOutput], present: Mapping[str, Tensor]) -> FusionOutput:
        inputs = self._per_member(encoded)
        decided = [m(inputs[i], present) for i, m in enumerate(self.members)]
        outputs = torch.stack([d.fused for d in decided])  # (N, B, K)
        if self.classification:  # the log of the mean probability: softmax gives the mean back
            n = torch.tensor(float(len(decided)), device=outputs.device)
            fused = torch.logsumexp(outputs.float().log_softmax(dim=-1), dim=0) - n.log()  # (B, K)
        else:
            fused = outputs.mean(dim=0)  # (B, 1)
        weights = None
        if all(d.weights is not None for d in decided):
            weights = torch.stack([d.weights for d in decided]).mean(dim=0)  # (B, M)
        return FusionOutput(fused=fused.to(outputs.dtype), weights=weights)


def ensemble_model(members: Sequence[FusionModel], *, classification: bool) -> FusionModel:
    """One FusionModel that predicts the average of `members` (models of one config: the same
    fields, in the same order)."""
    if not 2 <= len(members) <= MAX_MEMBERS:
        raise ConfigError(f"train.ensemble: an ensemble needs 2 to {MAX_MEMBERS} members, got {len(members)}")
    fields = members[0].field_order
    if any(m.field_order != fields for m in members):
        raise ConfigError("ensemble members must have the same fields in the same order")
    encoders = {f: MemberEncoders([m.encoders[f] for m in members]) for f in members[0].encoders}
    fusion = EnsembleFusion(
        [MemberDecision(m.fusion, m.head) for m in members],
        {f: enc.dims for f, enc in encoders.items()},
        fields,
        classification=classification,
    )
    return FusionModel(encoders=encoders, fusion=fusion, head=None)


class MemberAverage(nn.Module):
    """One field's probes of every member, each on its member's slice, averaged (the ensemble's
    own skill of a field, for the balance report)."""

    def __init__(self, probes: Sequence[nn.Module], dims: Sequence[int]) -> None:
        super().__init__()
        self.probes = nn.ModuleList(probes)
        self.dims = tuple(dims)

    def forward(self, pooled: Tensor) -> Tensor:
        parts = pooled.split(self.dims, dim=-1)  # (B, N·D) -> N × (B, D)
        return torch.stack([p(x) for p, x in zip(self.probes, parts, strict=True)]).mean(dim=0)


def ensemble_probes(probes: Sequence[nn.ModuleDict], model: FusionModel) -> nn.ModuleDict:
    """The members' field probes as probes of the ensemble model's side-by-side features."""
    out = {}
    for field, encoder in model.encoders.items():
        assert isinstance(encoder, MemberEncoders)  # built by ensemble_model
        out[field] = MemberAverage([p[field] for p in probes], encoder.dims)
    return nn.ModuleDict(out)
