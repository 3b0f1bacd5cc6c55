"""Fingerprints are stable under format changes and sensitive to one changed byte; records round-trip."""

from __future__ import annotations

import hashlib
import json
import re
import time
from datetime import datetime
from pathlib import Path

import polars as pl
import pytest

from plait.errors import BundleError
from plait.provenance.fingerprint import fingerprint_files, fingerprint_table, sha256_file
from plait.provenance.record import NOT_INSTALLED, Provenance, collect_provenance, package_versions


def test_sha256_file_matches_hashlib(tmp_path: Path) -> None:
    path = tmp_path / "blob.bin"
    data = bytes(range(256)) * 5000  # > 1 MiB chunk
    path.write_bytes(data)
    assert sha256_file(path) == hashlib.sha256(data).hexdigest()


def _frame() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "id": [1, 2, 3],
            "x": [0.5, None, 2.0],
            "s": ["a", None, "ccc"],
            "flag": [True, False, None],
            "vec": [[1.0, 2.0], [], None],
        }
    )


def test_fingerprint_table_is_format_independent(tmp_path: Path) -> None:
    df = _frame().drop("vec")
    df.write_csv(tmp_path / "t.csv")
    df.write_parquet(tmp_path / "t.parquet")
    from_csv = pl.read_csv(tmp_path / "t.csv")
    from_parquet = pl.read_parquet(tmp_path / "t.parquet")
    assert fingerprint_table(from_csv) == fingerprint_table(from_parquet) == fingerprint_table(df)


def test_fingerprint_table_sees_every_change() -> None:
    base = fingerprint_table(_frame())
    assert fingerprint_table(_frame()) == base
    assert (
        fingerprint_table(pl.concat([_frame().head(2), _frame().tail(1)])) == base
    )  # chunking is irrelevant
    changed = [
        _frame().with_columns(pl.Series("s", ["a", None, "ccd"])),
        _frame().with_columns(pl.Series("s", ["a", "", "ccc"])),  # null vs empty string
        _frame().with_columns(pl.Series("x", [0.5, None, 2.0000001])),
        _frame().with_columns(pl.Series("vec", [[1.0, 2.0], None, []])),  # empty list vs null
        _frame().rename({"x": "y"}),
        _frame().with_columns(pl.col("id").cast(pl.Int32)),
        _frame().reverse(),
        _frame().head(2),
    ]
    hashes = {fingerprint_table(df) for df in changed}
    assert base not in hashes and len(hashes) == len(changed)


def test_fingerprint_table_handles_other_dtypes() -> None:
    df = pl.DataFrame(
        {
            "when": [datetime(2026, 3, 1, 10), None],
            "cat": pl.Series(["a", "b"], dtype=pl.Categorical),
            "blob": [b"\x00\x01", None],
            "st": [{"a": 1, "b": "x"}, {"a": 2, "b": None}],
            "arr": pl.Series([[1, 2], [3, 4]], dtype=pl.Array(pl.Int64, 2)),
        }
    )
    first = fingerprint_table(df)
    assert re.fullmatch(r"[0-9a-f]{64}", first) and fingerprint_table(df.clone()) == first
    other = df.with_columns(pl.Series("blob", [b"\x00\x02", None]))
    assert fingerprint_table(other) != first


def test_fingerprint_files_stable_relocatable_and_sensitive(tmp_path: Path) -> None:
    for folder in ("a", "b"):
        (tmp_path / folder / "img").mkdir(parents=True)
        for i in range(3):
            (tmp_path / folder / "img" / f"{i}.png").write_bytes(b"png" + bytes([i]))
    a = fingerprint_files([tmp_path / "a" / "img" / f"{i}.png" for i in (2, 0, 1, 0)])
    b = fingerprint_files([tmp_path / "b" / "img" / f"{i}.png" for i in range(3)])
    assert a == b  # same names relative to their folder, same bytes, order and duplicates irrelevant
    assert (a.count, a.total_bytes, a.missing) == (3, 12, 0)
    (tmp_path / "b" / "img" / "1.png").write_bytes(b"png\x09")
    assert fingerprint_files([tmp_path / "b" / "img" / f"{i}.png" for i in range(3)]).sha256 != a.sha256


def test_fingerprint_files_counts_missing(tmp_path: Path) -> None:
    (tmp_path / "x.wav").write_bytes(b"abc")
    result = fingerprint_files(
        [tmp_path / "x.wav", tmp_path / "gone.wav", tmp_path / "gone.wav"], root=tmp_path
    )
    assert (result.count, result.total_bytes, result.missing) == (1, 3, 1)
    assert result.sha256 != fingerprint_files([tmp_path / "x.wav"], root=tmp_path).sha256
    assert fingerprint_files([]).count == 0


def test_fingerprint_files_is_fast_for_thousands_of_small_files(tmp_path: Path) -> None:
    paths = []
    for i in range(2000):
        path = tmp_path / f"{i}.bin"
        path.write_bytes(i.to_bytes(4, "little") * 64)
        paths.append(path)
    start = time.perf_counter()
    result = fingerprint_files(paths)
    assert result.count == 2000
    assert time.perf_counter() - start < 5.0


def test_package_versions_uses_metadata() -> None:
    versions = package_versions()
    assert set(versions) >= {"python", "torch", "lightning", "polars", "numpy", "torchmetrics", "safetensors"}
    assert versions["polars"] == pl.__version__
    assert all(v == NOT_INSTALLED or re.match(r"\d", v) for v in versions.values())


def test_provenance_round_trip(tmp_path: Path) -> None:
    (tmp_path / "p.png").write_bytes(b"x")
    record = collect_provenance(
        config_text="task: {label: y}\n",
        table=_frame(),
        table_path=tmp_path / "t.csv",
        seed=7,
        split_sizes={"train": 2, "val": 1, "test": 0},
        media=fingerprint_files([tmp_path / "p.png"]),
    )
    assert record.created_at.endswith("+00:00")
    assert datetime.fromisoformat(record.created_at).utcoffset() is not None
    assert record.config_sha256 == hashlib.sha256(b"task: {label: y}\n").hexdigest()
    assert record.table_sha256 == fingerprint_table(_frame()) and record.table_rows == 3
    assert record.platform["machine"] != ""
    raw = json.loads(json.dumps(record.to_json()))
    assert Provenance.from_json(raw) == record
    assert raw["media"]["count"] == 1 and raw["split"] == {"train": 2, "val": 1, "test": 0}


def test_provenance_from_json_names_missing_keys() -> None:
    with pytest.raises(BundleError, match=r"provenance\.json: missing table_sha256, seed"):
        Provenance.from_json(
            {
                "plait_version": "0",
                "created_at": "",
                "config_sha256": "",
                "table_path": "",
                "table_rows": 1,
                "split": {},
            }
        )


def test_a_kind_that_reads_files_declares_them_and_provenance_follows(tmp_path) -> None:
    """Issue 14's first finding: the kinds whose files are fingerprinted were hard-coded in
    training, so a new kind (`document`) got `"media": null`. A modality now declares its file
    columns; the kind's name plays no part."""
    import polars as pl

    from plait.provenance.media import media_paths

    class Document:  # a stand-in plug-in of a kind plait does not know
        kind = "document"

        def columns(self) -> tuple[str, ...]:
            return ("doc",)

        def file_columns(self) -> tuple[str, ...]:
            return ("doc",)

    (tmp_path / "a.pdf").write_bytes(b"%PDF-1.4")
    (tmp_path / "b.pdf").write_bytes(b"%PDF-1.4 b")
    df = pl.DataFrame({"doc": ["a.pdf", "b.pdf", None]})
    paths = media_paths(df, {"doc": Document()}, tmp_path)  # type: ignore[dict-item]
    assert sorted(p.name for p in paths) == ["a.pdf", "b.pdf"]

    class Numbers(Document):
        def file_columns(self) -> tuple[str, ...]:
            return ()

    assert media_paths(df, {"doc": Numbers()}, tmp_path) == []  # type: ignore[dict-item]
