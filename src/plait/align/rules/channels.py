"""A timeseries table's sensor channels as Float64, as the loader reads them: text that is not a
number is an error; NaN, inf and empty cells are readings that are not there (gaps, dropped and
counted when the stream is cleaned)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import polars as pl

from plait.align.frames import ROW
from plait.errors import DataError

if TYPE_CHECKING:
    from plait.align.spec import StreamSpec


def typed_channels(frame: pl.DataFrame, spec: StreamSpec) -> pl.DataFrame:
    rows = frame[ROW] if ROW in frame.columns else pl.int_range(frame.height, eager=True)  # source rows
    return frame.with_columns(_channel(frame[c], spec, c, rows) for c in spec.columns)


def _channel(values: pl.Series, spec: StreamSpec, column: str, rows: pl.Series) -> pl.Series:
    if values.dtype.is_numeric():
        return values.cast(pl.Float64)
    if values.dtype == pl.String:
        numbers = values.str.strip_chars().cast(pl.Float64, strict=False)
        bad = values.is_not_null() & numbers.is_null()
        if not bool(bad.any()):
            return numbers
        at = int(bad.arg_true()[0])
        example = f"'{values[at]}' at row {rows[at]}"
    else:
        example = f"type {values.dtype}"
    raise DataError(
        f"stream '{spec.name}' ({spec.path}): sensor column '{column}' is not numeric ({example}); "
        "write numbers, leave the cell empty or write NaN for a missing reading, or drop the column from "
        f"streams.sources.{spec.name}.columns"
    )
