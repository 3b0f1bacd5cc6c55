"""The ray engine on a Ray started here (2 CPUs): the same table and report as one pass. Skipped,
with Ray's reason, where Ray is not installed or cannot start."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from test_align_messy import write_fixture  # the hand-written messy fixture

from plait.align.align import align
from plait.align.sharded import align_sharded
from plait.align.spec import parse_streams
from plait.errors import DataError


@pytest.fixture(scope="module")
def ray() -> Iterator[Any]:
    ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'plait[ray]')")
    try:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    except Exception as exc:  # no shared memory, no free port, …: say why, don't fail the suite
        pytest.skip(f"Ray cannot start here: {exc}")
    yield ray
    ray.shutdown()


def test_ray_engine_gives_the_one_pass_result(ray: Any, tmp_path: Path) -> None:
    spec = parse_streams(write_fixture(tmp_path))
    expected = align(spec, tmp_path, write=False)
    lines: list[str] = []
    got = align_sharded(spec, tmp_path, shards=3, bucket_s=1.0, engine="ray", say=lines.append)
    assert pl.read_parquet(got.table_path).equals(expected.table)
    assert got.report.to_json() == expected.report.to_json()
    assert any(line.startswith("shard ") for line in lines) and ray.is_initialized()


def test_a_failing_shard_stops_the_run_with_its_error(ray: Any, tmp_path: Path) -> None:
    raw = write_fixture(tmp_path)
    sensor = pl.read_csv(tmp_path / "vibration.csv").cast({"ax": pl.String})
    sensor.with_columns(
        pl.when(pl.int_range(pl.len()) == 40).then(pl.lit("loose")).otherwise("ax").alias("ax")
    ).write_csv(tmp_path / "vibration.csv")
    with pytest.raises(DataError) as one_pass:
        align(parse_streams(raw), tmp_path, write=False)
    with pytest.raises(DataError) as sharded:
        align_sharded(parse_streams(raw), tmp_path, shards=2, engine="ray")
    assert "'loose' at row 40" in str(one_pass.value) and "'loose' at row 40" in str(sharded.value)
