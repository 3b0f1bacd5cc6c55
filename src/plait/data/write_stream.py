"""A result table written chunk by chunk, so a command over a table larger than memory holds one
chunk of output at a time: Parquet row groups (pyarrow), CSV with one header, JSON Lines. The file
is written under a temporary name and renamed when it is complete; a run that fails or is
interrupted leaves nothing under the file's name."""

from __future__ import annotations

import os
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import polars as pl

from plait.data.write import WRITERS
from plait.errors import DataError


class TableWriter:
    """`with TableWriter(out) as w: w.write(chunk)` for each chunk; every chunk has the first one's
    columns (later chunks are cast to its column types)."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.suffix = self.path.suffix.lower()
        if self.suffix not in WRITERS:
            known = ", ".join(WRITERS)
            raise DataError(f"cannot write {self.path}: unknown extension '{self.suffix}'; use {known}")
        self.partial = self.path.with_name(f".{self.path.name}.partial")
        self.rows = 0
        self._parquet: Any = None
        self._schema: pl.Schema | None = None
        self._handle: IO[bytes] | None = None

    def __enter__(self) -> TableWriter:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        return self

    def write(self, chunk: pl.DataFrame) -> None:
        if self._schema is None:
            self._schema = chunk.schema
        elif chunk.schema != self._schema:
            try:
                chunk = chunk.select(list(self._schema)).cast(self._schema)
            except (pl.exceptions.PolarsError, KeyError) as exc:
                raise DataError(
                    f"{self.path}: rows {self.rows}… do not have the columns of the first rows ({exc})"
                ) from None
        if self.suffix in (".parquet", ".pq"):
            import pyarrow.parquet as pq

            table = chunk.to_arrow()
            if self._parquet is None:
                self._parquet = pq.ParquetWriter(self.partial, table.schema)
            self._parquet.write_table(table.cast(self._parquet.schema))
        else:
            if self._handle is None:
                self._handle = open(self.partial, "wb")  # noqa: SIM115 (closed in __exit__)
            if self.suffix == ".csv":
                chunk.write_csv(self._handle, include_header=self.rows == 0)
            else:
                chunk.write_ndjson(self._handle)
        self.rows += chunk.height

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._parquet is not None:
            self._parquet.close()
        if self._handle is not None:
            self._handle.close()
        if kind is not None or self._schema is None:
            self.partial.unlink(missing_ok=True)  # a failed run leaves nothing; no rows, no file
            return
        os.replace(self.partial, self.path)
