"""`plait search`: which items of field TO are nearest, in the shared space, to a query of field FROM
("which recordings sound like this thermal frame").

The index of TO's embeddings over a table is built once and saved beside the bundle, in
`BUNDLE.index/<field>-<table hash>/` (usearch index, the items' columns, and what it was built
from); it is rebuilt when the model or the table's content changed. A query is a value of FROM as a
table holds it (a text, a media path) or a row of the table."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from plait.bundle import TrainedModel
from plait.data.chunks import DEFAULT_CHUNK_ROWS
from plait.data.table import read_table
from plait.errors import DataError
from plait.modalities.contract import input_spec
from plait.provenance.fingerprint import sha256_bytes, sha256_file
from plait.retrieval.embed_file import ROW_COLUMN, embedded_chunks
from plait.retrieval.embeddings import check_space_field, embed_records
from plait.retrieval.index import EXACT_BELOW, IndexMeta, VectorIndex

Say = Callable[[str], None]
ITEMS_FILE = "items.parquet"


@dataclass(frozen=True)
class Hit:
    rank: int
    row: int  # of the indexed table
    score: float  # cosine similarity in the shared space
    values: Mapping[str, Any]  # the item's columns (its file path, its text)


@dataclass(frozen=True)
class ItemIndex:
    """A vector index of one field's items and their columns (by table row); `folder` where it is
    saved (None: built in memory only), `built` whether it was built just now."""

    vectors: VectorIndex
    items: pl.DataFrame  # ROW_COLUMN and the field's columns, one row per indexed item
    folder: Path | None
    built: bool

    @property
    def meta(self) -> IndexMeta:
        return self.vectors.meta

    @cached_property
    def by_row(self) -> dict[int, dict[str, Any]]:
        """Each item's columns by its table row (built once per index, not per search)."""
        return {int(r[ROW_COLUMN]): r for r in self.items.iter_rows(named=True)}

    def nearest(self, queries: np.ndarray, k: int) -> list[tuple[Hit, ...]]:
        """The k items nearest each query (Q, dim), best first."""
        matches = self.vectors.search(queries, k)
        by_row = self.by_row
        return [
            tuple(
                Hit(
                    rank=i + 1,
                    row=int(row),
                    score=round(float(score), 6),
                    values={c: v for c, v in by_row.get(int(row), {}).items() if c != ROW_COLUMN},
                )
                for i, (row, score) in enumerate(zip(rows, scores, strict=True))
            )
            for rows, scores in zip(matches.rows, matches.scores, strict=True)
        ]


@dataclass(frozen=True)
class SearchResult:
    query_field: str
    target_field: str
    index: IndexMeta
    folder: Path | None
    built: bool  # the index was (re)built for this search
    hits: tuple[Hit, ...]
    seconds: float


def index_folder(bundle: Path, field: str, fingerprint: str, root: Path | None) -> Path:
    """BUNDLE.index/FIELD-KEY: KEY from the table's content and the media root its paths start at."""
    where = str(root.resolve()) if root is not None else ""
    key = sha256_bytes(f"{fingerprint}\n{where}")[:16]
    return bundle.parent / f"{bundle.name}.index" / f"{field}-{key}"


def open_index(
    trained: TrainedModel,
    bundle: Path | None,
    data: Path,
    field: str,
    *,
    root: Path | None = None,
    rebuild: bool = False,
    exact_below: int = EXACT_BELOW,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    say: Say | None = None,
    what: str = "--to",
) -> ItemIndex:
    """The index of `field` over `data` (media under `root`), saved beside `bundle`: read when it
    is there and up to date, built (streaming the table) when missing, stale (another model or
    table content), unreadable or `rebuild`. With `bundle` None it is built in memory and not
    saved. `what` names the field's option in errors."""
    check_space_field(trained, field, what)
    tell: Say = say or (lambda _msg: None)
    fingerprint = sha256_file(data)
    folder = None if bundle is None else index_folder(bundle, field, fingerprint, root)
    if folder is not None and folder.is_dir() and not rebuild:
        try:
            saved = VectorIndex.load(folder)
            kept = pl.read_parquet(folder / ITEMS_FILE)
        except (DataError, OSError, pl.exceptions.PolarsError) as exc:
            tell(f"the index in {folder} could not be read ({exc}); building it again")
        else:
            if saved.meta.model_id == trained.model_id and saved.meta.fingerprint == fingerprint:
                return ItemIndex(saved, kept, folder, built=False)
            tell(f"the index in {folder} was built by another model; building it again")
    vectors, rows, items, total = [], [], [], 0
    columns = trained.modalities[field].columns()
    for chunk in embedded_chunks(trained, data, (field,), root=root, chunk_rows=chunk_rows):
        e = chunk.embeddings[0]
        numbers = np.arange(chunk.first_row, chunk.first_row + len(e), dtype=np.int64)
        vectors.append(e.vectors[e.present])
        rows.append(numbers[e.present])
        found = chunk.table.select([c for c in columns if c in chunk.table.columns]).filter(
            pl.Series(e.present)
        )
        items.append(found.with_columns(pl.Series(ROW_COLUMN, numbers[e.present])))
        total += len(e)
        tell(f"indexed {total} rows of {data}")
    stacked = np.concatenate(vectors)  # (items, dim); table_chunks gave at least one chunk
    meta = IndexMeta(
        field=field,
        model_id=trained.model_id,
        source=str(data),
        fingerprint=fingerprint,
        items=int(stacked.shape[0]),
        rows=total,
        dim=int(stacked.shape[1]),
        exact=stacked.shape[0] < exact_below,
    )
    index = VectorIndex.build(stacked, np.concatenate(rows), meta)
    table = pl.concat(items, how="diagonal_relaxed")
    if folder is not None:
        _save(index, table, folder)
    return ItemIndex(index, table, folder, built=True)


def _save(index: VectorIndex, items: pl.DataFrame, folder: Path) -> None:
    """Written into a fresh temporary sibling, then renamed into place (the old one moved aside
    first and removed after), so a reader never sees half an index and two builds never share files."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        index.save(partial)
        items.write_parquet(partial / ITEMS_FILE)
        old = None
        if folder.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{folder.name}.old.", dir=folder.parent))
            os.replace(folder, old / "index")
        os.replace(partial, folder)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def query_record(trained: TrainedModel, field: str, query: str) -> dict[str, Any]:
    """A query given on the command line as the record field `field` reads: the value of its one
    column (a text, a media path), or for a field of several columns a JSON object of them."""
    columns = tuple(input_spec(trained.modalities[field]).roles)
    if len(columns) == 1:
        return {columns[0]: query}
    try:
        record = json.loads(query)
    except json.JSONDecodeError:
        record = None
    if not isinstance(record, dict):
        raise DataError(
            f"--query: field '{field}' reads the columns {', '.join(columns)}; give them as a JSON object, "
            f"e.g. --query '{json.dumps(dict.fromkeys(columns, 0))}'"
        )
    return record


def row_record(data: Path, row: int) -> dict[str, Any]:
    """Row `row` (0-based) of the table at `data`, as a record."""
    table = read_table(data)
    if not 0 <= row < table.height:
        raise DataError(f"--query-row {row}: {data} has rows 0 to {table.height - 1}")
    return table.row(row, named=True)


def search(
    trained: TrainedModel,
    index: ItemIndex,
    query_field: str,
    record: Mapping[str, Any],
    *,
    root: Path,
    k: int = 10,
) -> SearchResult:
    """The `k` items of the index nearest to `record`'s `query_field` (media under `root`)."""
    start = time.perf_counter()
    check_space_field(trained, query_field, "--from")
    if k < 1:
        raise DataError(f"--k: expected at least 1 result, got {k}")
    embedded, report = embed_records(trained, [record], (query_field,), root)
    if not bool(embedded[0].present[0]):
        reasons = "; ".join(report.lines()) or "no value"
        raise DataError(
            f"--query: field '{query_field}' could not read the query ({reasons}); give a value it reads"
        )
    return SearchResult(
        query_field=query_field,
        target_field=index.meta.field,
        index=index.meta,
        folder=index.folder,
        built=index.built,
        hits=index.nearest(embedded[0].vectors, k)[0],
        seconds=time.perf_counter() - start,
    )
