"""Sample table → tensors: every row is loaded once through its fields' modality plug-ins.

A value that cannot be used becomes an absent field for that row and is counted here with its
reason and row numbers; no row is dropped and no value is borrowed from another row.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from dataclasses import field as dc_field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import torch
from torch import Tensor

from plait.errors import DataError
from plait.modalities.base import Modality
from plait.types import Absent, Batch

EXAMPLE_ROWS = 5


@dataclass(frozen=True)
class FieldLoadReport:
    field: str
    kind: str
    rows: int
    absent: int
    reasons: Mapping[str, int] = dc_field(default_factory=dict)  # reason → count
    example_rows: Mapping[str, tuple[int, ...]] = dc_field(default_factory=dict)  # reason → first rows
    example_detail: Mapping[str, str] = dc_field(default_factory=dict)  # reason → first detail
    partial: int = 0  # present rows with some readings missing (NaN/Inf cells or steps, masked)
    partial_values: int = 0  # how many readings those rows miss in all
    partial_rows: tuple[int, ...] = ()  # the first such rows

    @property
    def present(self) -> int:
        return self.rows - self.absent

    def merged(self, later: FieldLoadReport) -> FieldLoadReport:
        """The field's report over these rows and the later ones (see `LoadReport.merged`)."""
        reasons = Counter(self.reasons) + Counter(later.reasons)
        examples = {
            r: (self.example_rows.get(r, ()) + later.example_rows.get(r, ()))[:EXAMPLE_ROWS] for r in reasons
        }
        return FieldLoadReport(
            field=self.field,
            kind=self.kind,
            rows=self.rows + later.rows,
            absent=self.absent + later.absent,
            reasons=dict(reasons),
            example_rows=examples,
            example_detail={**later.example_detail, **self.example_detail},
            partial=self.partial + later.partial,
            partial_values=self.partial_values + later.partial_values,
            partial_rows=(self.partial_rows + later.partial_rows)[:EXAMPLE_ROWS],
        )

    def line(self) -> str:
        masked = ""
        if self.partial:
            rows = ", ".join(str(r) for r in self.partial_rows)
            more = "…" if self.partial > len(self.partial_rows) else ""
            masked = (
                f"; {self.partial} rows miss some readings ({self.partial_values} values masked, "
                f"not filled; rows {rows}{more})"
            )
        if self.absent == 0:
            return f"{self.field} ({self.kind}): all {self.rows} rows present{masked}"
        parts = []
        for reason, count in sorted(self.reasons.items(), key=lambda kv: -kv[1]):
            rows = ", ".join(str(r) for r in self.example_rows.get(reason, ()))
            more = "…" if count > len(self.example_rows.get(reason, ())) else ""
            detail = self.example_detail.get(reason, "")
            parts.append(f"{count} {reason} (rows {rows}{more}{'; ' + detail if detail else ''})")
        absent = f"{self.field} ({self.kind}): {self.absent} of {self.rows} rows absent — " + "; ".join(parts)
        return absent + masked

    def to_json(self) -> dict[str, Any]:
        return {
            "field": self.field,
            "kind": self.kind,
            "rows": self.rows,
            "absent": self.absent,
            "reasons": dict(self.reasons),
            "example_rows": {k: list(v) for k, v in self.example_rows.items()},
            "partial": self.partial,
            "partial_values": self.partial_values,
            "partial_rows": list(self.partial_rows),
        }


@dataclass(frozen=True)
class LoadReport:
    rows: int
    fields: tuple[FieldLoadReport, ...]

    @property
    def absent_total(self) -> int:
        return sum(f.absent for f in self.fields)

    def lines(self) -> list[str]:
        return [f.line() for f in self.fields]

    def to_json(self) -> dict[str, Any]:
        return {"rows": self.rows, "fields": [f.to_json() for f in self.fields]}

    def merged(self, later: LoadReport) -> LoadReport:
        """This report and that of the rows loaded after it (row numbers already offset), as one:
        counts added, the first example rows kept."""
        if not self.fields:
            return later
        theirs = {f.field: f for f in later.fields}
        return LoadReport(
            rows=self.rows + later.rows,
            fields=tuple(f.merged(theirs[f.field]) if f.field in theirs else f for f in self.fields),
        )


@dataclass(frozen=True)
class TensorTable:
    """All rows as tensors. values[f]: [N, ...]; present[f]: BoolTensor[N]; masks[f]: BoolTensor[N, L];
    target: [N] (long for classes, float for regression) or None."""

    values: Mapping[str, Tensor]
    present: Mapping[str, Tensor]
    masks: Mapping[str, Tensor]
    target: Tensor | None

    def __len__(self) -> int:
        return int(next(iter(self.present.values())).shape[0])

    def select(self, fields: Sequence[str]) -> TensorTable:
        """The same rows with only `fields` (no copy)."""
        return TensorTable(
            values={f: self.values[f] for f in fields},
            present={f: self.present[f] for f in fields},
            masks={f: self.masks[f] for f in fields if f in self.masks},
            target=self.target,
        )

    def batch(self, indices: Tensor | Sequence[int]) -> Batch:
        idx = torch.as_tensor(indices, dtype=torch.long)
        return Batch(
            values={f: v[idx] for f, v in self.values.items()},
            present={f: p[idx] for f, p in self.present.items()},
            masks={f: m[idx] for f, m in self.masks.items()},
            target=None if self.target is None else self.target[idx],
        )


def load_rows(
    rows: Sequence[Mapping[str, Any]],
    modalities: Mapping[str, Modality],
    root: Path,
    *,
    target: np.ndarray | None = None,
    progress: bool = False,
    row_offset: int = 0,
) -> tuple[TensorTable, LoadReport]:
    """Load every row through every field. `row_offset` shifts the row numbers in messages."""
    items: dict[str, list[Tensor | None]] = {f: [] for f in modalities}
    absences: dict[str, list[tuple[int, Absent]]] = {f: [] for f in modalities}
    partials: dict[str, list[tuple[int, int]]] = {f: [] for f in modalities}  # (row, missing readings)
    # A plug-in that loads in batches (a pretrained encoder) declares `load_many`; it names rows itself.
    batched = {
        name: m.load_many(rows, root, row_offset=row_offset, progress=progress)  # type: ignore[attr-defined]
        for name, m in modalities.items()
        if callable(getattr(m, "load_many", None))
    }
    for i, row in enumerate(_track(rows, progress)):
        for name, modality in modalities.items():
            try:
                loaded = batched[name][i] if name in batched else modality.load(row, root)
            except DataError as exc:
                raise DataError(f"row {i + row_offset}: {exc}") from None
            if isinstance(loaded, Absent):
                items[name].append(None)
                absences[name].append((i + row_offset, loaded))
            else:
                items[name].append(loaded)
                if loaded.is_floating_point():  # plug-ins mark a missing reading inside a value as NaN
                    # …and one beyond float32 (1e308) arrives as ±inf: the encoders mask it, so count it
                    missing = int((~torch.isfinite(loaded)).sum())
                    if missing:
                        partials[name].append((i + row_offset, missing))
    values: dict[str, Tensor] = {}
    present: dict[str, Tensor] = {}
    masks: dict[str, Tensor] = {}
    for name, modality in modalities.items():
        values[name], mask = modality.collate(items[name])
        if mask is not None:
            masks[name] = mask
        present[name] = torch.tensor([item is not None for item in items[name]], dtype=torch.bool)
    report = LoadReport(
        rows=len(rows),
        fields=tuple(
            _field_report(name, modalities[name].kind, len(rows), absences[name], partials[name])
            for name in modalities
        ),
    )
    tensor_target = None if target is None else torch.as_tensor(target)
    return TensorTable(values=values, present=present, masks=masks, target=tensor_target), report


def load_table(
    df: pl.DataFrame,
    modalities: Mapping[str, Modality],
    root: Path,
    *,
    target: np.ndarray | None = None,
    progress: bool = False,
    row_offset: int = 0,
) -> tuple[TensorTable, LoadReport]:
    """`load_rows` on the table's rows. A field none of whose columns is in the table is absent in
    every row, under the reason "no column 'x' in the table". `row_offset` shifts the row numbers
    in messages and the report (a chunk of a larger table)."""
    needed = sorted({c for m in modalities.values() for c in m.columns() if c in df.columns})
    records = df.select(needed).to_dicts() if needed else [{} for _ in range(df.height)]
    tensors, report = load_rows(
        records, modalities, root, target=target, progress=progress, row_offset=row_offset
    )
    lacking = {n: m.columns() for n, m in modalities.items() if not set(m.columns()) & set(df.columns)}
    if not lacking:
        return tensors, report
    present = {f: torch.zeros_like(p) if f in lacking else p for f, p in tensors.present.items()}
    fields = tuple(
        _field_report(f.field, f.kind, f.rows, _no_column(lacking[f.field], f.rows, row_offset), [])
        if f.field in lacking
        else f
        for f in report.fields
    )
    return replace(tensors, present=present), replace(report, fields=fields)


def _no_column(columns: Sequence[str], rows: int, offset: int = 0) -> list[tuple[int, Absent]]:
    names = ", ".join(f"'{c}'" for c in columns)
    reason = f"no column {names} in the table" if len(columns) == 1 else f"no columns {names} in the table"
    return [(offset + i, Absent(reason)) for i in range(rows)]


def _field_report(
    name: str, kind: str, rows: int, absences: list[tuple[int, Absent]], partials: list[tuple[int, int]]
) -> FieldLoadReport:
    reasons = Counter(a.reason for _, a in absences)
    examples: dict[str, list[int]] = {}
    details: dict[str, str] = {}
    for row, absent in absences:
        rows_for = examples.setdefault(absent.reason, [])
        if len(rows_for) < EXAMPLE_ROWS:
            rows_for.append(row)
        if absent.detail and absent.reason not in details:
            details[absent.reason] = absent.detail
    return FieldLoadReport(
        field=name,
        kind=kind,
        rows=rows,
        absent=len(absences),
        reasons=dict(reasons),
        example_rows={k: tuple(v) for k, v in examples.items()},
        example_detail=details,
        partial=len(partials),
        partial_values=sum(n for _, n in partials),
        partial_rows=tuple(r for r, _ in partials[:EXAMPLE_ROWS]),
    )


def _track(rows: Sequence[Mapping[str, Any]], progress: bool) -> Any:
    if not progress or len(rows) < 200:
        return rows
    from rich.progress import track

    return track(rows, description=f"Loading {len(rows)} rows", transient=True)
