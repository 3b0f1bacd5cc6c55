"""The serving engine: predictions for a batch of records with every field's encoder guarded.

Each record is loaded first (`RecordLoader`: per record, unguarded — a value that fails, fails only
its own record and never counts against the field). Per field and batch, the loaded values are then
collated and encoded in one guarded step (`FieldGuard`: circuit breaker + timeout). A field that is
absent, empty, undecodable, too large, failing, timed out or switched off by its breaker is
predicted without (presence mask) and reported per record in `Served.fields`; the prediction itself
never fails for one field.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import Tensor

from plait.bundle import TrainedModel
from plait.errors import ConfigError
from plait.modalities.base import Modality
from plait.modalities.contract import MediaProbe, input_spec
from plait.models.answers import Prediction, contributions, row_answers
from plait.models.imputer import impute_encoded
from plait.serving.budget import COST_LIMITS, DecodeClock, decode_costs
from plait.serving.guard import FieldGuard, Skipped
from plait.serving.loader import FieldState, FieldStatus, Loaded, RecordLoader
from plait.types import EncoderOutput, ModelOutput

__all__ = ["Engine", "FieldState", "FieldStatus", "Loaded", "Served", "ServingEngine"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Served:
    prediction: Prediction  # calibrated probabilities when the bundle has calibration
    fields: tuple[FieldStatus, ...]  # one per model field, in model order
    # Each used field's part in this answer: how much the predicted class's probability (regression:
    # the prediction, in target units) falls when the field is left out. Leave-one-out on the
    # record's own encodings — the fusion and head run once more per field, the encoders do not.
    contributions: Mapping[str, float] | None = None
    # With `embed`: each field of the shared space in it (unit vector; None where the field is
    # neither used nor imputed). An imputed field's vector is its imputed embedding.
    embeddings: Mapping[str, list[float] | None] | None = None

    def to_json(self) -> dict[str, Any]:
        out = self.prediction.to_json()
        out["fields"] = {s.field: {"state": s.state, "reason": s.reason} for s in self.fields}
        out["contributions"] = None if self.contributions is None else dict(self.contributions)
        if self.embeddings is not None:
            out["embeddings"] = dict(self.embeddings)
        return out


class ServingEngine(Protocol):
    """What the app needs of an engine: `Engine` here, or `EngineProcess` (the same in a child)."""

    @property
    def ready(self) -> bool: ...
    def predict(
        self,
        records: Sequence[Mapping[str, Any]],
        explain: Sequence[bool] | bool = False,
        impute: Sequence[bool] | bool = False,
        embed: Sequence[bool] | bool = False,
    ) -> list[Served]: ...
    def warm_up(self) -> None: ...
    def breaker_states(self) -> dict[str, str]: ...
    def close(self) -> None: ...


class Engine:
    """`Engine(load_bundle(path)).predict([{"note": "hot casing", "thermal": png_bytes}])`.

    Record values are keyed by table column names; media values are bytes (the HTTP layer decodes
    base64). A value may also be `plait.types.Absent(reason, detail)`: the caller could not decode
    it, and the field is reported failed (missing when the reason is "empty") without loading.
    `predict_loaded` takes records a `RecordLoader` has loaded already.
    """

    def __init__(
        self,
        trained: TrainedModel,
        *,
        guard: FieldGuard | None = None,
        root: Path | None = None,
        decode_budget_s: float | None = None,
    ) -> None:
        self.trained = trained
        self.decode_budget_s = decode_budget_s  # wall time per batch for decoding media (None: none)
        self._clock = DecodeClock(decode_budget_s)
        self.fields: tuple[str, ...] = tuple(trained.modalities)
        self.kinds: dict[str, str] = {f: m.kind for f, m in trained.modalities.items()}
        self.guard = guard if guard is not None else FieldGuard(self.fields)
        unguarded = [f for f in self.fields if f not in self.guard.fields]
        if unguarded:
            raise ConfigError(
                f"Engine: the guard has no breaker for fields {unguarded}; build it with "
                f"FieldGuard({list(self.fields)})"
            )
        self.loader = RecordLoader(trained.modalities, root=root)
        self._media = media_probes(trained.modalities)
        self.model = trained.model
        self.model.eval()
        # Each encoder's output for one absent row: stands in for a field nobody sent or whose
        # encoder failed (fusions ignore an absent field's values exactly).
        self._absent = {f: self._encode_absent_row(f) for f in self.fields}
        self.ready = False

    def predict(
        self,
        records: Sequence[Mapping[str, Any]],
        explain: Sequence[bool] | bool = False,
        impute: Sequence[bool] | bool = False,
        embed: Sequence[bool] | bool = False,
    ) -> list[Served]:
        """One Served per record, in order. `explain` (for all records, or per record) adds each used
        field's leave-one-out contribution; it costs one more fusion + head run per field.
        `impute` synthesises the record's missing fields of the shared space from the ones it has
        (a bundle with an imputer: `space.impute`); `embed` returns its fields' shared-space
        embeddings. Records are loaded cheapest first within `decode_budget_s` (plait.serving.budget)."""
        return self.predict_loaded(self.load_batch(records), explain, impute, embed)

    def load_batch(self, records: Sequence[Mapping[str, Any]]) -> list[Loaded]:
        """Each record loaded, in order. With a decode budget, cheapest first: a record whose media
        would take the batch past it (or that comes after it is spent) has its media skipped."""
        clock = None if self.decode_budget_s is None else self._clock
        return load_records(self.loader, records, clock, self._media)

    def predict_loaded(
        self,
        loaded: Sequence[Loaded],
        explain: Sequence[bool] | bool = False,
        impute: Sequence[bool] | bool = False,
        embed: Sequence[bool] | bool = False,
    ) -> list[Served]:
        """`predict` for records a `RecordLoader` has loaded already."""
        n = len(loaded)
        if n == 0:
            return []
        wanted, imputing, embedding = each(explain, n), each(impute, n), each(embed, n)
        statuses: dict[str, list[FieldStatus]] = {}
        encoded: dict[str, EncoderOutput] = {}
        present: dict[str, Tensor] = {}
        for field, modality in self.trained.modalities.items():
            statuses[field], encoded[field], present[field] = self._field(field, modality, loaded)
        space_z: dict[str, Tensor] = {}
        imputed: dict[str, Tensor] | None = None
        seen, inputs = present, encoded  # what the fusion reads: observed (and imputed) fields
        with torch.inference_mode():
            if self.model.space is not None and (any(imputing) or any(embedding)):
                space_z = self.model.embed(encoded)  # field -> (B, dim)
            if self.model.imputer is not None and any(imputing):
                filled = impute_encoded(self.model.imputer, space_z, encoded, present, torch.tensor(imputing))
                seen, inputs, imputed = filled.present, filled.encoded, filled.imputed
                space_z = {
                    f: torch.where(imputed[f][:, None], filled.embedded[f], z) for f, z in space_z.items()
                }
            out = self.model.decide(inputs, seen).float()  # output (B, K), weights (B, M)
        answers = row_answers(
            out,
            present,
            fields=self.fields,
            task=self.trained.task,
            calibration=self.trained.calibration,
            model_id=self.trained.model_id,
            imputed=imputed,
        )
        parts = self._contributions(out, inputs, seen, imputed) if any(wanted) else {}
        return [
            Served(
                prediction=answers[i],
                fields=tuple(statuses[f][i] for f in self.fields),
                contributions=(
                    {f: round(float(c[i]), 6) for f, c in parts.items() if bool(seen[f][i])}
                    if wanted[i]
                    else None
                ),
                embeddings=(
                    {f: z[i].tolist() if bool(seen[f][i]) else None for f, z in space_z.items()}
                    if embedding[i]
                    else None
                ),
            )
            for i in range(n)
        ]

    def _contributions(
        self,
        out: ModelOutput,
        encoded: Mapping[str, EncoderOutput],
        present: Mapping[str, Tensor],
        imputed: Mapping[str, Tensor] | None = None,
    ) -> dict[str, Tensor]:
        """field -> (B,) drop of each row's answer when that field is left out (see `Served`): the
        fusion and head run once more per field present (observed or imputed) in any row, the
        encoders do not."""
        left_out: dict[str, ModelOutput] = {}
        for field in self.fields:
            if not bool(present[field].any()):
                continue
            without = {**present, field: torch.zeros_like(present[field])}
            with torch.inference_mode():
                left_out[field] = self.model.decide(encoded, without).float()
        return contributions(
            out,
            present,
            left_out,
            task=self.trained.task,
            calibration=self.trained.calibration,
            imputed=imputed,
        )

    def breaker_states(self) -> dict[str, str]:
        """field -> breaker state (see `FieldGuard.states`)."""
        return self.guard.states()

    def warm_up(self) -> None:
        """One prediction with every field missing, then each encoder once on a zero-filled
        input marked present (its present-path kernels); sets `ready`."""
        self.predict([{}])
        for field, modality in self.trained.modalities.items():
            values, mask = modality.collate([None])
            try:
                with torch.inference_mode():
                    self.model.encoders[field](values, torch.ones(1, dtype=torch.bool), mask)
            except Exception as exc:  # zeros are not real input; a real record may still work
                log.warning("warm-up: encoder of field '%s' failed on a zero-filled input: %s", field, exc)
        self.ready = True

    def close(self) -> None:
        """Stop the guard's threads and remove the temporary media root (if the engine made it)."""
        self.guard.close()
        self.loader.close()

    # -- one field of the batch -----------------------------------------------------------------------
    def _field(
        self, field: str, modality: Modality, loaded: Sequence[Loaded]
    ) -> tuple[list[FieldStatus], EncoderOutput, Tensor]:
        """Each record's status, the field's encoder output and its presence mask BoolTensor[B].

        The breaker and its timeout guard the encoder, whose cost the server bounds
        (max_batch_size); loading is the client's cost and was done per record before."""
        statuses = [one.statuses[field] for one in loaded]
        items = [one.values.get(field) for one in loaded]
        present = torch.tensor([item is not None for item in items], dtype=torch.bool)  # (B,)
        n = len(loaded)
        if not bool(present.any()):
            return statuses, self._absent_rows(field, n), present
        result = self.guard.call(field, lambda: self._run_encoder(field, modality, items, present))
        if isinstance(result, Skipped):
            skipped = skipped_status(field, result, "encoder")
            statuses = [skipped if item is not None else s for item, s in zip(items, statuses, strict=True)]
            return statuses, self._absent_rows(field, n), torch.zeros(n, dtype=torch.bool)  # (B,) nobody
        finite = torch.isfinite(result.pooled.float()).all(dim=1) | ~present  # (B,)
        if not bool(finite.all()):  # values at the edge of float range: no honest answer from them
            bad = FieldStatus(field, "failed", "non-finite encoding: the values are out of range")
            statuses = [bad if not bool(ok) else s for ok, s in zip(finite, statuses, strict=True)]
            present = present & finite
            result = (
                EncoderOutput(  # finite values in absent rows: fusions ignore them exactly, but NaN·0 = NaN
                    tokens=torch.nan_to_num(result.tokens, nan=0.0, posinf=0.0, neginf=0.0),
                    pooled=torch.nan_to_num(result.pooled, nan=0.0, posinf=0.0, neginf=0.0),
                    token_mask=result.token_mask,
                )
            )
        return statuses, result, present

    def _run_encoder(
        self, field: str, modality: Modality, items: list[Tensor | None], present: Tensor
    ) -> EncoderOutput:
        values, mask = modality.collate(items)  # (B, ...), step mask (B, L) or None
        with torch.inference_mode():  # thread-local: this runs in the guard's thread
            out: EncoderOutput = self.model.encoders[field](values, present, mask)
        return out

    def _encode_absent_row(self, field: str) -> EncoderOutput:
        values, mask = self.trained.modalities[field].collate([None])  # (1, ...)
        with torch.inference_mode():
            out: EncoderOutput = self.model.encoders[field](values, torch.zeros(1, dtype=torch.bool), mask)
        return out

    def _absent_rows(self, field: str, n: int) -> EncoderOutput:
        one = self._absent[field]
        return EncoderOutput(
            tokens=_repeat(one.tokens, n),  # (1, L, D) -> (n, L, D)
            pooled=_repeat(one.pooled, n),  # (1, D) -> (n, D)
            token_mask=None if one.token_mask is None else _repeat(one.token_mask, n),  # (1, L) -> (n, L)
        )


def media_probes(modalities: Mapping[str, Modality]) -> dict[str, MediaProbe]:
    """media column -> the probe that reads its decoding cost from the header."""
    return {
        column: spec.probe
        for m in modalities.values()
        for spec in [input_spec(m, COST_LIMITS)]
        if spec.probe is not None
        for column in spec.media_columns
    }


def load_records(
    loader: RecordLoader,
    records: Sequence[Mapping[str, Any]],
    clock: DecodeClock | None,
    media: Mapping[str, MediaProbe],
) -> list[Loaded]:
    """Each record loaded, in order (`Engine.load_batch`); with a clock, cheapest first within its
    budget. Shared by the engines of every runtime."""
    if clock is None:
        return [loader.load(record) for record in records]
    costs = decode_costs(records, media)
    loaded: list[Loaded | None] = [None] * len(records)
    clock.start()
    for i in sorted(range(len(records)), key=costs.__getitem__):
        pixels = costs[i][0]
        skip = clock.skip(pixels)
        started = time.perf_counter()
        loaded[i] = loader.load(records[i], skip_media=skip)
        if skip is None:
            clock.observe(pixels, time.perf_counter() - started)
    return [one for one in loaded if one is not None]


def each(flag: Sequence[bool] | bool, n: int) -> list[bool]:
    """A flag for all n records, or one per record, as a list of n."""
    return [flag] * n if isinstance(flag, bool) else [bool(f) for f in flag]


def _repeat(x: Tensor, n: int) -> Tensor:
    return x.repeat(n, *([1] * (x.dim() - 1)))


def skipped_status(field: str, skipped: Skipped, stage: str) -> FieldStatus:
    if skipped.cause == "open":
        return FieldStatus(field, "skipped", skipped.reason)
    state: FieldState = "skipped" if skipped.cause == "timeout" else "failed"
    return FieldStatus(field, state, f"{stage} {skipped.reason}")
