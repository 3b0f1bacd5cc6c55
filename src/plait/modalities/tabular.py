"""A group of numeric and categorical columns read as one field.

`TabularModality("specs", numeric=["power_kw", "age_y"], categorical=["maker"])` turns one row into
FloatTensor[C] (C = numeric + categorical columns): standardised numbers (NaN where missing), then
category indices as floats (0 = unknown or missing). The encoder makes one token per column.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import polars as pl
import torch
from torch import Tensor, nn

from plait.errors import BundleError, ConfigError, DataError
from plait.modalities.base import JSONState, NotFittedError, require_columns, row_numbers, zero_absent
from plait.modalities.contract import InputLimits, InputSpec, Role, Widget
from plait.modalities.options import positive_int
from plait.modalities.summary import masked_values
from plait.types import Absent, EncoderOutput

# Text that spreadsheets and exports write for "no value"; it means missing, not a bad number.
MISSING_TEXT = frozenset({"", "na", "n/a", "nan", "null", "none", "-", "?"})
MAX_SHOWN = 5
STATE_KEYS = ("numeric", "categorical", "max_levels", "mean", "std", "levels")


def parse_number(value: object) -> float | None:
    """A finite float, or None when the value is missing, non-finite or not a number."""
    if value is None or isinstance(value, (list, tuple, dict, bytes)):
        return None
    if isinstance(value, str) and value.strip().lower() in MISSING_TEXT:
        return None
    try:
        number = float(value)  # type: ignore[arg-type]  # numpy scalars, Decimal, bool, str …
    except (TypeError, ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None


def _is_bad_text(value: object) -> bool:
    """Text that is neither a number nor a missing marker (what `fit` refuses)."""
    return (
        isinstance(value, str) and value.strip().lower() not in MISSING_TEXT and parse_number(value) is None
    )


def category_key(value: object) -> str | None:
    """The level name of one categorical cell, or None when missing. 3, 3.0 and "3" are one level."""
    if value is None:
        return None
    if isinstance(value, (float, np.floating)):
        value = float(value)
        if math.isnan(value):
            return None
        if value.is_integer():
            return str(int(value))
    text = str(value).strip()
    return text if text else None


def _column_names(field: str, key: str, value: object) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, (list, tuple)) or not all(isinstance(c, str) for c in value):
        raise ConfigError(f"fields.{field}.{key}: expected a list of column names, got {value!r}")
    return list(value)


class TabularModality:
    """Numeric + categorical columns → FloatTensor[C]; collate adds a per-column observed mask."""

    kind: ClassVar[str] = "tabular"
    perturbations: ClassVar[tuple[str, ...]] = ("gaussian_noise", "category_swap")
    noise_family: ClassVar[str] = "gaussian_noise"

    def __init__(
        self,
        name: str,
        *,
        numeric: list[str] | None = None,
        categorical: list[str] | None = None,
        max_levels: int = 100,
    ) -> None:
        self.name = name
        self.numeric = _column_names(name, "numeric", numeric)
        self.categorical = _column_names(name, "categorical", categorical)
        if not self.numeric and not self.categorical:
            raise ConfigError(
                f"fields.{name}: a tabular field needs at least one column; "
                "list them under `numeric` and/or `categorical`"
            )
        both = sorted(set(self.numeric) & set(self.categorical))
        repeated = sorted(c for c, n in Counter(self.numeric + self.categorical).items() if n > 1)
        if repeated:
            where = "both `numeric` and `categorical`" if both else "twice"
            raise ConfigError(
                f"fields.{name}: column(s) {', '.join(repeated)} listed {where}; list each column once"
            )
        self.max_levels = positive_int(name, "max_levels", max_levels)
        self.mean_: list[float] | None = None
        self.std_: list[float] | None = None
        self.levels_: list[list[str]] | None = None
        self._index: list[dict[str, int]] = []

    def perturbation_context(self) -> dict[str, Any]:
        """How many leading columns are numeric (noise touches only those) and each categorical
        column's level count (category_swap)."""
        state = self.get_state()
        return {"numeric_columns": len(state["numeric"]), "level_counts": [len(c) for c in state["levels"]]}

    def columns(self) -> tuple[str, ...]:
        return (*self.numeric, *self.categorical)

    def input_spec(self, limits: InputLimits) -> InputSpec:
        """One key per column: a number for each numeric column, a level for each categorical one."""
        roles: dict[str, Role] = {c: "number" for c in self.numeric}
        roles.update({c: "category" for c in self.categorical})
        return InputSpec(
            roles=roles,
            accepts="one key per column: numbers for numeric columns, strings for categorical ones",
            widget=Widget("columns"),
        )

    def value_columns(self) -> tuple[str, ...]:
        """Every column: numbers and categories are read as they are (checked for label leaks)."""
        return self.columns()

    def fit(self, table: pl.DataFrame, root: Path) -> None:
        require_columns(table, self.name, self.columns())
        rows = row_numbers(table)
        stats = [self._numeric_stats(table[c], rows) for c in self.numeric]
        self.mean_ = [m for m, _ in stats]
        self.std_ = [s for _, s in stats]
        self._set_levels([self._levels(table[c]) for c in self.categorical])

    def _numeric_values(self, series: pl.Series, rows: list[int] | None = None) -> np.ndarray:
        """float64 values of one numeric column, NaN where missing; raises on text that is no number."""
        if series.dtype == pl.String:
            raw = series.to_list()
            numbers = rows if rows is not None else list(range(len(raw)))
            bad = [(numbers[i], v) for i, v in enumerate(raw) if _is_bad_text(v)]
            if bad:
                raise self._text_in_numeric(series.name, bad)
            return np.array(
                [math.nan if (x := parse_number(v)) is None else x for v in raw], dtype=np.float64
            )
        if series.dtype.is_numeric() or series.dtype in (pl.Boolean, pl.Null):
            return series.cast(pl.Float64).to_numpy().astype(np.float64)
        raise DataError(
            f"field '{self.name}': numeric column '{series.name}' has type {series.dtype}, expected "
            "numbers; convert it to numbers or list the column under `categorical`"
        )

    def _text_in_numeric(self, column: str, bad: list[tuple[int, Any]]) -> DataError:
        shown = ", ".join(f"row {i}: {v!r}" for i, v in bad[:MAX_SHOWN])
        more = f" (first {MAX_SHOWN} shown)" if len(bad) > MAX_SHOWN else ""
        return DataError(
            f"field '{self.name}': numeric column '{column}' has text that is not a number in "
            f"{len(bad)} training row(s): {shown}{more}; expected numbers such as 3.5 or -2 "
            "(or an empty cell for a missing value); clean these values or list the column under "
            "`categorical`"
        )

    def _numeric_stats(self, series: pl.Series, rows: list[int]) -> tuple[float, float]:
        values = self._numeric_values(series, rows)
        values = values[np.isfinite(values)]
        if values.size == 0:
            return 0.0, 1.0  # never observed in training: nothing to standardise against
        mean, std = float(values.mean()), float(values.std())
        return mean, (std if std > 0 and math.isfinite(std) else 1.0)

    def _levels(self, series: pl.Series) -> list[str]:
        counts = Counter(k for k in map(category_key, series.to_list()) if k is not None)
        # Ties in frequency are broken by name so the same table always gives the same levels.
        frequent = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[: self.max_levels]
        return sorted(level for level, _ in frequent)

    def _set_levels(self, levels: list[list[str]]) -> None:
        self.levels_ = levels
        self._index = [{level: i + 1 for i, level in enumerate(col)} for col in levels]

    def _check_fitted(self) -> tuple[list[float], list[float], list[list[str]]]:
        if self.mean_ is None or self.std_ is None or self.levels_ is None:
            raise NotFittedError.for_field(self.name, self.kind)
        return self.mean_, self.std_, self.levels_

    def get_state(self) -> JSONState:
        mean, std, levels = self._check_fitted()
        return {
            "numeric": list(self.numeric),
            "categorical": list(self.categorical),
            "max_levels": self.max_levels,
            "mean": list(mean),
            "std": list(std),
            "levels": [list(col) for col in levels],
        }

    def set_state(self, state: JSONState) -> None:
        missing = [key for key in STATE_KEYS if key not in state]
        if missing:
            raise BundleError(
                f"field '{self.name}': tabular state lacks {', '.join(missing)}; "
                "the preprocessing state is from another version or was edited — re-save the bundle"
            )
        numeric, categorical = list(state["numeric"]), list(state["categorical"])
        if len(state["mean"]) != len(numeric) or len(state["levels"]) != len(categorical):
            raise BundleError(
                f"field '{self.name}': tabular state is inconsistent ({len(numeric)} numeric columns "
                f"but {len(state['mean'])} means; {len(categorical)} categorical columns but "
                f"{len(state['levels'])} level lists); re-save the bundle"
            )
        self.numeric, self.categorical = numeric, categorical
        self.max_levels = int(state["max_levels"])
        self.mean_ = [float(m) for m in state["mean"]]
        self.std_ = [float(s) for s in state["std"]]
        self._set_levels([[str(level) for level in col] for col in state["levels"]])

    def load(self, row: Mapping[str, Any], root: Path) -> Tensor | Absent:
        mean, std, _ = self._check_fitted()
        values: list[float] = []
        observed = 0
        unreadable: list[str] = []  # cells with a value that is no finite number: masked and counted
        for c, column in enumerate(self.numeric):
            raw = row.get(column)
            number = parse_number(raw)
            observed += number is not None
            infinite = isinstance(raw, (int, float)) and not isinstance(raw, bool) and math.isinf(raw)
            if number is None and (_is_bad_text(raw) or infinite):
                unreadable.append(f"{column}={raw!r}")
            values.append(math.nan if number is None else (number - mean[c]) / std[c])
        for c, column in enumerate(self.categorical):
            key = category_key(row.get(column))
            observed += key is not None  # an unseen level is a value (unknown), not a missing one
            values.append(0.0 if key is None else float(self._index[c].get(key, 0)))
        if observed == 0:
            if unreadable:  # text or ±inf where a number belongs: not an empty cell
                return Absent("not a number", ", ".join(unreadable[:3]))
            return Absent("empty", f"none of {', '.join(self.columns())} has a value")
        return torch.tensor(values, dtype=torch.float32)  # (C,)

    def collate(self, items: Sequence[Tensor | None]) -> tuple[Tensor, Tensor | None]:
        width = len(self.numeric) + len(self.categorical)
        values = torch.full((len(items), width), math.nan)
        for i, item in enumerate(items):
            if item is not None:
                values[i] = item
        n = len(self.numeric)
        mask = torch.cat([torch.isfinite(values[:, :n]), values[:, n:] > 0], dim=1)  # (B, C)
        return torch.nan_to_num(values, nan=0.0), mask

    def summary_features(self, values: Tensor, mask: Tensor | None) -> Tensor:
        """For the boosting baseline: the columns themselves (category codes), NaN where unobserved."""
        return masked_values(values, mask)  # (B, C)

    def build_encoder(self, dim: int) -> TabularEncoder:
        _, _, levels = self._check_fitted()
        return TabularEncoder(
            n_numeric=len(self.numeric), level_counts=[len(col) for col in levels], output_dim=dim
        )


class TabularEncoder(nn.Module):
    """One token per column plus a column embedding; pooled = MLP(mean of the column tokens).

    A missing numeric column gets its own learned "missing" token and a categorical column's index
    0 its own learned "unknown" embedding, so every token is real (token_mask None) and missingness
    itself is something the model can use.
    """

    def __init__(self, n_numeric: int, level_counts: Sequence[int], output_dim: int) -> None:
        super().__init__()
        self.output_dim = output_dim
        self.n_numeric = n_numeric
        self.level_counts = list(level_counts)
        width = n_numeric + len(self.level_counts)
        self.weight = nn.Parameter(torch.randn(n_numeric, output_dim) * 0.1)
        self.bias = nn.Parameter(torch.zeros(n_numeric, output_dim))
        self.missing = nn.Parameter(torch.randn(n_numeric, output_dim) * 0.1)
        self.categories = nn.ModuleList(nn.Embedding(k + 1, output_dim) for k in self.level_counts)
        self.column = nn.Parameter(torch.randn(width, output_dim) * 0.02)
        self.norm = nn.LayerNorm(output_dim)
        self.head = nn.Sequential(
            nn.LayerNorm(output_dim), nn.Linear(output_dim, output_dim), nn.GELU(),
            nn.Linear(output_dim, output_dim),
        )  # fmt: skip

    def forward(self, x: Tensor, present: Tensor, mask: Tensor | None = None) -> EncoderOutput:
        n = self.n_numeric
        numbers = x[:, :n]  # (B, Cn)
        observed = torch.isfinite(numbers) if mask is None else mask[:, :n].to(torch.bool)
        numbers = torch.nan_to_num(numbers, nan=0.0, posinf=0.0, neginf=0.0)
        parts = []
        if n > 0:
            tok = numbers.unsqueeze(-1) * self.weight + self.bias  # (B, Cn) -> (B, Cn, D)
            parts.append(torch.where(observed.unsqueeze(-1), tok, self.missing.expand_as(tok)))
        for c, embed in enumerate(self.categories):
            index = torch.nan_to_num(x[:, n + c], nan=0.0).long().clamp(0, self.level_counts[c])
            parts.append(embed(index).unsqueeze(1))  # (B,) -> (B, 1, D)
        tokens = self.norm(torch.cat(parts, dim=1) + self.column)  # (B, C, D)
        keep = present.to(tokens.dtype)
        tokens = tokens * keep[:, None, None]
        pooled = zero_absent(self.head(tokens.mean(dim=1)), present)  # (B, C, D) -> (B, D)
        return EncoderOutput(tokens=tokens, pooled=pooled, token_mask=None)
