"""Write a result table in the format its file name asks for."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from plait.errors import DataError

WRITERS = (".parquet", ".pq", ".csv", ".jsonl", ".ndjson")


def write_table(df: pl.DataFrame, path: Path | str) -> Path:
    out = Path(path)
    suffix = out.suffix.lower()
    if suffix not in WRITERS:
        raise DataError(f"cannot write {out}: unknown extension '{suffix}'; use one of {', '.join(WRITERS)}")
    out.parent.mkdir(parents=True, exist_ok=True)
    if suffix in (".parquet", ".pq"):
        df.write_parquet(out)
    elif suffix == ".csv":
        df.write_csv(out)
    else:
        df.write_ndjson(out)
    return out
