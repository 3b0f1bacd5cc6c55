"""A table file read in chunks of rows, so a command over a table larger than memory holds one chunk
at a time: Parquet by row batches (pyarrow), CSV/TSV by polars' streaming engine, JSON Lines by lines.
A .json array cannot be streamed: it is read whole (and the chunks are slices of it). A folder of
Parquet files (`table_sources`) is read file after file, in name order, as one table."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import polars as pl

from plait.data.table import SUPPORTED_EXTENSIONS, read_table
from plait.errors import DataError

DEFAULT_CHUNK_ROWS = 4096


def table_sources(path: Path) -> list[Path]:
    """The files of the table at `path`: the file itself, or a folder's Parquet files (`*.parquet`,
    `*.pq`, in name order; a dataset written in parts). Raises DataError for a folder without any."""
    if not path.is_dir():
        return [path]
    parts = sorted(p for p in path.iterdir() if p.suffix.lower() in (".parquet", ".pq") and p.is_file())
    if not parts:
        raise DataError(
            f"{path} is a folder with no .parquet files; give a table file, or a folder of Parquet parts"
        )
    import pyarrow.parquet as pq

    try:  # empty parts (Spark and Dask write them) hold no rows to predict: skipped
        kept = [p for p in parts if pq.read_metadata(p).num_rows > 0]
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: a part is not a readable Parquet file ({exc})") from None
    if not kept:
        raise DataError(f"{path}: its {len(parts)} Parquet parts have no rows")
    return kept


def source_chunks(sources: list[Path], rows: int = DEFAULT_CHUNK_ROWS) -> Iterator[pl.DataFrame]:
    """`table_chunks` of each file in turn: one table. Every part must have the first one's columns."""
    first: list[str] | None = None
    for source in sources:
        for chunk in table_chunks(source, rows):
            if first is None:
                first = chunk.columns
            elif chunk.columns != first:
                raise DataError(
                    f"table {source}: its columns {chunk.columns} are not those of {sources[0]} ({first}); "
                    "the parts of one table must have the same columns in the same order"
                )
            yield chunk


def table_chunks(path: Path, rows: int = DEFAULT_CHUNK_ROWS) -> Iterator[pl.DataFrame]:
    """The table at `path` as DataFrames of at most `rows` rows, in file order. Raises DataError
    for an unreadable file or extension, and for a table with no rows."""
    if rows < 1:
        raise DataError(f"chunk size: expected at least 1 row per chunk, got {rows}")
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_EXTENSIONS or not path.is_file():
        read_table(path)  # raises the reader's own message (extension, missing file, folder)
    seen = 0
    try:
        for chunk in _chunks(path, suffix, rows):
            seen += chunk.height
            if chunk.height:
                yield chunk
    except (pl.exceptions.PolarsError, OSError, ValueError) as exc:
        raise DataError(f"table {path}: could not be read past row {seen}: {exc}") from None
    if seen == 0:
        raise DataError(f"table {path} has no rows; it needs a header and at least one row per sample")


def _chunks(path: Path, suffix: str, rows: int) -> Iterator[pl.DataFrame]:
    if suffix in (".parquet", ".pq"):
        import pyarrow.parquet as pq

        for batch in pq.ParquetFile(path).iter_batches(batch_size=rows):
            frame = pl.from_arrow(batch)
            assert isinstance(frame, pl.DataFrame)  # a record batch gives a frame
            yield frame
    elif suffix in (".csv", ".tsv"):
        separator = "\t" if suffix == ".tsv" else ","
        scan = pl.scan_csv(path, separator=separator, infer_schema_length=10000)
        batches = getattr(scan, "collect_batches", None)
        if batches is None:  # a polars without the streaming batches API: the whole file, in slices
            yield from _split(scan.collect(), rows)
            return
        for frame in batches(chunk_size=rows, lazy=True):  # streaming engine
            yield from _split(frame, rows)
    elif suffix in (".jsonl", ".ndjson"):
        lines: list[str] = []
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                if line.strip():
                    lines.append(line)
                if len(lines) == rows:
                    yield pl.read_ndjson(io.StringIO("".join(lines)))
                    lines = []
        if lines:
            yield pl.read_ndjson(io.StringIO("".join(lines)))
    else:  # a JSON array: one document
        yield from _split(read_table(path), rows)


def _split(frame: pl.DataFrame, rows: int) -> Iterator[pl.DataFrame]:
    for start in range(0, frame.height, rows):
        yield frame.slice(start, rows)
