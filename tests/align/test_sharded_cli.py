"""`plait align --shards/--bucket-s/--engine/--workers`: the same files as one pass, progress per
shard, and clear refusals of bad values."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
import yaml
from test_align_messy import write_fixture  # the hand-written messy fixture
from typer.testing import CliRunner

from plait.cli.main import app


@pytest.fixture()
def config(tmp_path: Path) -> Path:
    path = tmp_path / "plait.yaml"
    path.write_text(yaml.safe_dump({"task": {"label": "fault"}, "streams": write_fixture(tmp_path)}))
    return path


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["align", *args], env={"COLUMNS": "200"})
    return result.exit_code, result.output + (str(result.exception) if result.exception else "")


def test_sharded_cli_writes_the_files_one_pass_writes(config: Path) -> None:
    root = config.parent
    code, output = run(str(config))
    assert code == 0, output
    one = pl.read_parquet(root / "samples.parquet"), (root / "samples.report.json").read_text()
    code, output = run(str(config), "--shards", "3", "--bucket-s", "1", "--workers", "1")
    assert code == 0, output
    assert "shard 1/" in output and "1 clock jumps" in output and "5 rows" in output
    assert pl.read_parquet(root / "samples.parquet").equals(one[0])
    assert (root / "samples.report.json").read_text() == one[1]
    assert not list(root.glob(".plait-shards-*")) and not list(root.glob(".samples.parquet.*"))


def test_auto_keeps_small_data_in_one_pass(config: Path) -> None:
    code, output = run(str(config), "--shards", "auto")
    assert code == 0, output
    assert "shard " not in output and "wrote" in output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--shards", "0"], "--shards: expected a number of entity groups ≥ 1 or auto, got '0'"),
        (["--shards", "many"], "--shards: expected a number of entity groups ≥ 1 or auto, got 'many'"),
        (["--shards", "2", "--bucket-s", "-5"], "bucket_s: expected a time bucket in seconds > 0, got -5"),
        (["--shards", "2", "--workers", "0"], "workers: expected a number of processes ≥ 1, got 0"),
        (["--shards", "2", "--engine", "rey"], "unknown engine 'rey'; did you mean 'ray'?"),
    ],
)
def test_bad_values_are_refused_clearly(config: Path, args: list[str], message: str) -> None:
    code, output = run(str(config), *args)
    assert code != 0 and message in output
    assert not (config.parent / "samples.parquet").exists()


def test_workers_with_one_pass_is_refused_not_ignored(config: Path) -> None:
    """Regression: --workers did nothing, silently, when alignment ran in one pass."""
    code, output = run(str(config), "--shards", "1", "--workers", "4")
    assert code != 0 and "--workers sets how many shards run at once" in output
    assert not (config.parent / "samples.parquet").exists()
    code, output = run(str(config), "--shards", "1", "--bucket-s", "1", "--workers", "1")
    assert code == 0, output  # a time-bucketed run uses its workers


def test_auto_that_resolves_to_one_pass_says_so(config: Path) -> None:
    code, output = run(str(config), "--shards", "auto", "--workers", "2")
    assert code == 0, output
    assert "--shards auto: one entity group, aligning in one pass in this process, --workers unused" in output
