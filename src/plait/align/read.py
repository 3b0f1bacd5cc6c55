"""Finding and reading the tables streams and anchors come from: CSV/TSV, Parquet and JSONL (NDJSON),
only the columns asked for, with errors that name the config key to fix."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import polars as pl

from plait.align.paths import inside_root
from plait.errors import ConfigError, DataError, PlaitError
from plait.registry import suggest

_READERS = {
    ".csv": "csv",
    ".tsv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "ndjson",
    ".ndjson": "ndjson",
}


def read_table(
    path: Path,
    columns: dict[str, str],
    *,
    where: str,
    text: list[str],
    row_index: str | None = None,
    keep: Callable[[pl.Schema], pl.Expr] | None = None,
) -> pl.DataFrame:
    """The named columns of a CSV/TSV/Parquet/JSONL table, read lazily (only those columns are read).

    `columns` maps each column to the config key that names it (for the error when it is missing);
    `text` columns of a CSV are read as strings: '007' stays '007', and one bad time cell does not
    change the type of the whole column. `row_index` names a first column holding each row's 0-based
    row in the source; `keep`, given the table's schema, selects rows. The filter goes into the scan:
    a Parquet reader skips the row groups whose statistics rule it out (when it compares a column in
    its own type); a CSV/JSONL reader still parses every row, keeping only those."""
    kind = _READERS.get(path.suffix.lower())
    if kind is None:
        raise DataError(
            f"{where}: cannot read '{path.name}': unknown table format '{path.suffix}'; "
            f"use one of {', '.join(sorted(_READERS))}"
        )
    try:
        # the schema from a scan of its own: polars 2.1 skips no row group of a scan whose schema was
        # asked for, so a shard's key filter would read the whole file
        schema = _scan(path, kind, text, infer=10_000).collect_schema()
        names = schema.names()
        lazy = _scan(path, kind, text, infer=10_000)
        for column, config_key in columns.items():
            if column not in names:
                raise ConfigError(
                    f"{config_key}: {where}: column '{column}' not found in {path};{suggest(column, names)} "
                    f"columns there: {', '.join(names[:30])}"
                )
        wanted = list(columns)
        rows = None if keep is None else keep(schema)  # its columns are there: checked above
        try:
            return _rows(lazy, wanted, row_index, rows).collect()
        except pl.exceptions.ComputeError:  # a column's type changes after the rows used to infer it
            return _rows(_scan(path, kind, text, infer=None), wanted, row_index, rows).collect()
    except PlaitError:
        raise
    except Exception as exc:
        raise DataError(f"{where}: cannot read {path}: {exc}") from None


def _rows(lazy: pl.LazyFrame, wanted: list[str], row_index: str | None, keep: pl.Expr | None) -> pl.LazyFrame:
    if row_index is not None:
        lazy = lazy.with_row_index(row_index)
        wanted = [row_index, *wanted]
    if keep is not None:
        lazy = lazy.filter(keep)
    return lazy.select(wanted)


def _scan(path: Path, kind: str, text: list[str], infer: int | None) -> pl.LazyFrame:
    if kind == "parquet":
        return pl.scan_parquet(path)
    if kind == "ndjson":
        return pl.scan_ndjson(path, infer_schema_length=infer)
    sep = "\t" if path.suffix.lower() == ".tsv" else ","
    header = pl.scan_csv(path, separator=sep, n_rows=0).collect_schema().names()
    overrides = {c: pl.String for c in text if c in header}
    return pl.scan_csv(path, separator=sep, schema_overrides=overrides, infer_schema_length=infer)


def resolve_source(path: str, base_dir: Path, where: str, config_key: str) -> Path:
    """`path` as configured (absolute, or relative to the config's folder), resolved; an error if it
    leads outside that folder (symlinks followed: see paths.py) or is not there."""
    source = inside_root(path, base_dir, config_key)
    if not source.exists():
        raise DataError(
            f"{where}: '{path}' not found (looked for {source}); fix {config_key} "
            "(relative paths are read from the config file's folder)"
        )
    return source


def count_rows(path: Path) -> int:
    """Rows of a table without holding it (Parquet: from its metadata); 0 for a folder of files."""
    kind = _READERS.get(path.suffix.lower())
    if path.is_dir() or kind is None:
        return 0
    return int(_scan(path, kind, [], infer=10_000).select(pl.len()).collect().item())


def count_keys(path: Path, key: str) -> pl.DataFrame:
    """(key as text, n rows) of a table's entity column, streamed; empty for a folder, or when the
    column is not there (reading the stream then says so)."""
    kind = _READERS.get(path.suffix.lower())
    empty = pl.DataFrame(schema={"key": pl.String, "n": pl.Int64})
    if path.is_dir() or kind is None:
        return empty
    lazy = _scan(path, kind, [key], infer=10_000)
    if key not in lazy.collect_schema().names():
        return empty
    counts = lazy.group_by(pl.col(key).cast(pl.String).alias("key")).agg(pl.len().cast(pl.Int64).alias("n"))
    return counts.drop_nulls("key").collect(engine="streaming")


def key_type(path: Path, key: str) -> pl.DataType | None:
    """The type a table's entity column is read as (a CSV's is text: `read_table` reads it so);
    None for a folder, or when the column is not there."""
    kind = _READERS.get(path.suffix.lower())
    if path.is_dir() or kind is None:
        return None
    return _scan(path, kind, [key], infer=10_000).collect_schema().get(key)
