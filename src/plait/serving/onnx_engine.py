"""The serving engine on an ONNX export: the same answers as `Engine`, the model run by onnxruntime.

`OnnxEngine(trained, OnnxModel.load("bundle.onnx"))` loads records as `Engine` does (RecordLoader,
the decode budget), collates each field under its guard, then runs the one graph (plait.export)
with every field's values and presence mask. What the graph cannot hold stays in Python and is the
torch engine's own code: preprocessing, a pretrained field's frozen backbone, calibration and the
answers (plait.models.answers).

How it differs from `Engine`, and why:
- The encoders run inside the graph, all in one call: a field's breaker and `field_timeout_s`
  guard its collate, not its encoder (the batch as a whole has the process's `batch_timeout_s`).
- Non-finite encodings are found from the graph's per-field pooled outputs; their rows are run
  again with that field absent (as `Engine` marks them), which costs one more graph run.
- Contributions (`?explain=true`) rerun the whole graph once per field present — encoders too —
  so they cost more than with torch, and give the same numbers.
- The shared space (`/v1/embed`, `?impute=embedding`) is not in the graph: such a request is
  refused (422, `unsupported_by_runtime`) by the app before it reaches this engine.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from plait.bundle import TrainedModel
from plait.errors import ConfigError
from plait.export.session import GraphOutput, OnnxModel
from plait.modalities.base import Modality
from plait.models.answers import contributions, row_answers
from plait.serving.budget import DecodeClock
from plait.serving.engine import Served, each, load_records, media_probes, skipped_status
from plait.serving.guard import FieldGuard, Skipped
from plait.serving.loader import FieldStatus, Loaded, RecordLoader
from plait.types import ModelOutput

__all__ = ["UNSUPPORTED", "OnnxEngine"]

log = logging.getLogger(__name__)
UNSUPPORTED = (
    "the shared space (embeddings, ?impute=embedding) is not part of the ONNX graph; serve this "
    "bundle with --runtime torch for it"
)


class OnnxEngine:
    """`ServingEngine` on an `OnnxModel`; see the module doc. `runtime` and `graph_file` say what
    serves (for /v1/info)."""

    runtime = "onnx"

    def __init__(
        self,
        trained: TrainedModel,
        graph: OnnxModel,
        *,
        guard: FieldGuard | None = None,
        root: Path | None = None,
        decode_budget_s: float | None = None,
    ) -> None:
        self.fields: tuple[str, ...] = tuple(trained.modalities)
        if graph.field_order != self.fields:
            raise ConfigError(
                f"the ONNX graph takes fields {list(graph.field_order)} but the bundle has "
                f"{list(self.fields)}; export the bundle again"
            )
        self.trained = trained
        self.graph = graph
        self.guard = guard if guard is not None else FieldGuard(self.fields)
        self.decode_budget_s = decode_budget_s
        self._clock = DecodeClock(decode_budget_s)
        self._media = media_probes(trained.modalities)
        self.loader = RecordLoader(trained.modalities, root=root)
        self.ready = False

    @property
    def graph_file(self) -> str:
        return self.graph.file_name

    def predict(
        self,
        records: Sequence[Mapping[str, Any]],
        explain: Sequence[bool] | bool = False,
        impute: Sequence[bool] | bool = False,
        embed: Sequence[bool] | bool = False,
    ) -> list[Served]:
        """As `Engine.predict`; `impute` and `embed` raise ConfigError (see the module doc)."""
        return self.predict_loaded(self.load_batch(records), explain, impute, embed)

    def load_batch(self, records: Sequence[Mapping[str, Any]]) -> list[Loaded]:
        clock = None if self.decode_budget_s is None else self._clock
        return load_records(self.loader, records, clock, self._media)

    def predict_loaded(
        self,
        loaded: Sequence[Loaded],
        explain: Sequence[bool] | bool = False,
        impute: Sequence[bool] | bool = False,
        embed: Sequence[bool] | bool = False,
    ) -> list[Served]:
        n = len(loaded)
        if n == 0:
            return []
        if any(each(impute, n)) or any(each(embed, n)):
            raise ConfigError(UNSUPPORTED)
        wanted = each(explain, n)
        statuses = {f: [one.statuses[f] for one in loaded] for f in self.fields}
        items = {f: [one.values.get(f) for one in loaded] for f in self.fields}
        inputs = self._inputs(items, statuses)
        run = self.graph.run(*inputs)
        if self._drop_non_finite(run, items, statuses, inputs[2]):
            inputs = self._inputs(items, statuses)
            run = self.graph.run(*inputs)
        present = inputs[2]
        answers = row_answers(
            run.out,
            present,
            fields=self.fields,
            task=self.trained.task,
            calibration=self.trained.calibration,
            model_id=self.trained.model_id,
        )
        parts = self._contributions(run.out, *inputs) if any(wanted) else {}
        return [
            Served(
                prediction=answers[i],
                fields=tuple(statuses[f][i] for f in self.fields),
                contributions=(
                    {f: round(float(c[i]), 6) for f, c in parts.items() if bool(present[f][i])}
                    if wanted[i]
                    else None
                ),
            )
            for i in range(n)
        ]

    def _inputs(
        self, items: dict[str, list[Tensor | None]], statuses: dict[str, list[FieldStatus]]
    ) -> tuple[dict[str, Tensor], dict[str, Tensor | None], dict[str, Tensor]]:
        """Every field collated under its guard: values (B, ...), step masks, presence BoolTensor[B].
        A field whose guard skips it is absent in every row (its items and statuses say so)."""
        values: dict[str, Tensor] = {}
        masks: dict[str, Tensor | None] = {}
        present: dict[str, Tensor] = {}
        for field, modality in self.trained.modalities.items():
            field_items = items[field]
            result = self._collate(field, modality, field_items)
            if isinstance(result, Skipped):
                skipped = skipped_status(field, result, "collate")
                statuses[field] = [
                    skipped if item is not None else s
                    for item, s in zip(field_items, statuses[field], strict=True)
                ]
                items[field] = field_items = [None] * len(field_items)
                result = modality.collate(field_items)
            values[field], masks[field] = result
            present[field] = torch.tensor(
                [item is not None for item in field_items], dtype=torch.bool
            )  # (B,)
        return values, masks, present

    def _collate(
        self, field: str, modality: Modality, items: list[Tensor | None]
    ) -> tuple[Tensor, Tensor | None] | Skipped:
        if all(item is None for item in items):
            return modality.collate(items)  # nothing of the client's: nothing to guard
        result: tuple[Tensor, Tensor | None] | Skipped = self.guard.call(
            field, lambda: modality.collate(items)
        )
        return result

    def _drop_non_finite(
        self,
        run: GraphOutput,
        items: dict[str, list[Tensor | None]],
        statuses: dict[str, list[FieldStatus]],
        present: Mapping[str, Tensor],
    ) -> bool:
        """Mark failed (and take out of `items`) each present row whose encoding of a field is not
        finite — values at the edge of float range; True when there was any."""
        found = False
        for field in self.fields:
            bad = ~torch.isfinite(run.pooled[field].float()).all(dim=1) & present[field]  # (B,)
            if not bool(bad.any()):
                continue
            found = True
            failed = FieldStatus(field, "failed", "non-finite encoding: the values are out of range")
            for i in torch.nonzero(bad).flatten().tolist():
                items[field][i] = None
                statuses[field][i] = failed
        return found

    def _contributions(
        self,
        out: ModelOutput,
        values: Mapping[str, Tensor],
        masks: Mapping[str, Tensor | None],
        present: Mapping[str, Tensor],
    ) -> dict[str, Tensor]:
        """field -> (B,) drop of each row's answer when that field is left out: the graph runs
        once more per field present in any row."""
        left_out: dict[str, ModelOutput] = {}
        for field in self.fields:
            if not bool(present[field].any()):
                continue
            without = {**present, field: torch.zeros_like(present[field])}
            left_out[field] = self.graph.run(values, masks, without).out
        return contributions(
            out, present, left_out, task=self.trained.task, calibration=self.trained.calibration
        )

    def breaker_states(self) -> dict[str, str]:
        return self.guard.states()

    def warm_up(self) -> None:
        """One prediction with every field missing, then one graph run with every field present on
        zero-filled input; sets `ready`."""
        self.predict([{}])
        values: dict[str, Tensor] = {}
        masks: dict[str, Tensor | None] = {}
        for field, modality in self.trained.modalities.items():
            values[field], masks[field] = modality.collate([None])
        try:
            self.graph.run(values, masks, {f: torch.ones(1, dtype=torch.bool) for f in self.fields})
        except Exception as exc:  # zeros are not real input; a real record may still work
            log.warning("warm-up: the ONNX graph failed on zero-filled input: %s", exc)
        self.ready = True

    def close(self) -> None:
        self.guard.close()
        self.loader.close()
