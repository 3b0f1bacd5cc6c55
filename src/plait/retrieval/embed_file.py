"""`plait embed`: every row of a table file into the shared space, streamed — one chunk of rows is
loaded, embedded and appended to the Parquet output at a time, so memory stays bounded by the
chunk, not the table. A row where a field is absent gets a null vector there, never a made-up one."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa

from plait.bundle import TrainedModel
from plait.data.chunks import DEFAULT_CHUNK_ROWS, table_chunks
from plait.errors import DataError
from plait.registry import suggest
from plait.retrieval.embeddings import Embeddings, embed_frame, fields_to_embed

Say = Callable[[str], None]
ROW_COLUMN = "row"  # the 0-based row of the input table


@dataclass(frozen=True)
class EmbeddedChunk:
    first_row: int  # of the input table
    table: pl.DataFrame  # the chunk's rows as read
    embeddings: tuple[Embeddings, ...]  # one per field asked for


@dataclass(frozen=True)
class EmbedRun:
    path: Path
    rows: int
    fields: tuple[str, ...]
    absent: dict[str, int]  # field -> rows where it was absent (a null vector in the output)
    seconds: float


def embedded_chunks(
    trained: TrainedModel,
    data: Path,
    fields: Sequence[str] = (),
    *,
    root: Path | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
) -> Iterator[EmbeddedChunk]:
    """The table at `data` (media under `root`, default its folder), chunk by chunk, with each of
    `fields` (default: every field in the space) embedded."""
    chosen = fields_to_embed(trained, fields)
    media_root = root if root is not None else data.parent
    first = 0
    for chunk in table_chunks(data, chunk_rows):
        embedded, _ = embed_frame(trained, chunk, chosen, media_root)
        yield EmbeddedChunk(first, chunk, tuple(embedded))
        first += chunk.height


def embed_file(
    trained: TrainedModel,
    data: Path,
    out: Path,
    *,
    fields: Sequence[str] = (),
    keep: Sequence[str] = (),
    root: Path | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    say: Say | None = None,
) -> EmbedRun:
    """Write OUT (Parquet): `row`, the `keep` columns of DATA, and one fixed-size float32 list
    column per field (null where the field is absent). Written to a temporary file and renamed,
    so an interrupted run leaves no half file under OUT's name."""
    import pyarrow.parquet as pq

    if out.suffix.lower() not in (".parquet", ".pq"):
        raise DataError(f"{out}: embeddings are written as Parquet; end the file name in .parquet")
    tell: Say = say or (lambda _msg: None)
    start = time.perf_counter()
    partial = out.with_name(f".{out.name}.partial")
    out.parent.mkdir(parents=True, exist_ok=True)
    writer: pq.ParquetWriter | None = None
    rows, chosen = 0, fields_to_embed(trained, fields)
    absent: dict[str, int] = {}
    try:
        for chunk in embedded_chunks(trained, data, chosen, root=root, chunk_rows=chunk_rows):
            if writer is None:
                _check_keep(keep, chunk.table, data, chosen)
            table = _arrow(chunk, keep)
            if writer is None:
                writer = pq.ParquetWriter(partial, table.schema)
            writer.write_table(_cast(table, writer.schema, data, chunk.first_row))
            rows += chunk.table.height
            for e in chunk.embeddings:
                absent[e.field] = absent.get(e.field, 0) + int((~e.present).sum())
            tell(f"embedded {rows} rows")
    except BaseException:
        if writer is not None:
            writer.close()
            writer = None
        partial.unlink(missing_ok=True)  # an interrupted run leaves nothing behind
        raise
    finally:
        if writer is not None:
            writer.close()
    os.replace(partial, out)
    return EmbedRun(out, rows, chosen, absent, time.perf_counter() - start)


def _check_keep(keep: Sequence[str], table: pl.DataFrame, data: Path, fields: Sequence[str]) -> None:
    for column in keep:
        if column in fields:
            raise DataError(
                f"--keep {column}: the output has a column '{column}' of its own (the field's embedding); "
                "keep another column, or rename the field"
            )
        if column not in table.columns or column in (ROW_COLUMN,):
            hint = suggest(column, table.columns)
            raise DataError(
                f"--keep {column}: no such column in {data} (or it is the output's own `{ROW_COLUMN}`);"
                f"{hint} Columns: {', '.join(table.columns[:30])}"
            )


def _arrow(chunk: EmbeddedChunk, keep: Sequence[str]) -> pa.Table:
    n = chunk.table.height
    columns: dict[str, pa.Array] = {
        ROW_COLUMN: pa.array(np.arange(chunk.first_row, chunk.first_row + n, dtype=np.int64))
    }
    for column in keep:
        columns[column] = chunk.table.get_column(column).to_arrow()
    for e in chunk.embeddings:
        flat = pa.array(np.nan_to_num(e.vectors).reshape(-1))  # (N·dim,); absent rows masked below
        columns[e.field] = pa.FixedSizeListArray.from_arrays(flat, e.dim, mask=pa.array(~e.present))
    return pa.table(columns)


def _cast(table: pa.Table, schema: pa.Schema, data: Path, first_row: int) -> pa.Table:
    """A later chunk in the first chunk's column types (a CSV column may read differently)."""
    if table.schema.equals(schema):
        return table
    try:
        return table.cast(schema)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise DataError(
            f"{data}: from row {first_row} a kept column reads as another type than in the first rows "
            f"({exc}); keep a column of one type"
        ) from None
