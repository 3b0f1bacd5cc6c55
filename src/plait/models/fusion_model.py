"""The model as an assembly: one encoder per field → a fusion → a head. Plain nn.Module.

`FusionModel(encoders={"photo": ..., "note": ...}, fusion=GatedFusion(...), head=MLPHead(...))`.
A decision-level fusion (late fusion) already produces the output, so it takes no head.
`forward` = `decide(encode(batch), batch.present)`; inference calls the two steps apart to encode
once and decide under several presence masks. With a shared space (`space`, plait.models.space)
`embed` puts fields into it from the same encodings; with `imputer` (plait.models.imputer) a
missing field's embedding can be synthesised from the fields present.

Every field the model was built with must be in `batch.values` and `batch.present` (zero-filled
and marked absent where it is missing): encoders need a tensor to run on even for absent samples.
"""

from __future__ import annotations

from collections.abc import Mapping

from torch import Tensor, nn

from plait.errors import ConfigError
from plait.models.imputer import EmbeddingImputer
from plait.models.space import SharedSpace
from plait.types import Batch, EncoderOutput, FusionOutput, ModelOutput


class FusionModel(nn.Module):
    def __init__(
        self,
        encoders: Mapping[str, nn.Module],
        fusion: nn.Module,
        head: nn.Module | None = None,
        space: SharedSpace | None = None,
        imputer: EmbeddingImputer | None = None,
    ) -> None:
        super().__init__()
        bad = [f for f in encoders if "." in f or f == ""]
        if bad:
            raise ConfigError(f"fields {bad}: a field name may not be empty or contain '.'; rename the field")
        order: tuple[str, ...] = tuple(getattr(fusion, "field_order", ()))
        if set(order) != set(encoders):
            raise ConfigError(
                f"the fusion was built for fields {list(order)} but the encoders are for {list(encoders)}; "
                "build both from the same field list"
            )
        decision_level = bool(getattr(fusion, "decision_level", False))
        if decision_level and head is not None and not isinstance(head, nn.Identity):
            raise ConfigError(
                f"{type(fusion).__name__} is decision-level (its output is the prediction); pass head=None"
            )
        if not decision_level and head is None:
            raise ConfigError(f"{type(fusion).__name__} produces features; it needs a head (e.g. MLPHead)")
        self.encoders = nn.ModuleDict(dict(encoders))
        self.fusion = fusion
        self.head = head if head is not None else nn.Identity()
        self.field_order = order
        if space is not None and not set(space.fields) <= set(encoders):
            raise ConfigError(
                f"the shared space projects fields {list(space.fields)} but the encoders are for "
                f"{list(encoders)}; build both from the same field list"
            )
        self.space = space
        if imputer is not None and (space is None or set(imputer.fields) != set(space.fields)):
            raise ConfigError(
                "the embedding imputer works in the shared space: build it for the space's fields"
            )
        self.imputer = imputer

    def encode(self, batch: Batch) -> dict[str, EncoderOutput]:
        missing = [f for f in self.encoders if f not in batch.values or f not in batch.present]
        if missing:
            raise KeyError(
                f"batch has no values or presence mask for fields {missing}; the model needs every field "
                f"{list(self.encoders)} (zero-filled and marked absent where missing)"
            )
        return {
            f: encoder(batch.values[f], batch.present[f], batch.masks.get(f))
            for f, encoder in self.encoders.items()
        }

    def fuse(self, encoded: Mapping[str, EncoderOutput], present: Mapping[str, Tensor]) -> FusionOutput:
        out: FusionOutput = self.fusion(encoded, present)
        return out

    def decide(self, encoded: Mapping[str, EncoderOutput], present: Mapping[str, Tensor]) -> ModelOutput:
        """Fuse and decide under `present`: the model's output for fields encoded once. Any presence
        mask will do (ablation, leave-one-out): every fusion ignores an absent field's values, so
        marking a field absent after encoding equals encoding without it."""
        fused = self.fuse(encoded, present)
        output = self.head(fused.fused)  # (B, D) -> (B, K); identity for decision-level fusions
        return ModelOutput(output=output, weights=fused.weights, field_order=self.field_order)

    def embed(self, encoded: Mapping[str, EncoderOutput]) -> dict[str, Tensor]:
        """Each field with a projection, in the shared space: field -> (B, dim) unit vectors (an
        absent row's vector means nothing: read it with the presence mask)."""
        if self.space is None:
            raise ConfigError(
                "this model has no shared space; train it with a `space:` section (or a contrastive stage)"
            )
        return self.space.project_all({f: out.pooled for f, out in encoded.items()})

    def forward(self, batch: Batch) -> ModelOutput:
        return self.decide(self.encode(batch), batch.present)
