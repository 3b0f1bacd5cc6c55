"""The calibration state a classifier predicts with: a temperature per subset of present fields
(`SubsetTemperatures`), read from and written to calibration.json. Fitting it is evaluation's job
(plait.evaluation.subset_temperatures); applying it needs nothing but this module.

At prediction time `temperature_for` finds the group of exactly the fields present; a subset never
seen (or empty) uses the fallback. Keys name a subset for people and JSON: sorted field names
joined by "+", "all" for every field. Lookups go by the set of fields, never by parsing a key.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from plait.errors import BundleError, DataError

ALL_KEY = "all"
FORMAT_VERSION = 1


def subset_key(present: Iterable[str], fields: Sequence[str], imputed: Iterable[str] = ()) -> str:
    """'all' when every field is present, else the present fields sorted and joined by '+'; with
    imputed fields (space.impute), '|imputed:' and those, sorted: 'sound+specs|imputed:thermal'."""
    chosen = set(present)
    base = ALL_KEY if chosen == set(fields) else "+".join(sorted(chosen))
    filled = sorted(imputed)
    return base + (f"|imputed:{'+'.join(filled)}" if filled else "")


@dataclass(frozen=True)
class SubsetFit:
    fields: tuple[str, ...]  # the fields present, sorted
    temperature: float
    rows: int  # validation rows with exactly these fields present (observed or by ablation)
    errors: int  # of them, wrongly predicted
    ece_before: float  # on those rows, unscaled
    ece_after: float  # on those rows, divided by `temperature`
    fitted: bool  # False: too few rows or errors; `temperature` is the fallback
    imputed: tuple[str, ...] = ()  # fields synthesised from the others (space.impute), sorted

    def to_json(self, fields: Sequence[str]) -> dict[str, Any]:
        return {
            "key": subset_key(self.fields, fields, self.imputed),
            "fields": list(self.fields),
            "imputed": list(self.imputed),
            "temperature": self.temperature,
            "rows": self.rows,
            "errors": self.errors,
            "ece_before": self.ece_before,
            "ece_after": self.ece_after,
            "fitted": self.fitted,
        }


@dataclass(frozen=True)
class SubsetTemperatures:
    fields: tuple[str, ...]  # the model's fields, in model order
    fallback: float  # for subsets not fitted or never seen
    subsets: tuple[SubsetFit, ...]  # largest subsets first
    rows: int  # validation rows fitted on
    n_bins: int = 15  # of the ECE figures
    _lookup: Mapping[tuple[frozenset[str], frozenset[str]], float] = field(
        init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        temperatures = [self.fallback, *(s.temperature for s in self.subsets)]
        if not all(isinstance(t, float | int) and 0.0 < t < float("inf") for t in temperatures):
            raise DataError(
                f"subset temperatures: every temperature must be a positive number; got {temperatures}"
            )
        lookup: dict[tuple[frozenset[str], frozenset[str]], float] = {}
        for s in self.subsets:
            key = (frozenset(s.fields), frozenset(s.imputed))
            valid = key[0] and (key[0] | key[1]) <= set(self.fields) and not key[0] & key[1]
            if not valid or key in lookup:
                raise DataError(
                    f"subset temperatures: subset {list(s.fields)} (imputed {list(s.imputed)}) must be a "
                    f"non-empty subset of the fields {list(self.fields)}, apart from the imputed ones, "
                    "listed once"
                )
            lookup[key] = float(s.temperature)
        object.__setattr__(self, "_lookup", lookup)

    @property
    def by_key(self) -> dict[str, SubsetFit]:
        return {subset_key(s.fields, self.fields, s.imputed): s for s in self.subsets}

    def temperature_for(self, present_fields: Iterable[str], imputed: Iterable[str] = ()) -> float:
        """The temperature of exactly these present fields (and these imputed ones); the fallback
        when that subset was not seen (or is empty)."""
        present = frozenset(present_fields)
        filled = frozenset(imputed)
        unknown = sorted((present | filled) - set(self.fields))
        if unknown:
            raise DataError(
                f"temperature_for: fields {unknown} are not the model's; "
                f"expected names among {list(self.fields)}"
            )
        return self._lookup.get((present, filled), self.fallback)

    def apply_temperatures(
        self, logits: Tensor, present: Mapping[str, Tensor], imputed: Mapping[str, Tensor] | None = None
    ) -> Tensor:
        """Each row of logits (N, K) divided by the temperature of its own present fields (and its
        imputed ones); present[f]: BoolTensor[N] for every field, imputed[f] for some."""
        missing = [f for f in self.fields if f not in present]
        if missing:
            raise DataError(
                f"apply_temperatures: no presence mask for fields {missing}; pass a BoolTensor[N] for every "
                f"field of {list(self.fields)}"
            )
        n = int(logits.shape[0]) if logits.ndim == 2 else -1
        bad = {f: tuple(present[f].shape) for f in self.fields if tuple(present[f].shape) != (n,)}
        if logits.ndim != 2 or bad:
            raise DataError(
                f"apply_temperatures: expected logits (N, K) and presence masks (N,); "
                f"got logits {tuple(logits.shape)} and masks {bad}"
            )
        if n == 0:
            return logits.clone()
        filled = imputed or {}
        mask = torch.stack(
            [present[f].bool() for f in self.fields]
            + [filled[f].bool() if f in filled else torch.zeros_like(present[f].bool()) for f in self.fields],
            dim=1,
        )  # (N, 2F): present, then imputed
        patterns, group = torch.unique(mask.cpu(), dim=0, return_inverse=True)  # (G, 2F), (N,)
        width = len(self.fields)
        per_group = [
            self.temperature_for(
                (f for f, on in zip(self.fields, row[:width], strict=True) if on),
                (f for f, on in zip(self.fields, row[width:], strict=True) if on),
            )
            for row in patterns.tolist()
        ]
        temperature = torch.tensor(per_group, dtype=logits.dtype, device=logits.device)[
            group.to(logits.device)
        ]
        return logits / temperature.unsqueeze(1)  # (N, K) / (N, 1)

    def summary(self) -> str:
        """One line for the training log: which subsets got a temperature other than 1."""
        scaled = [s for s in self.subsets if s.fitted and s.temperature != 1.0]
        kept = sum(1 for s in self.subsets if s.fitted and s.temperature == 1.0)
        few = len(self.subsets) - len(scaled) - kept
        shown = ", ".join(
            f"{subset_key(s.fields, self.fields, s.imputed)} {s.temperature:.2f}" for s in scaled[:6]
        )
        more = f", … {len(scaled) - 6} more" if len(scaled) > 6 else ""
        rest = f"{kept} showed no miscalibration (T = 1), {few} had too few rows or errors to fit"
        head = f"calibration on {self.rows} validation rows: "
        if not scaled:
            return head + f"no field subset gets a temperature ({rest})"
        return (
            head + f"temperature ≠ 1 for {len(scaled)} of {len(self.subsets)} subsets ({shown}{more}); {rest}"
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "version": FORMAT_VERSION,
            "fields": list(self.fields),
            "fallback": self.fallback,
            "rows": self.rows,
            "n_bins": self.n_bins,
            "subsets": [s.to_json(self.fields) for s in self.subsets],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SubsetTemperatures:
        if not isinstance(data, Mapping) or data.get("version") != FORMAT_VERSION:
            version = data.get("version") if isinstance(data, Mapping) else type(data).__name__
            raise BundleError(
                f"subset temperatures: expected a mapping with version {FORMAT_VERSION}; got {version!r}; "
                "refit the calibration with this plait version"
            )
        try:
            return cls(
                fields=tuple(str(f) for f in data["fields"]),
                fallback=float(data["fallback"]),
                rows=int(data["rows"]),
                n_bins=int(data["n_bins"]),
                subsets=tuple(
                    SubsetFit(
                        fields=tuple(str(f) for f in s["fields"]),
                        temperature=float(s["temperature"]),
                        rows=int(s["rows"]),
                        errors=int(s["errors"]),
                        ece_before=float(s["ece_before"]),
                        ece_after=float(s["ece_after"]),
                        fitted=bool(s["fitted"]),
                        imputed=tuple(str(f) for f in s.get("imputed") or ()),
                    )
                    for s in data["subsets"]
                ),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise BundleError(f"subset temperatures: malformed state ({type(exc).__name__}: {exc})") from None
