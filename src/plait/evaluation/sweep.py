"""One pass over the evaluation rows that serves the whole evaluation: each batch is encoded ONCE,
then fused under every subset of fields (ablation, calibration) and under every perturbation of a
robustness sweep.

What is exact and what is re-run:
- a field removed (a subset, or the `missing` family at any level) changes only the presence mask,
  so the clean encodings are reused: every fusion ignores an absent field's values (the
  conformance checks pin this), so this equals re-encoding without the field;
- a signal perturbation (noise, blur, typos, …) changes a field's values, so that field alone is
  re-encoded; the other fields keep their clean encodings.

A point asked for twice (with one field, the all-fields `missing` and `noise` curves are the field's
own `missing` and noise curves) is run once and shared: points are keys, each collected once.

Randomness: batch b of a sweep draws from seed (seed, b) and, inside `perturb_batch`, a stream per
field, so results do not depend on the batch size's interplay with other fields; every level of a
curve reuses the same draws (common random numbers), which keeps curves smooth.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from plait.data.dataset import TensorTable
from plait.errors import ConfigError
from plait.evaluation.perturb import PERTURBATIONS, perturb_batch
from plait.evaluation.perturb.apply import field_context
from plait.models.fusion_model import FusionModel
from plait.models.inference import only_fields
from plait.modes import evaluating
from plait.types import Batch, EncoderOutput

ALL_FIELDS = "all"
BATCH_SIZE = 256
Advance = Callable[[int], None]  # told how many more model runs are done
QUIET_S = 2.0  # a sweep shorter than this says nothing while it runs


@dataclass(frozen=True)
class SweepPoint:
    """One perturbed run: `perturbation` applied to `fields` at `level`. For several fields,
    `perturbation` may name one family per field (the all-fields noise curve)."""

    fields: tuple[str, ...]
    perturbations: tuple[str, ...]  # one per field
    level: float

    @property
    def removes_only(self) -> bool:
        """True when only presence changes (no re-encoding needed)."""
        return all(p == "missing" for p in self.perturbations)


@dataclass(frozen=True)
class SweepResult:
    subsets: dict[str, Tensor]  # subset name → outputs (N, K) (logits / standardised predictions)
    weights: Tensor | None  # (N, M) fusion weights with every field, or None
    points: dict[SweepPoint, Tensor]  # point → outputs (N, K)
    encoding_seconds: float  # time inside encoders (clean and re-encodes)
    seconds: float


@torch.inference_mode()
def sweep(
    model: FusionModel,
    table: TensorTable,
    rows: Sequence[int] | Tensor,
    *,
    subsets: Mapping[str, Sequence[str] | None],
    points: Sequence[SweepPoint] = (),
    modalities: Mapping[str, Any] | None = None,
    contexts: Mapping[str, Mapping[str, Any]] | None = None,
    seed: int = 0,
    batch_size: int = BATCH_SIZE,
    advance: Advance | None = None,
) -> SweepResult:
    """Run `model` over `rows` of `table` under each subset of fields (None: all present fields)
    and each sweep point. `modalities[f]` is field f's modality (which families apply to it);
    `contexts[f]` what its families need (default: read once from the modality, `perturbation_context`).
    Equal points are run once (`unique_points`). `advance(1)` is called after every model run,
    `model_runs(...)` of them (see `tracked`)."""
    start = time.perf_counter()
    points = unique_points(points)
    modalities = dict(modalities or {})
    _check(model, subsets, points, modalities)
    given = dict(contexts or {})
    perturbed = {f for point in points for f in point.fields}
    contexts = {f: given[f] if f in given else field_context(modalities[f]) for f in perturbed}
    idx = torch.as_tensor(rows, dtype=torch.long)
    out_subsets: dict[str, list[Tensor]] = {name: [] for name in subsets}
    out_points: dict[SweepPoint, list[Tensor]] = {p: [] for p in points}
    weights: list[Tensor] = []
    timer = _Timer()
    with evaluating(model):
        for number, begin in enumerate(range(0, len(idx), batch_size)):
            batch = table.batch(idx[begin : begin + batch_size])
            encoded = timer.encode(model, batch, tuple(model.encoders))
            for name, keep in subsets.items():
                present = batch.present if keep is None else only_fields(keep)(batch.present)
                decided = model.decide(encoded, present).float()
                out_subsets[name].append(decided.output)  # (B, K)
                if keep is None and decided.weights is not None:
                    weights.append(decided.weights)
                if advance is not None:
                    advance(1)
            batch_seed = seed * 100_003 + number
            for point in points:
                changed = batch
                for field, name in zip(point.fields, point.perturbations, strict=True):
                    changed = perturb_batch(
                        changed, field, modalities[field], name, point.level, batch_seed, contexts[field]
                    )
                fields = () if point.removes_only else point.fields
                redone = timer.encode(model, changed, fields) if fields else {}
                out_points[point].append(model.decide({**encoded, **redone}, changed.present).float().output)
                if advance is not None:
                    advance(1)
    return SweepResult(
        subsets={name: torch.cat(v) for name, v in out_subsets.items()},
        weights=torch.cat(weights) if weights else None,
        points={p: torch.cat(v) for p, v in out_points.items()},
        encoding_seconds=timer.seconds,
        seconds=time.perf_counter() - start,
    )


def unique_points(points: Sequence[SweepPoint]) -> tuple[SweepPoint, ...]:
    """`points` without repeats, in first-seen order: what `sweep` runs, each once."""
    return tuple(dict.fromkeys(points))


def model_runs(rows: int, subsets: int, points: int, batch_size: int = BATCH_SIZE) -> int:
    """How many model runs `sweep` makes: every subset and every distinct point (`unique_points`),
    once per batch."""
    return -(-rows // batch_size) * (subsets + points)


@contextmanager
def tracked(
    what: str, total: int, *, progress: bool = False, say: Callable[[str], None] | None = None
) -> Iterator[Advance]:
    """An `advance` for `sweep`: a transient rich bar when `progress`, else, given `say`, a line at
    each quarter of the runs once the sweep has lasted QUIET_S (`evaluation: 240/480 model runs,
    50 %, 6.1 s`), else nothing. The library stays quiet unless its caller asks."""
    if progress and total > 0:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        columns = (
            TextColumn("{task.description}"),
            BarColumn(20),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
        )
        with Progress(*columns, transient=True) as bar:
            task = bar.add_task(f"{what}: model runs", total=total)
            yield lambda n: bar.advance(task, n)
        return
    if say is None or total <= 0:
        yield lambda n: None
        return
    start = time.perf_counter()
    done, quarter = 0, 0

    def advance(n: int) -> None:
        nonlocal done, quarter
        done += n
        reached = min(4, 4 * done // total)
        if reached > quarter:
            quarter = reached
            seconds = time.perf_counter() - start
            if seconds >= QUIET_S:
                say(f"{what}: {done}/{total} model runs, {100 * done // total} %, {seconds:.1f} s")

    yield advance


class _Timer:
    """Encodes fields of a batch and keeps the time spent inside encoders."""

    def __init__(self) -> None:
        self.seconds = 0.0

    def encode(self, model: FusionModel, batch: Batch, fields: Sequence[str]) -> dict[str, EncoderOutput]:
        start = time.perf_counter()
        out = {f: model.encoders[f](batch.values[f], batch.present[f], batch.masks.get(f)) for f in fields}
        self.seconds += time.perf_counter() - start
        return out


def _check(
    model: FusionModel,
    subsets: Mapping[str, Sequence[str] | None],
    points: Sequence[SweepPoint],
    modalities: Mapping[str, Any],
) -> None:
    fields = list(model.encoders)
    for name, keep in subsets.items():
        unknown = [f for f in keep or () if f not in fields]
        if unknown:
            raise ConfigError(f"subset '{name}': fields {unknown} are not the model's; fields: {fields}")
    for point in points:
        if len(point.fields) != len(point.perturbations) or not point.fields:
            raise ConfigError(f"sweep point {point}: give one perturbation per field, at least one field")
        for field, name in zip(point.fields, point.perturbations, strict=True):
            if field not in fields:
                raise ConfigError(f"sweep point: field '{field}' is not the model's; fields: {fields}")
            if field not in modalities:
                raise ConfigError(
                    f"sweep point: no modality given for field '{field}'; pass "
                    "modalities={field: modality} (trained.modalities)"
                )
            PERTURBATIONS.get(name)  # unknown name → did-you-mean error
