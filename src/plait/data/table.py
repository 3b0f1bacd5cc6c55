"""Reading the sample table, checking its columns and turning the label column into targets.

Row numbers in messages and in `LabelInfo.missing_rows` are 0-based data rows (the header of a
CSV file is not counted), the same indices `split_rows` returns.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from plait.errors import ConfigError, DataError
from plait.registry import suggest
from plait.task import CLASSIFICATION, EMBEDDING, REGRESSION, TASK_TYPES, Task, TaskType

SUPPORTED_EXTENSIONS = (".csv", ".tsv", ".parquet", ".pq", ".jsonl", ".ndjson", ".json")
MAX_CLASSIFICATION_INTEGERS = 20  # an integer label with at most this many values is a class label
_MAX_LISTED = 5  # rows/values quoted in one error message
_MAX_COLUMNS_LISTED = 30

_FORMAT_HINTS = {
    ".csv": "check that every line has the same number of comma-separated values and the file is UTF-8",
    ".tsv": "check that every line has the same number of tab-separated values and the file is UTF-8",
    ".parquet": "re-export the file; it is not a readable Parquet file",
    ".pq": "re-export the file; it is not a readable Parquet file",
    ".jsonl": "write one JSON object per line (JSON Lines)",
    ".ndjson": "write one JSON object per line (JSON Lines)",
    ".json": 'write one JSON array of objects, e.g. [{"a": 1}, {"a": 2}], or use .jsonl',
}


def read_table(path: Path | str) -> pl.DataFrame:
    """The table at `path`, chosen by extension: .csv .tsv .parquet .pq .jsonl .ndjson .json."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_EXTENSIONS:
        raise DataError(
            f"table {path}: unsupported extension '{path.suffix}'; expected one of "
            f"{', '.join(SUPPORTED_EXTENSIONS)} — convert the file or rename it"
        )
    if not path.exists():
        raise DataError(
            f"table {path} does not exist; check data.path (relative paths start at the config's folder)"
        )
    if not path.is_file():
        raise DataError(f"table {path} is not a file; point data.path at a CSV, Parquet or JSONL file")
    try:
        df = _read(path, suffix)
    except (pl.exceptions.PolarsError, OSError, ValueError, TypeError) as exc:
        raise DataError(
            f"table {path} could not be read as {suffix[1:]}: {_shorten(exc)}; {_FORMAT_HINTS[suffix]}"
        ) from None
    if df.height == 0:
        raise DataError(f"table {path} has no rows; it needs a header and at least one row per sample")
    return df


def _read(path: Path, suffix: str) -> pl.DataFrame:
    if suffix in (".csv", ".tsv"):
        separator = "\t" if suffix == ".tsv" else ","
        return pl.read_csv(path, separator=separator, infer_schema_length=10000)
    if suffix in (".parquet", ".pq"):
        return pl.read_parquet(path)
    if suffix in (".jsonl", ".ndjson"):
        return pl.read_ndjson(path)
    with open(path, "rb") as handle:
        start = handle.read(4096).lstrip(b"\xef\xbb\xbf \t\r\n")
    if not start.startswith(b"["):
        raise ValueError("the file does not start with '[' (a JSON array of records)")
    return pl.read_json(path)


def _shorten(exc: BaseException, limit: int = 240) -> str:
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    text = lines[0] if lines else type(exc).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _columns_list(df: pl.DataFrame) -> str:
    cols = df.columns
    listed = ", ".join(cols[:_MAX_COLUMNS_LISTED])
    more = f", … ({len(cols) - _MAX_COLUMNS_LISTED} more)" if len(cols) > _MAX_COLUMNS_LISTED else ""
    return listed + more


def check_columns(
    df: pl.DataFrame, label: str | None, field_columns: Mapping[str, tuple[str, ...]], path: str
) -> None:
    """Raise DataError when the label column (None: there is none) or a column a field reads is
    not in the table."""
    if label is not None and label not in df.columns:
        hint = suggest(label, df.columns)
        raise DataError(
            f"table {path} has no column '{label}' for task.label;{hint} Columns: {_columns_list(df)}; "
            "set task.label to the column that holds the target"
        )
    for name, columns in field_columns.items():
        for column in columns:
            if column in df.columns:
                continue
            hint = suggest(column, df.columns)
            fix = (
                f"set `column:` in fields.{name} to the column that holds it"
                if len(columns) == 1
                else f"fix the column list of fields.{name}"
            )
            raise DataError(
                f"fields.{name}: table {path} has no column '{column}';{hint} "
                f"Columns: {_columns_list(df)}; {fix}"
            )


def no_labels(rows: int) -> LabelInfo:
    """A table trained without labels (a shared space from contrastive stages only): every row is
    usable, and the task is `embedding`."""
    return LabelInfo(Task(EMBEDDING, ""), np.zeros(rows, dtype=np.float64), np.ones(rows, dtype=bool), ())


def infer_task_type(labels: pl.Series, declared: str) -> TaskType:
    """The config's task.type, with 'auto' resolved: strings, booleans, categoricals and integers
    with at most 20 distinct values are classes; other numbers are regression targets."""
    for task_type in TASK_TYPES:
        if declared == task_type:
            return task_type
    if declared != "auto":
        raise ConfigError(f"task.type: expected auto, {' or '.join(TASK_TYPES)}, got {declared!r}")
    dtype = labels.dtype
    if dtype in (pl.String, pl.Boolean, pl.Categorical) or isinstance(dtype, pl.Enum):
        return CLASSIFICATION
    if dtype.is_integer():
        distinct = labels.drop_nulls().n_unique()
        return CLASSIFICATION if distinct <= MAX_CLASSIFICATION_INTEGERS else REGRESSION
    if dtype.is_float():
        return REGRESSION
    raise DataError(
        f"task.label '{labels.name}' has dtype {dtype}; expected strings, booleans, integers or floats — "
        "choose another column for task.label"
    )


@dataclass(frozen=True, eq=False)
class LabelInfo:
    """The label column as training targets.

    target: int64 class index (-1 where missing) for classification, float64 (NaN where missing)
    for regression. valid: True where the row has a label. missing_rows: the 0-based rows without
    one; they are excluded from training and reported, never dropped silently.
    mean/std: of the valid regression targets (0.0/1.0 for classification). `task` is not yet
    standardised: training standardises on its training rows (`Task.standardised_on`).
    """

    task: Task
    target: np.ndarray
    valid: np.ndarray
    missing_rows: tuple[int, ...]
    counts: tuple[int, ...] = ()  # rows per class, in `classes` order
    mean: float = 0.0
    std: float = 1.0

    @property
    def label(self) -> str:
        return self.task.label

    @property
    def classes(self) -> tuple[str, ...]:
        return self.task.classes

    @property
    def n_valid(self) -> int:
        return int(self.valid.sum())

    @property
    def num_classes(self) -> int:
        return len(self.classes)


def _quote_rows(rows: np.ndarray, values: list[Any]) -> str:
    shown = ", ".join(
        f"row {int(r)}: {v!r}" for r, v in zip(rows[:_MAX_LISTED], values[:_MAX_LISTED], strict=False)
    )
    more = f" and {len(rows) - _MAX_LISTED} more" if len(rows) > _MAX_LISTED else ""
    return shown + more


def _missing_mask(series: pl.Series) -> np.ndarray:
    """True where the label is null, NaN, or an empty/whitespace-only string."""
    missing = series.is_null()
    if series.dtype.is_float():
        missing = missing | series.is_nan().fill_null(True)
    elif series.dtype == pl.String:
        missing = missing | (series.str.strip_chars().str.len_chars() == 0).fill_null(True)
    return missing.to_numpy().astype(bool)


def prepare_labels(df: pl.DataFrame, label: str, task_type: str, path: str) -> LabelInfo:
    """Targets, classes and the rows without a label. `task_type` is one of `TASK_TYPES`
    (resolve 'auto' with `infer_task_type` first)."""
    if label not in df.columns:
        check_columns(df, label, {}, path)
    series = df.get_column(label)
    if series.dtype in (pl.Categorical,) or isinstance(series.dtype, pl.Enum):
        series = series.cast(pl.String)
    missing = _missing_mask(series)
    valid = ~missing
    if not valid.any():
        raise DataError(
            f"task.label '{label}' has no values in {path}: all {df.height} rows are empty; "
            "fill in the column or choose another task.label"
        )
    missing_rows = tuple(int(i) for i in np.flatnonzero(missing))
    if task_type == CLASSIFICATION:
        return _classification(series, label, valid, missing_rows, path)
    if task_type == REGRESSION:
        return _regression(series, label, valid, missing_rows, path)
    raise ConfigError(f"task.type: expected {' or '.join(TASK_TYPES)} here, got {task_type!r}")


def _classification(
    series: pl.Series, label: str, valid: np.ndarray, missing_rows: tuple[int, ...], path: str
) -> LabelInfo:
    present = series.filter(pl.Series(valid))
    # Numbers sort by value (2 before 10), then everything becomes its string form.
    levels = present.unique().sort()
    classes = tuple(str(v) for v in levels.cast(pl.String).to_list())
    if len(classes) < 2:
        raise DataError(
            f"task.label '{label}' has a single class '{classes[0]}' in {path}; classification needs "
            "≥ 2 classes — check the column or use task.type: regression"
        )
    codes = series.cast(pl.String).replace_strict(
        list(classes), list(range(len(classes))), default=-1, return_dtype=pl.Int64
    )
    target = np.where(valid, codes.fill_null(-1).to_numpy(), -1).astype(np.int64)
    counts = tuple(int(c) for c in np.bincount(target[valid], minlength=len(classes)))
    return LabelInfo(Task(CLASSIFICATION, label, classes), target, valid, missing_rows, counts)


def _regression(
    series: pl.Series, label: str, valid: np.ndarray, missing_rows: tuple[int, ...], path: str
) -> LabelInfo:
    target, valid = _regression_numbers(series, label, valid, path)
    missing_rows = tuple(int(i) for i in np.flatnonzero(~valid))
    values = target[valid]
    mean, std = float(values.mean()), float(values.std())
    if std == 0.0 or not math.isfinite(std):
        raise DataError(
            f"task.label '{label}' in {path} is constant ({float(values[0])!r} in all {len(values)} "
            "labelled rows); there is nothing to learn — check the column or choose another task.label"
        )
    return LabelInfo(Task(REGRESSION, label), target, valid, missing_rows, (), mean, std)


def _regression_numbers(
    series: pl.Series, label: str, valid: np.ndarray, path: str
) -> tuple[np.ndarray, np.ndarray]:
    """float64 targets (NaN where missing) and the rows that have one; text that is no number raises."""
    dtype = series.dtype
    if dtype == pl.String:
        numbers = series.str.strip_chars().cast(pl.Float64, strict=False)
        bad = np.flatnonzero(valid & numbers.is_null().to_numpy())
        if len(bad) > 0:
            values = [series[int(r)] for r in bad[:_MAX_LISTED]]
            raise DataError(
                f"task.label '{label}' in {path} is a regression target but holds non-numeric values "
                f"({_quote_rows(bad, values)}); expected numbers — fix those cells, leave them empty to "
                "mark the label missing, or use task.type: classification"
            )
    elif dtype.is_numeric():
        numbers = series.cast(pl.Float64)
    else:
        raise DataError(
            f"task.label '{label}' in {path} has dtype {dtype}; a regression target must be numeric — "
            "use task.type: classification or choose a numeric column"
        )
    target = numbers.fill_null(float("nan")).to_numpy().astype(np.float64)
    valid = valid & ~np.isnan(target)
    infinite = np.flatnonzero(valid & ~np.isfinite(target))
    if len(infinite) > 0:
        raise DataError(
            f"task.label '{label}' in {path} holds infinite values "
            f"({_quote_rows(infinite, [float(v) for v in target[infinite]])}); expected finite numbers — "
            "fix those cells or leave them empty to mark the label missing"
        )
    if not valid.any():
        raise DataError(f"task.label '{label}' has no numeric values in {path}; fill in the column")
    return np.where(valid, target, np.nan), valid


def encode_labels(df: pl.DataFrame, task: Task, path: str) -> tuple[np.ndarray, np.ndarray]:
    """Targets in a TRAINED model's encoding (for evaluation): the same parsing as training — class
    keys from polars' string cast, numbers parsed the same way — but no class-count checks, since a
    test table may hold one class. Returns (target, valid): class indices (-1 unlabelled), or
    values in the target's units (NaN unlabelled; `Task.encode_targets` standardises them)."""
    label, classes = task.label, task.classes
    if label not in df.columns:
        check_columns(df, label, {}, path)
    series = df.get_column(label)
    if series.dtype in (pl.Categorical,) or isinstance(series.dtype, pl.Enum):
        series = series.cast(pl.String)
    valid = ~_missing_mask(series)
    if not valid.any():
        raise DataError(f"{path}: column '{label}' has no labels; evaluation needs labelled rows")
    if not task.is_classification:
        return _regression_numbers(series, label, valid, path)
    keys = series.cast(pl.String)
    seen = keys.filter(pl.Series(valid)).unique().sort().to_list()
    unknown = [k for k in seen if k not in classes]
    if unknown:
        raise DataError(
            f"{path}: column '{label}' has classes the model was not trained on: "
            f"{', '.join(map(str, unknown[:10]))}; the model knows {', '.join(classes)}"
        )
    codes = keys.replace_strict(list(classes), list(range(len(classes))), default=-1, return_dtype=pl.Int64)
    return np.where(valid, codes.fill_null(-1).to_numpy(), -1).astype(np.int64), valid
