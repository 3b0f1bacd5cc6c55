"""Finding and reading the tables streams and anchors come from: CSV/TSV, Parquet and JSONL (NDJSON),
only the columns asked for, with errors that name the config key to fix."""

from __future__ import annotations

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


def read_table(path: Path, columns: dict[str, str], *, where: str, text: list[str]) -> pl.DataFrame:
    """The named columns of a CSV/TSV/Parquet/JSONL table, read lazily (only those columns are read).

    `columns` maps each column to the config key that names it (for the error when it is missing);
    `text` columns of a CSV are read as strings: '007' stays '007', and one bad time cell does not
    change the type of the whole column."""
    kind = _READERS.get(path.suffix.lower())
    if kind is None:
        raise DataError(
            f"{where}: cannot read '{path.name}': unknown table format '{path.suffix}'; "
            f"use one of {', '.join(sorted(_READERS))}"
        )
    try:
        lazy = _scan(path, kind, text, infer=10_000)
        names = lazy.collect_schema().names()
        for column, config_key in columns.items():
            if column not in names:
                raise ConfigError(
                    f"{config_key}: {where}: column '{column}' not found in {path};{suggest(column, names)} "
                    f"columns there: {', '.join(names[:30])}"
                )
        wanted = list(columns)
        try:
            return lazy.select(wanted).collect()
        except pl.exceptions.ComputeError:  # a column's type changes after the rows used to infer it
            return _scan(path, kind, text, infer=None).select(wanted).collect()
    except PlaitError:
        raise
    except Exception as exc:
        raise DataError(f"{where}: cannot read {path}: {exc}") from None


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
