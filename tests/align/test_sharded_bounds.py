"""What sharding promises about memory and reading, checked without timing anything: the final
table is merged from the shards' parts a batch at a time (no concatenation of every part, also
without --bucket-s), a Parquet key group is filtered in the key's own type so its row-group
statistics skip the other groups (other row groups are made unreadable: reading one would fail),
integer keys group consistently across streams, and folders alone cannot be cut into groups."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from test_align_messy import write_fixture  # the hand-written messy fixture

import plait.align.sharded as sharded
from plait.align.align import align
from plait.align.frames import ANCHOR, KEY
from plait.align.load import load_stream_part
from plait.align.shards import KeyGroups, plan_key_groups
from plait.align.spec import parse_streams
from plait.datasets.pumps_streams import generate_pumps_streams
from plait.errors import ConfigError

# ---------------------------------------------------------------------------- the final merge


def test_merge_by_anchor_streams_parts_in_id_order_in_bounded_batches(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    ids = rng.permutation(500)
    owner = rng.integers(0, 4, size=500)
    paths = []
    for part in range(4):
        mine = np.sort(ids[owner == part])
        path = tmp_path / f"{part}.parquet"
        pl.DataFrame({ANCHOR: mine.astype(np.uint32), "w": [[float(i)] * 3 for i in mine]}).write_parquet(
            path, row_group_size=7
        )
        paths.append(str(path))
    batches = list(sharded.merge_by_anchor(paths, batch_rows=5))
    assert max(b.height for b in batches) <= 4 * 5  # never more than a batch of each part
    merged = pl.concat(batches)
    assert merged[ANCHOR].to_list() == list(range(500))
    assert merged["w"].to_list() == [[float(i)] * 3 for i in range(500)]


def test_merge_by_anchor_of_empty_parts_keeps_the_columns(tmp_path: Path) -> None:
    path = tmp_path / "0.parquet"
    pl.DataFrame(schema={ANCHOR: pl.UInt32, "x": pl.List(pl.Float32)}).write_parquet(path)
    (out,) = sharded.merge_by_anchor([str(path), str(path)])
    assert out.height == 0 and out.schema == pl.Schema({ANCHOR: pl.UInt32, "x": pl.List(pl.Float32)})


def test_without_buckets_the_table_is_merged_a_batch_at_a_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Regression: with one time bucket every shard's rows were concatenated in the driver."""
    monkeypatch.setattr(sharded, "MERGE_BATCH_ROWS", 1)
    written: list[int] = []
    merge = sharded.merge_by_anchor

    def spy(paths: list[str], batch_rows: int | None = None) -> Any:
        for rows in merge(paths, batch_rows):
            written.append(rows.height)
            yield rows

    monkeypatch.setattr(sharded, "merge_by_anchor", spy)
    spec = parse_streams(write_fixture(tmp_path))
    expected = align(spec, tmp_path, write=False)
    got = sharded.align_sharded(spec, tmp_path, shards=2, workers=1)
    assert pl.read_parquet(got.table_path).equals(expected.table)
    assert got.report.to_json() == expected.report.to_json()
    assert sum(written) == expected.table.height and max(written) <= 2  # 2 entity groups × 1 row


# ---------------------------------------------------------------------------- reading a key group


def _sensor(keys: list[Any], per_key: int = 4) -> pa.Table:
    times = [1_700_000_000_000 + 100 * i for i in range(per_key)]
    return pa.table(
        {
            "t": [t for _ in keys for t in times],
            "k": [k for k in keys for _ in times],
            "x": [float(i) for i in range(len(keys) * per_key)],
        }
    )


def _unreadable_row_groups(path: Path, row_groups: list[int]) -> None:
    """Overwrite the data of these row groups, leaving the footer (and its statistics) intact."""
    meta = pq.ParquetFile(path).metadata
    data = bytearray(path.read_bytes())
    for rg in row_groups:
        for c in range(meta.num_columns):
            column = meta.row_group(rg).column(c)
            start = column.dictionary_page_offset or column.data_page_offset
            data[start : start + column.total_compressed_size] = b"\xff" * column.total_compressed_size
    path.write_bytes(bytes(data))


STREAM = {"kind": "timeseries", "path": "s.parquet", "key": "k", "time": "t", "time_format": "epoch_ms"}


@pytest.mark.parametrize(
    ("keys", "arrow_type"),
    [([3, 5, 10, 20], pa.int32()), (["a", "b", "c", "d"], pa.string())],
    ids=["integer-keys", "text-keys"],
)
def test_a_key_group_reads_only_its_own_row_groups(tmp_path: Path, keys: list[Any], arrow_type: Any) -> None:
    """Regression: integer keys were compared as text (`strict_cast(String) >= "5"`), which no
    row-group statistic answers, so every group read the whole file."""
    table = _sensor(keys).cast(pa.schema([("t", pa.int64()), ("k", arrow_type), ("x", pa.float64())]))
    path = tmp_path / "s.parquet"
    pq.write_table(table, path, row_group_size=4, compression="none", use_dictionary=False)  # a key each
    raw = {
        "anchors": {"hop_s": 1.0, "key": "k"},
        "sources": {"s": {**STREAM, "columns": ["x"], "window_s": 1.0, "rate_hz": 10}},
    }
    spec = parse_streams(raw)
    groups = plan_key_groups(spec, tmp_path, 2)
    assert groups.order == ("integer" if arrow_type == pa.int32() else "text")
    assert groups.bounds == (keys[2],)  # numeric order for integers: 3 5 | 10 20 (as text, "10" < "3")
    plan = pl.scan_parquet(path).filter(groups.keep(1)(pl.col("k"), pl.Schema(table.schema)["k"])).explain()
    assert "cast" not in plan and "SELECTION" in plan  # compared in its own type, inside the scan
    _unreadable_row_groups(path, [0, 1])  # the rows of group 0
    loaded, _ = load_stream_part(spec.streams[0], tmp_path, groups.keep(1))
    assert sorted(loaded.frame[KEY].unique()) == sorted(str(k) for k in keys[2:])
    assert loaded.stats.rows_read == 8


def test_integer_keys_group_alike_in_typed_and_text_streams(tmp_path: Path) -> None:
    """Integer keys in Parquet and the same entities as text in a CSV: one group per entity in every
    stream and anchor, and the one-pass result."""
    keys = [1, 2, 3, 10, 11, 20, 100]
    pq.write_table(_sensor(keys, per_key=12), tmp_path / "s.parquet", row_group_size=12)
    pl.DataFrame(
        {"t": [1_700_000_000_500] * len(keys), "k": [str(k) for k in keys], "model": list("ABCDEFG")}
    ).write_csv(tmp_path / "m.csv")
    raw = {
        "anchors": {"hop_s": 0.4, "key": "k"},
        "sources": {
            "s": {**STREAM, "columns": ["x"], "window_s": 0.3, "rate_hz": 10},
            "m": {"kind": "tabular", "path": "m.csv", "key": "k", "time": "t", "columns": ["model"]},
        },
    }
    spec = parse_streams(raw)
    groups = plan_key_groups(spec, tmp_path, 3)
    assert groups.order == "integer" and all(isinstance(b, int) for b in groups.bounds)
    expected = align(spec, tmp_path, write=False)
    for bucket_s in (None, 0.5):
        got = sharded.align_sharded(spec, tmp_path, shards=3, bucket_s=bucket_s, workers=1)
        assert pl.read_parquet(got.table_path).equals(expected.table)
        assert got.report.to_json() == expected.report.to_json()


def test_text_keys_that_are_no_integer_go_to_the_first_group() -> None:
    groups = KeyGroups((5, 10), "integer")
    frame = pl.DataFrame({"k": ["3", "5", "9", "10", "m7", None, "007"]})
    assert frame.select(groups.group_of(pl.col("k")))["literal"].to_list() == [0, 1, 1, 2, 0, 0, 1]
    for group in range(groups.count):  # the CSV reader's filter agrees with group_of
        kept = frame.filter(groups.keep(group)(pl.col("k"), pl.String()))["k"].to_list()
        assert kept == [k for k, g in zip(frame["k"], [0, 1, 1, 2, 0, 0, 1], strict=True) if g == group]


# ---------------------------------------------------------------------------- folders


def test_entity_groups_of_folder_streams_alone_are_refused(tmp_path: Path) -> None:
    """Regression: --shards N became one group, silently, when every keyed stream was a folder."""
    root = generate_pumps_streams(tmp_path / "pumps", n=12, seed=3, machines=3).root
    raw = yaml.safe_load((root / "plait.yaml").read_text())["streams"]
    raw["sources"] = {"thermal": raw["sources"]["thermal"]}
    spec = parse_streams(raw)
    with pytest.raises(ConfigError, match=r"shards: 3 entity groups .* \(folder streams: thermal\)"):
        sharded.align_sharded(spec, root, shards=3, workers=1)
    assert not list(root.glob(".plait-shards-*"))
    expected = align(spec, root, write=False)  # one group, cut by time, is the one-pass result
    got = sharded.align_sharded(spec, root, shards=1, bucket_s=3600.0, workers=1)
    assert pl.read_parquet(got.table_path).equals(expected.table)
