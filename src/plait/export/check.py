"""Does the exported graph give the torch model's outputs for every subset of fields?

`graph_diffs(model, graph, batch)`: for each subset of the model's fields (all 2^n of them up to
10 fields, the empty one included: the model answers a record with every field missing; a fixed
sample of 1,024 above), the largest
|torch - graph| of the output on `batch`, the subset's fields kept where the batch has them.
`check_on_table(...)`: the same on labelled rows, with the task's headline metric per subset for
torch and each graph — the int8 graph's accuracy delta per subset.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from plait.data.dataset import TensorTable
from plait.export.session import OnnxModel
from plait.models.fusion_model import FusionModel
from plait.models.inference import only_fields
from plait.task import Task
from plait.types import Batch

NONE = "(none)"


MAX_SUBSETS = 1024  # 2^10: with more fields, a fixed sample of subsets is checked (see below)


def all_subsets(fields: Sequence[str]) -> list[tuple[str, ...]]:
    """Every subset of `fields` in model order, largest first; the empty subset last. Above
    MAX_SUBSETS (more than 10 fields: 2^n runs would take hours), every subset of size 0, 1, n−1
    and n, and a fixed random sample (seed 0) of the others, up to MAX_SUBSETS in all."""
    n = len(fields)
    if 2**n <= MAX_SUBSETS:
        return [c for k in range(n, -1, -1) for c in itertools.combinations(fields, k)]
    edges = [c for k in (n, n - 1, 1, 0) for c in itertools.combinations(fields, k)]
    rng = np.random.default_rng(0)
    chosen: set[tuple[str, ...]] = set(edges)
    while len(chosen) < MAX_SUBSETS:
        keep = rng.random(n) < 0.5
        chosen.add(tuple(f for f, k in zip(fields, keep, strict=True) if k))
    return sorted(chosen, key=lambda c: (-len(c), [fields.index(f) for f in c]))


def subset_name(subset: Sequence[str]) -> str:
    return "+".join(subset) if subset else NONE


@torch.inference_mode()
def graph_diffs(model: FusionModel, graph: OnnxModel, batch: Batch) -> dict[str, float]:
    """subset name -> max |torch - graph| of the output (B, K) under that subset (torch encodes once)."""
    model.eval()
    encoded = model.encode(batch)
    out: dict[str, float] = {}
    for subset in all_subsets(graph.field_order):
        present = only_fields(subset)(batch.present)
        expected = model.decide(encoded, present).float().output  # (B, K)
        got = graph.run(batch.values, batch.masks, present).out.output
        out[subset_name(subset)] = float((expected - got).abs().max())
    return out


@dataclass(frozen=True)
class SubsetCheck:
    """One subset of fields on labelled rows: the largest output difference from torch of each
    graph ("fp32", "int8"), and the headline metric of torch and of each graph."""

    subset: str
    rows: int
    max_abs_diff: Mapping[str, float]
    metric: Mapping[str, float]  # "torch", "fp32", "int8" -> the task's headline metric

    def delta(self, runtime: str) -> float:
        """The metric of `runtime` less torch's (accuracy: negative = worse; rmse: positive = worse)."""
        return self.metric[runtime] - self.metric["torch"]


@torch.inference_mode()
def check_on_table(
    model: FusionModel,
    task: Task,
    graphs: Mapping[str, OnnxModel],
    table: TensorTable,
    rows: Sequence[int] | Tensor | np.ndarray,
    *,
    batch_size: int = 256,
) -> list[SubsetCheck]:
    """Each subset of fields on `rows` of `table` (which has targets): torch against each graph
    (name -> model, e.g. {"fp32": ..., "int8": ...})."""
    if table.target is None:
        raise ValueError("check_on_table: the table has no targets; load it with its labels")
    model.eval()
    idx = torch.as_tensor(rows, dtype=torch.long)
    subsets = all_subsets(tuple(model.encoders))
    runs: dict[str, dict[str, list[Tensor]]] = {subset_name(s): {} for s in subsets}
    for start in range(0, len(idx), batch_size):
        batch = table.batch(idx[start : start + batch_size])
        encoded = model.encode(batch)
        for subset in subsets:
            present = only_fields(subset)(batch.present)
            outputs = {"torch": model.decide(encoded, present).float()}
            outputs.update(
                {name: g.run(batch.values, batch.masks, present).out for name, g in graphs.items()}
            )
            for name, one in outputs.items():
                runs[subset_name(subset)].setdefault(name, []).append(one.output)
    target = table.target[idx]
    return [_subset_check(name, parts, target, task) for name, parts in runs.items()]


def _subset_check(name: str, parts: Mapping[str, list[Tensor]], target: Tensor, task: Task) -> SubsetCheck:
    outputs = {runtime: torch.cat(chunks) for runtime, chunks in parts.items()}  # (N, K) each
    reference = outputs["torch"]
    diffs = {
        runtime: float((o - reference).abs().max()) for runtime, o in outputs.items() if runtime != "torch"
    }
    metric = {runtime: task.metrics(o, target)[task.headline_metric] for runtime, o in outputs.items()}
    return SubsetCheck(name, int(target.shape[0]), diffs, metric)
