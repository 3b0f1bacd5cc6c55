"""Content fingerprints (SHA-256) of files, tables and media folders, for provenance records.

`fingerprint_table` hashes a canonical encoding of the table's content, not the bytes of its file,
so the same rows read from CSV or from Parquet give the same hash as long as polars reads them into
the same column names, dtypes and values. The encoding, column by column in table order:

    name, dtype (polars' string form), null mask (packed bits), then the values:
    numbers/booleans/temporals → little-endian fixed-width bytes (nulls as 0);
    strings/categoricals → UTF-8 byte lengths + the UTF-8 bytes (nulls as "");
    binary → lengths + bytes; lists/arrays → lengths, then the flattened elements recursively;
    structs → each field recursively; anything else → the UTF-8 of `str(value)` per row.

Every item is length-prefixed, so no two different tables share an encoding. Row order matters.
The hash is stable for a given polars version; provenance records the version alongside.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

_CHUNK = 1 << 20


def sha256_file(path: Path | str) -> str:
    """Hex SHA-256 of a file's bytes, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_bytes(data: bytes | str) -> str:
    """Hex SHA-256 of bytes, or of a string's UTF-8 encoding (e.g. a config's YAML text)."""
    return hashlib.sha256(data.encode("utf-8") if isinstance(data, str) else data).hexdigest()


def fingerprint_table(df: pl.DataFrame) -> str:
    """Hex SHA-256 of the table's content (see the module docstring for the encoding)."""
    digest = hashlib.sha256()
    _put(digest, b"plait-table-v1")
    _put(digest, str(df.height).encode())
    for series in df.get_columns():
        _put(digest, series.name.encode("utf-8"))
        _hash_series(digest, series)
    return digest.hexdigest()


def _put(digest: Any, data: bytes) -> None:
    digest.update(len(data).to_bytes(8, "little"))
    digest.update(data)


def _hash_series(digest: Any, series: pl.Series) -> None:
    dtype = series.dtype
    _put(digest, str(dtype).encode())
    _put(digest, np.packbits(series.is_null().to_numpy().astype(bool)).tobytes())
    if isinstance(dtype, pl.Array):
        series = series.cast(pl.List(dtype.inner))
        dtype = series.dtype
    if dtype == pl.Boolean or (dtype.is_numeric() and not isinstance(dtype, pl.Decimal)):
        _hash_fixed(digest, series.fill_null(0) if dtype != pl.Boolean else series.fill_null(False))
    elif dtype.is_temporal():
        _hash_fixed(digest, series.to_physical().fill_null(0))
    elif dtype in (pl.String, pl.Categorical) or isinstance(dtype, pl.Enum):
        text = series.cast(pl.String).fill_null("")
        _hash_fixed(digest, text.str.len_bytes())
        _put(digest, "".join(text.to_list()).encode("utf-8"))
    elif dtype == pl.Binary:
        blobs = series.fill_null(b"")
        _hash_fixed(digest, blobs.bin.size())
        _put(digest, b"".join(blobs.to_list()))
    elif isinstance(dtype, pl.List):
        _hash_fixed(digest, series.list.len().fill_null(0))
        # Null rows and empty lists explode to a null element; the lengths above tell them apart.
        _hash_series(digest, series.explode())
    elif isinstance(dtype, pl.Struct):
        for field in series.struct.unnest().get_columns():
            _put(digest, field.name.encode("utf-8"))
            _hash_series(digest, field)
    else:
        for value in series.to_list():
            _put(digest, str(value).encode("utf-8"))


def _hash_fixed(digest: Any, series: pl.Series) -> None:
    values = series.to_numpy()
    values = values.astype(values.dtype.newbyteorder("<"), copy=False)
    _put(digest, np.ascontiguousarray(values).tobytes())


@dataclass(frozen=True)
class FilesFingerprint:
    """sha256 over (relative name, content hash) of each distinct file in sorted name order;
    count and total_bytes of the files found; missing: distinct paths that did not exist
    (counted, and their names hashed as missing, never fatal)."""

    sha256: str
    count: int
    total_bytes: int
    missing: int

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @staticmethod
    def from_json(raw: dict[str, Any]) -> FilesFingerprint:
        return FilesFingerprint(
            sha256=str(raw["sha256"]),
            count=int(raw["count"]),
            total_bytes=int(raw["total_bytes"]),
            missing=int(raw["missing"]),
        )


def fingerprint_files(paths: Iterable[Path | str], root: Path | str | None = None) -> FilesFingerprint:
    """Fingerprint a set of media files. Names are taken relative to `root` (default: the folder
    all the paths share), so moving the whole media folder does not change the hash."""
    unique = sorted({Path(p).absolute() for p in paths})
    base = Path(root).absolute() if root is not None else _common_folder(unique)
    entries: list[tuple[str, str]] = []
    total = missing = 0
    for path in unique:
        name = _relative_name(path, base)
        try:
            size = path.stat().st_size
            content = sha256_file(path) if path.is_file() else None
        except OSError:
            content = None
        if content is None:
            missing += 1
            entries.append((name, "missing"))
            continue
        total += size
        entries.append((name, content))
    digest = hashlib.sha256(b"plait-files-v1")
    for name, content in sorted(entries):
        _put(digest, name.encode("utf-8"))
        _put(digest, content.encode())
    return FilesFingerprint(
        sha256=digest.hexdigest(), count=len(entries) - missing, total_bytes=total, missing=missing
    )


def _common_folder(paths: list[Path]) -> Path:
    if not paths:
        return Path(".").absolute()
    try:
        return Path(os.path.commonpath([p.parent for p in paths]))
    except ValueError:  # different drives on Windows
        return Path(paths[0].anchor)


def _relative_name(path: Path, base: Path) -> str:
    try:
        return path.relative_to(base).as_posix()
    except ValueError:
        return path.as_posix()
