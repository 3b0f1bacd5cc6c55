"""`plait predict` streams: chunk by chunk into the output, the same answers as one pass, the load
report in the table's own row numbers, and nothing left behind by a run that fails."""

from __future__ import annotations

import polars as pl
import pytest

from plait.batch_predict import predict_file
from plait.data.dataset import FieldLoadReport, LoadReport
from plait.data.write_stream import TableWriter
from plait.errors import DataError
from plait.predictor import Predictor, predictions_table


@pytest.mark.parametrize("suffix", [".parquet", ".csv", ".jsonl"])
def test_streamed_predictions_equal_one_pass(pumps_bundle, pumps_small, tmp_path, suffix) -> None:
    predictor = Predictor.load(pumps_bundle.bundle_path)
    table = pumps_small.table_path
    whole, report = predictor.predict_with_report(table)
    expected = predictions_table(whole, predictor.trained.task.classes)
    out = tmp_path / f"p{suffix}"
    run = predict_file(predictor, table, out, chunk_rows=23)
    read = {".parquet": pl.read_parquet, ".csv": pl.read_csv, ".jsonl": pl.read_ndjson}[suffix](out)
    assert run.rows == len(whole) == read.height
    assert read["prediction"].cast(pl.String).to_list() == expected["prediction"].cast(pl.String).to_list()
    prob = next(c for c in expected.columns if c.startswith("prob_"))
    assert read[prob].to_list() == pytest.approx(expected[prob].to_list(), abs=1e-6)
    assert read["fields_missing"].fill_null("").to_list() == expected["fields_missing"].to_list()
    assert run.report.lines() == report.lines()  # the table's row numbers, merged over 23-row chunks
    assert run.degraded == sum(p.degraded for p in whole)


def test_a_failed_run_leaves_no_file(pumps_bundle, pumps_small, tmp_path, monkeypatch) -> None:
    import plait.batch_predict as batch

    predictor = Predictor.load(pumps_bundle.bundle_path)
    calls = {"n": 0}
    real = batch.load_table

    def failing(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(batch, "load_table", failing)
    with pytest.raises(KeyboardInterrupt):
        predict_file(predictor, pumps_small.table_path, tmp_path / "p.parquet", chunk_rows=10)
    assert list(tmp_path.iterdir()) == []


def test_reports_merge_counts_and_keep_the_first_example_rows() -> None:
    first = LoadReport(5, (FieldLoadReport("a", "image", 5, 2, {"undecodable": 2}, {"undecodable": (1, 3)}),))
    later = LoadReport(
        5,
        (
            FieldLoadReport(
                "a", "image", 5, 4, {"undecodable": 3, "empty": 1}, {"undecodable": (5, 6, 7), "empty": (9,)}
            ),
        ),
    )
    merged = first.merged(later).fields[0]
    assert (merged.rows, merged.absent) == (10, 6)
    assert merged.reasons == {"undecodable": 5, "empty": 1}
    assert merged.example_rows["undecodable"] == (1, 3, 5, 6, 7)
    assert LoadReport(0, ()).merged(first) == first


def test_a_chunk_with_other_columns_is_refused(tmp_path) -> None:
    refused = pytest.raises(DataError, match=r"do not have the columns of the first rows")
    with refused, TableWriter(tmp_path / "t.parquet") as writer:
        writer.write(pl.DataFrame({"a": [1, 2]}))
        writer.write(pl.DataFrame({"b": ["x"]}))
    assert list(tmp_path.iterdir()) == []
