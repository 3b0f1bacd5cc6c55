"""`plait predict` over a folder of Parquet parts, and `--engine ray` on a local Ray: the same
rows, in the same order, with the same load report (the table's row numbers) as one local pass."""

from __future__ import annotations

import os
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from plait.batch_predict import predict_file
from plait.cli.main import app
from plait.errors import DataError
from plait.predictor import Predictor


def _parts(table: Path, folder: Path, sizes: list[int]) -> Path:
    """The table split into Parquet parts of `sizes` rows (the rest in a last part), named so that
    name order is row order."""
    frame = pl.read_parquet(table)
    folder.mkdir()
    start = 0
    for i, size in enumerate([*sizes, frame.height]):
        part = frame.slice(start, size)
        if part.height:
            part.write_parquet(folder / f"part-{i:03d}.parquet")
        start += part.height
    return folder


def test_a_folder_of_parts_predicts_as_the_whole_table(pumps_bundle, pumps_small, tmp_path) -> None:
    predictor = Predictor.load(pumps_bundle.bundle_path)
    whole = predict_file(predictor, pumps_small.table_path, tmp_path / "whole.parquet", chunk_rows=40)
    parts = _parts(pumps_small.table_path, tmp_path / "parts", [37, 51])
    run = predict_file(predictor, parts, tmp_path / "parts.parquet", chunk_rows=40, root=pumps_small.root)
    assert pl.read_parquet(tmp_path / "parts.parquet").equals(pl.read_parquet(tmp_path / "whole.parquet"))
    assert run.report == whole.report  # row numbers go on across the parts
    pl.read_parquet(sorted(parts.iterdir())[0]).head(0).write_parquet(parts / "part-000-empty.parquet")
    again = predict_file(predictor, parts, tmp_path / "again.parquet", chunk_rows=40, root=pumps_small.root)
    assert again.report == whole.report  # an empty part (Spark writes them) holds no rows: skipped


def test_parts_with_other_columns_and_an_empty_folder_are_refused(
    pumps_bundle, pumps_small, tmp_path
) -> None:
    predictor = Predictor.load(pumps_bundle.bundle_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match=r"no \.parquet files"):
        predict_file(predictor, empty, tmp_path / "o.parquet")
    parts = _parts(pumps_small.table_path, tmp_path / "parts", [30])
    first = sorted(parts.iterdir())[0]
    pl.read_parquet(first).drop(pl.read_parquet(first).columns[-1]).write_parquet(first)
    with pytest.raises(DataError, match="the parts of one table must have the same columns"):
        predict_file(predictor, parts, tmp_path / "o.parquet", root=pumps_small.root)
    assert not (tmp_path / "o.parquet").exists()


def test_engine_options_are_checked_before_any_work(pumps_bundle, pumps_small, tmp_path) -> None:
    runner = CliRunner()
    base = [
        "predict",
        str(pumps_bundle.bundle_path),
        str(pumps_small.table_path),
        "-o",
        str(tmp_path / "o.parquet"),
    ]
    done = runner.invoke(app, [*base, "--engine", "rey"])
    assert done.exit_code == 2 and "did you mean 'ray'" in done.output
    done = runner.invoke(app, [*base, "--workers", "4"])
    assert done.exit_code == 2 and "go with --engine ray" in done.output
    done = runner.invoke(app, [*base, "--engine", "ray", "--impute", "embedding"])
    assert done.exit_code == 2 and "--impute run with --engine local" in done.output


@pytest.fixture(scope="module")
def local_ray():
    """A Ray on this machine for the module's tests; skipped, with Ray's reason, where it cannot start."""
    ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'plait[ray]')")
    try:
        ray.init(num_cpus=3, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    except Exception as exc:  # any reason Ray cannot start here is a reason to skip
        pytest.skip(f"Ray could not start on this machine: {exc}")
    yield ray
    ray.shutdown()


@pytest.mark.slow
def test_ray_predicts_the_local_rows_in_order(local_ray, pumps_bundle, pumps_small, tmp_path) -> None:
    from plait.batch_predict_ray import predict_file_ray

    predictor = Predictor.load(pumps_bundle.bundle_path)
    local = predict_file(predictor, pumps_small.table_path, tmp_path / "local.parquet", chunk_rows=20)
    parts = _parts(pumps_small.table_path, tmp_path / "parts", [33, 40, 12])
    said: list[str] = []
    run = predict_file_ray(
        pumps_bundle.bundle_path,
        parts,
        tmp_path / "ray.parquet",
        root=pumps_small.root,
        chunk_rows=20,
        workers=2,
        say=said.append,
    )
    assert pl.read_parquet(tmp_path / "ray.parquet").equals(pl.read_parquet(tmp_path / "local.parquet"))
    assert run.report == local.report  # merged in row order, in the table's row numbers
    assert run.rows == local.rows and run.degraded == local.degraded > 0
    assert said and said[-1] == f"predicted {local.rows} rows"


@pytest.mark.slow
def test_a_row_that_cannot_load_stops_ray_with_its_table_row(
    local_ray, pumps_bundle, pumps_small, tmp_path
) -> None:
    from plait.batch_predict_ray import predict_file_ray

    parts = _parts(pumps_small.table_path, tmp_path / "parts", [30, 30])
    second = sorted(parts.iterdir())[1]
    frame = pl.read_parquet(second)
    image = next(c for c in ("thermal", "image", "photo") if c in frame.columns)
    bad = frame.with_columns(
        pl.when(pl.int_range(pl.len()) == 7)
        .then(pl.lit("../../../etc/hostname"))
        .otherwise(pl.col(image))
        .alias(image)
    )
    bad.write_parquet(second)
    with pytest.raises(DataError, match=rf"row 37: field '{image}': path '\.\./\.\./\.\./etc/hostname'"):
        predict_file_ray(
            pumps_bundle.bundle_path, parts, tmp_path / "o.parquet", root=pumps_small.root, chunk_rows=20
        )
    assert not (tmp_path / "o.parquet").exists()


@pytest.mark.slow
def test_the_command_line_starts_and_stops_its_own_ray(pumps_bundle, pumps_small, tmp_path) -> None:
    """No Ray running before: `plait predict --engine ray` starts one for the run and stops it."""
    import subprocess
    import sys

    pytest.importorskip("ray", reason="Ray is not installed (pip install 'plait[ray]')")
    plait = Path(sys.executable).with_name("plait")
    out = tmp_path / "ray.parquet"
    done = subprocess.run(
        [str(plait), "predict", str(pumps_bundle.bundle_path), str(pumps_small.table_path), "-o", str(out),
         "--engine", "ray", "--workers", "1", "--no-progress", "--chunk-rows", "50"],
        capture_output=True, text=True, timeout=300,
        env={k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"},
    )  # fmt: skip
    if done.returncode != 0 and "Ray" in done.stderr and "start" in done.stderr.lower():
        pytest.skip(f"Ray could not start here: {done.stderr[-500:]}")
    assert done.returncode == 0, done.stderr[-3000:]
    local = predict_file(
        Predictor.load(pumps_bundle.bundle_path), pumps_small.table_path, tmp_path / "l.parquet"
    )
    assert pl.read_parquet(out).equals(pl.read_parquet(tmp_path / "l.parquet"))
    assert f"wrote {local.rows} predictions" in done.stdout


@pytest.mark.slow
def test_ray_refuses_csv_and_a_bundle_that_cannot_load(
    local_ray, pumps_bundle, pumps_small, tmp_path
) -> None:
    from plait.batch_predict_ray import predict_file_ray

    csv = tmp_path / "t.csv"
    csv.write_text("a\n1\n")
    with pytest.raises(DataError, match="--engine ray reads Parquet"):
        predict_file_ray(pumps_bundle.bundle_path, csv, tmp_path / "o.parquet")
    from plait.errors import ConfigError, PlaitError

    with pytest.raises(PlaitError):
        predict_file_ray(tmp_path / "no-bundle", pumps_small.table_path, tmp_path / "o.parquet")
    with pytest.raises(ConfigError, match=r"the Ray cluster has 3 CPUs.*at most 3 workers"):
        predict_file_ray(pumps_bundle.bundle_path, pumps_small.table_path, tmp_path / "o.parquet", workers=5)
    assert not (tmp_path / "o.parquet").exists()
