"""Temperature scaling per subset of present fields: a model's confidence with its camera dead
is calibrated too, with its own temperature.

Fitting (`fit_subset_temperatures`) runs the model on the validation rows once per planned subset
of fields (encoding each batch once: `run_model_subsets`) and groups every (row, output) by the
fields that were really present — the planned subset intersected with the row's own presence,
so a row whose camera is missing in the data counts for "camera dead" too. Each group with
enough rows and errors gets its own temperature; the others use the fallback.

The planned subsets, in order, capped at `max_subsets` runs (default 32; the first ones kept):
all fields; every leave-one-field-out subset (one sensor dies: the common failure); every field
alone; and, with at most 4 fields, every other non-empty subset (at most 15 in all).

A fitted temperature is kept only when the validation rows support it (`supported_temperature`:
a likelihood-ratio test of T against 1); otherwise the group is already calibrated as far as these
rows can tell, and T = 1.

The fallback temperature is fitted on the all-fields run: every validation row with the fields it
has (plain, global temperature scaling). A group with fewer than `min_rows` rows or fewer than
`min_errors` wrong predictions keeps the fallback — with no errors the NLL falls without end as
T shrinks, and a handful of rows gives a noisy T. The fallback itself is 1.0 under the same rule.
The fitted state, `SubsetTemperatures`, lives with the model (plait.models.calibration): predicting
with it needs no evaluation code.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence

import numpy as np
import torch
from torch import Tensor

from plait.data.dataset import TensorTable
from plait.errors import ConfigError, DataError
from plait.evaluation.calibration import expected_calibration_error
from plait.evaluation.temperature import supported_temperature
from plait.models.calibration import ALL_KEY, SubsetFit, SubsetTemperatures, subset_key
from plait.models.fusion_model import FusionModel
from plait.models.inference import ImputedRun, run_imputed, run_model_subsets

MAX_SUBSETS = 32
ALL_SUBSETS_UP_TO = 4  # with this many fields or fewer, every non-empty subset is planned
MIN_ROWS = 30
MIN_ERRORS = 2


def plan_subsets(fields: Sequence[str], max_subsets: int = MAX_SUBSETS) -> list[tuple[str, ...]]:
    """The subsets of fields to run, in priority order (see the module docstring), at most
    `max_subsets`; each keeps the model's field order."""
    if isinstance(max_subsets, bool) or not isinstance(max_subsets, int) or max_subsets < 1:
        raise ConfigError(f"max_subsets: expected an integer ≥ 1; got {max_subsets!r}")
    order = tuple(fields)
    candidates: list[tuple[str, ...]] = [order]
    candidates += [tuple(f for f in order if f != left_out) for left_out in order]
    candidates += [(f,) for f in order]
    if len(order) <= ALL_SUBSETS_UP_TO:
        for size in range(len(order) - 1, 0, -1):
            candidates += list(itertools.combinations(order, size))
    plan: list[tuple[str, ...]] = []
    for subset in candidates:
        if subset and subset not in plan:
            plan.append(subset)
    return plan[:max_subsets]


def fit_subset_temperatures(
    model: FusionModel,
    table: TensorTable,
    rows: Sequence[int] | np.ndarray | Tensor,
    fields: Sequence[str],
    *,
    max_subsets: int = MAX_SUBSETS,
    min_rows: int = MIN_ROWS,
    min_errors: int = MIN_ERRORS,
    n_bins: int = 15,
    batch_size: int = 512,
) -> SubsetTemperatures:
    """Fit a temperature per subset of present fields on `rows` (the validation split) of a
    classification table; `fields` are the model's fields."""
    order = tuple(fields)
    if set(order) != set(model.encoders) or len(order) != len(set(order)):
        raise ConfigError(
            f"fit_subset_temperatures: fields {list(order)} must be the model's fields "
            f"{list(model.encoders)}, each once"
        )
    if table.target is None or table.target.is_floating_point():
        got = "no target" if table.target is None else f"a {table.target.dtype} target"
        raise DataError(
            f"fit_subset_temperatures: temperature scaling needs class-index targets; the table has {got} "
            "(regression models are not calibrated this way)"
        )
    idx = torch.as_tensor(rows, dtype=torch.long)
    if len(idx) == 0:
        return SubsetTemperatures(fields=order, fallback=1.0, subsets=(), rows=0, n_bins=n_bins)
    target = table.target[idx].long().cpu()  # (N,)
    plan = plan_subsets(order, max_subsets)
    runs = {subset_key(s, order): (None if s == order else list(s)) for s in plan}
    outputs = run_model_subsets(model, table, idx, runs, batch_size=batch_size)

    def fit(logits: Tensor, y: Tensor) -> float | None:
        errors = int((logits.argmax(dim=1) != y).sum())
        if len(y) < min_rows or errors < min_errors:
            return None
        return supported_temperature(logits, y)

    fitted_all = fit(outputs[ALL_KEY].output.cpu(), target.cpu())
    fallback = 1.0 if fitted_all is None else fitted_all
    groups = group_by_present(
        {s: outputs[subset_key(s, order)].output.cpu() for s in plan},
        torch.stack([table.present[f][idx].bool() for f in order], dim=1),  # (N, F)
        order,
    )

    def fitted(fields: tuple[str, ...], imputed: tuple[str, ...], logits: Tensor, y: Tensor) -> SubsetFit:
        temperature = fit(logits, y)
        t = fallback if temperature is None else temperature
        return SubsetFit(
            fields=fields,
            temperature=t,
            rows=len(y),
            errors=int((logits.argmax(dim=1) != y).sum()),
            ece_before=expected_calibration_error(logits, y, n_bins),
            ece_after=expected_calibration_error(logits / t, y, n_bins),
            fitted=temperature is not None,
            imputed=imputed,
        )

    subsets = []
    for present, rows_of in groups.items():
        logits = torch.cat([o for o, _ in rows_of])  # (n, K)
        y = torch.cat([target[r] for _, r in rows_of])  # (n,)
        subsets.append(fitted(tuple(sorted(present)), (), logits, y))
    if model.imputer is not None:  # `impute: embedding` predictions have their own subsets
        runs_imputed = run_imputed(model, table, idx, runs, batch_size=batch_size)
        for (observed, imputed), logits, y in imputed_groups(runs_imputed, order, target):
            subsets.append(fitted(observed, imputed, logits, y))
    subsets.sort(key=lambda s: (-len(s.fields), s.fields, s.imputed))
    return SubsetTemperatures(
        fields=order, fallback=fallback, subsets=tuple(subsets), rows=len(idx), n_bins=n_bins
    )


def group_by_present(
    outputs: Mapping[tuple[str, ...], Tensor], present: Tensor, order: tuple[str, ...]
) -> dict[frozenset[str], list[tuple[Tensor, Tensor]]]:
    """(output rows, row positions) per set of fields really present: the run's subset ∩ the
    row's own presence (N, F). A row reaching the same set through two runs has the same output
    (fusions ignore absent fields exactly), so it is counted once."""
    groups: dict[frozenset[str], list[tuple[Tensor, Tensor]]] = {}
    seen: dict[frozenset[str], Tensor] = {}  # set → BoolTensor[N] of rows already counted
    for subset, output in outputs.items():
        planned = torch.tensor([f in subset for f in order])  # (F,)
        effective = present & planned  # (N, F)
        patterns, group = torch.unique(effective, dim=0, return_inverse=True)
        for g, pattern in enumerate(patterns.tolist()):
            fields = frozenset(f for f, on in zip(order, pattern, strict=True) if on)
            if not fields:
                continue  # nothing present: no subset to calibrate
            counted = seen.setdefault(fields, torch.zeros(len(group), dtype=torch.bool))
            take = (group == g) & ~counted  # (N,)
            if bool(take.any()):
                counted |= take
                positions = take.nonzero().squeeze(1)
                groups.setdefault(fields, []).append((output[positions], positions))
    return groups


def imputed_groups(
    runs: Mapping[str, ImputedRun], order: tuple[str, ...], target: Tensor
) -> list[tuple[tuple[tuple[str, ...], tuple[str, ...]], Tensor, Tensor]]:
    """((observed fields, imputed fields), logits (n, K), targets (n,)) per pair of sets met in
    the imputed runs, only where something was imputed; a row reaching the same pair through two
    runs has the same output and is counted once. Fields sorted."""
    groups: dict[tuple[tuple[str, ...], tuple[str, ...]], list[tuple[Tensor, Tensor]]] = {}
    seen: dict[tuple[tuple[str, ...], tuple[str, ...]], Tensor] = {}
    for run in runs.values():
        observed = torch.stack([run.observed[f].cpu() for f in order], dim=1)  # (N, F)
        filled = torch.stack(
            [
                run.imputed[f].cpu() if f in run.imputed else torch.zeros_like(run.observed[f].cpu())
                for f in order
            ],
            dim=1,
        )  # (N, F)
        patterns, group = torch.unique(torch.cat([observed, filled], dim=1), dim=0, return_inverse=True)
        for g, pattern in enumerate(patterns.tolist()):
            present = tuple(sorted(f for f, on in zip(order, pattern[: len(order)], strict=True) if on))
            imputed = tuple(sorted(f for f, on in zip(order, pattern[len(order) :], strict=True) if on))
            if not present or not imputed:
                continue
            counted = seen.setdefault((present, imputed), torch.zeros(len(group), dtype=torch.bool))
            take = (group == g) & ~counted
            if bool(take.any()):
                counted |= take
                positions = take.nonzero().squeeze(1)
                groups.setdefault((present, imputed), []).append((run.out.output.cpu()[positions], positions))
    return [
        (key, torch.cat([o for o, _ in parts]), torch.cat([target[r] for _, r in parts]))
        for key, parts in groups.items()
    ]
