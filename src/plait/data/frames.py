"""What a caller hands plait as a table or a batch of rows: a polars or a pandas DataFrame, a path,
or a dict of columns.

pandas is never imported here: a pandas object is recognised by its module name and converted with
`pl.from_pandas`, so a caller who does not use pandas pays nothing for it. A pandas caller gets
pandas back, on the input's index, so `sub["p"] = predict(sub, as_frame=True)["prediction"]` lands
on the right rows.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

import numpy as np
import polars as pl

from plait.errors import DataError

if TYPE_CHECKING:
    import pandas as pd

    DataFrame: TypeAlias = pl.DataFrame | pd.DataFrame

BATCH_FIX = "pass a list of records, one dict per row, or a dict of equal-length lists, one per column"
_SHOWN = 40  # characters of a value quoted in a message


def is_pandas(obj: object, name: str = "DataFrame") -> bool:
    """True for a pandas object of type `name`, without importing pandas."""
    kind = type(obj)
    return kind.__module__.split(".")[0] == "pandas" and kind.__name__ == name


def as_polars(obj: object) -> pl.DataFrame | None:
    """`obj` as a polars DataFrame when it is a polars or pandas DataFrame, else None."""
    if isinstance(obj, pl.DataFrame):
        return obj
    if not is_pandas(obj):
        return None
    try:
        return pl.from_pandas(_arrays_as_lists(obj))
    except (TypeError, ValueError, pl.exceptions.PolarsError) as exc:  # pyarrow's errors subclass these
        raise DataError(
            f"a pandas DataFrame could not be converted to polars ({type(exc).__name__}: {exc}); give each "
            "column one type (e.g. df[col] = df[col].astype(str)) or pass a polars DataFrame"
        ) from None


def _arrays_as_lists(frame: Any) -> Any:
    """The pandas `frame` with its numpy-array cells as (nested) lists in each column that holds a
    2-d array. An array per row is the natural way to hold a multichannel series
    (`df["imu"] = [np.zeros((100, 3))] * n`), but pyarrow reads only 1-d array cells; nested lists
    it reads as a list-of-lists column."""
    if not frame.columns.is_unique:  # df[name] is not one column; from_pandas says what is wrong
        return frame
    arrays = [c for c in frame.columns if frame[c].dtype == object and any(_not_1d(v) for v in frame[c])]
    if not arrays:
        return frame
    frame = frame.copy(deep=False)  # the caller's frame keeps its arrays
    for c in arrays:
        frame[c] = [v.tolist() if isinstance(v, np.ndarray) else v for v in frame[c]]
    return frame


def _not_1d(value: object) -> bool:
    return isinstance(value, np.ndarray) and value.ndim != 1


def to_polars(obj: object, where: str) -> pl.DataFrame:
    """`obj` as a polars DataFrame; a DataError when it is not a polars or pandas DataFrame."""
    frame = as_polars(obj)
    if frame is None:
        raise DataError(f"{where}: expected a polars or pandas DataFrame, got {type(obj).__name__}")
    return frame


def table_or_path(data: object, where: str) -> pl.DataFrame | Path:
    """A DataFrame (pandas converted to polars) or the path of a table file; anything else is an error."""
    frame = as_polars(data)
    if frame is not None:
        return frame
    if isinstance(data, (str, Path)):
        return Path(data)
    raise DataError(
        f"{where}: expected the path of a table file (CSV, Parquet, JSONL) or a DataFrame (polars or "
        f"pandas), got {type(data).__name__}"
    )


def like_input(frame: pl.DataFrame, original: object) -> Any:
    """`frame` (one row per row of `original`) as a pandas DataFrame on `original`'s index when
    `original` was one, else as it is (polars)."""
    if not is_pandas(original):
        return frame
    out = frame.to_pandas()
    out.index = original.index  # type: ignore[attr-defined]
    return out


def column_values(value: object) -> list[Any] | None:
    """The values of a column-like `value` (list, tuple, numpy array, polars or pandas Series) as a
    list; None for anything else (a string, a number, None, bytes: one row's value)."""
    if isinstance(value, (list, tuple)):
        return list(value)
    if isinstance(value, np.ndarray):
        return list(value.tolist()) if value.ndim else None  # a 0-d array is one number
    if isinstance(value, pl.Series):
        return value.to_list()
    if is_pandas(value, "Series"):
        return list(value.tolist())  # type: ignore[attr-defined]
    return None


def mapping_rows(
    mapping: Mapping[str, Any], sequence_columns: Collection[str], where: str
) -> list[dict[str, Any]]:
    """The rows a dict stands for. A dict of single values is one row; a dict of equal-length columns
    is one row per position. A sequence column (a series or a vector per row) holds one list per row
    in a batch, so its own flat list of numbers is one row's value, not a batch."""
    columns: dict[str, list[Any]] = {}
    single: list[str] = []
    nested: dict[str, list[Any]] = {}  # sequence columns of lists: a batch, or one [T, C] series
    for key, value in mapping.items():
        values = column_values(value)
        shape = "column" if values is None or key not in sequence_columns else _sequence_shape(values)
        if values is None or shape == "single":
            single.append(key)
        elif shape == "nested":
            nested[key] = values
        else:
            columns[key] = values
    if not columns:
        if nested and not single:
            names = ", ".join(f"'{k}'" for k in nested)
            raise DataError(
                f"{where}: the dict's {names} holds lists of lists, and no other key says whether the "
                "dict is one row (one multichannel series) or a batch (one series per row); wrap one "
                f"row in a list ([{{...}}]), or {BATCH_FIX}"
            )
        return [dict(mapping)]
    columns.update(nested)
    if single:
        column, key = next(iter(columns)), single[0]
        sequence = " (a sequence field holds one list per row in a batch)" if key in sequence_columns else ""
        raise DataError(
            f"{where}: the dict mixes columns and single values: '{column}' is a list of "
            f"{len(columns[column])} values but '{key}' is one value ({_short(mapping[key])}){sequence}; "
            f"{BATCH_FIX}"
        )
    lengths = {k: len(v) for k, v in columns.items()}
    if len(set(lengths.values())) > 1:
        listed = ", ".join(f"'{k}': {n}" for k, n in lengths.items())
        raise DataError(f"{where}: the dict's columns have different lengths ({listed}); {BATCH_FIX}")
    n = next(iter(lengths.values()))
    return [{k: v[i] for k, v in columns.items()} for i in range(n)]


def _sequence_shape(values: list[Any]) -> str:
    """What a sequence column's list is: 'column' when it holds strings (paths or JSON texts, one per
    row), 'nested' when it holds lists or only None (one value per row, or the readings of one
    series: the other keys decide), 'single' when it is one flat series of numbers."""
    if any(isinstance(v, (str, bytes, Path)) for v in values):
        return "column"
    if any(column_values(v) is not None for v in values) or (values and all(v is None for v in values)):
        return "nested"
    return "single"


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= _SHOWN else text[: _SHOWN - 1] + "…"
