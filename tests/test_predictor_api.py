"""The Python face agrees with the CLI: `Predictor.evaluate` scores the rows `plait evaluate` scores;
pandas DataFrames go wherever polars ones do; predictions come back as a DataFrame; a dict of lists
is a batch of rows or a clear error; a table without a field's column is evaluated without it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from plait import DataError, PlaitError, Predictor, load_bundle
from plait.cli.main import app
from plait.data.frames import BATCH_FIX, as_polars, mapping_rows
from plait.evaluation.evaluate import evaluate
from plait.workflow.evaluate import evaluate_report

FIX = BATCH_FIX.split(",")[0]  # "pass a list of records" — every batch error says how to fix it


@pytest.fixture(scope="module")
def predictor(pumps_bundle) -> Predictor:
    return Predictor.load(pumps_bundle.bundle_path)


@pytest.fixture(scope="module")
def table(pumps_small) -> pl.DataFrame:
    return pl.read_parquet(pumps_small.table_path)


# --- 1. evaluate scores the rows `plait evaluate` scores ---------------------------------------------
def test_evaluate_scores_the_held_out_rows_like_plait_evaluate(
    predictor, pumps_bundle, pumps_small, tmp_path
):
    result = predictor.evaluate(pumps_small.table_path)
    run = evaluate_report(
        load_bundle(pumps_bundle.bundle_path), pumps_small.table_path, robustness=False, out=tmp_path
    )
    report = json.loads((tmp_path / "metrics.json").read_text())
    own = pumps_bundle.trained.metrics
    assert own["split"] == "test"
    assert result["metrics"]["accuracy"] == report["metrics"]["accuracy"] == own["metrics"]["accuracy"]
    assert report["headline"]["value"] == result["metrics"]["accuracy"]
    test_rows = json.loads((pumps_bundle.bundle_path / "provenance.json").read_text())["split"]["test"]
    assert result["rows"] == report["data"]["rows"] == test_rows < 150
    assert result["selection"] == report["data"]["selection"] and result["selection"].startswith("test rows")
    assert run.load_report.rows == 150  # every row is loaded; the chosen ones are scored


def test_evaluate_rows_all_scores_every_labelled_row(predictor, pumps_small):
    result = predictor.evaluate(pumps_small.table_path, rows="all")
    assert result["rows"] == 150 and result["selection"] == "every labelled row"
    val = predictor.evaluate(pumps_small.table_path, rows="val")
    assert val["selection"].startswith("validation rows") and 0 < val["rows"] < 150


def test_evaluate_on_another_table_scores_every_labelled_row(pumps_bundle, table, pumps_small):
    other = table.head(60)  # not the training table: new data
    result = evaluate(pumps_bundle.trained, other, root=pumps_small.root)
    assert result.rows == 60 and "not the table this bundle was trained on" in result.selection
    with pytest.raises(DataError, match="use --rows all"):
        evaluate(pumps_bundle.trained, other, root=pumps_small.root, rows="test")


def test_cli_evaluate_and_predictor_evaluate_give_the_same_number(
    predictor, pumps_bundle, pumps_small, tmp_path
):
    out = tmp_path / "eval"
    args = ["evaluate", str(pumps_bundle.bundle_path), str(pumps_small.table_path), "-o", str(out)]
    result = CliRunner().invoke(app, [*args, "--no-robustness"])
    assert result.exit_code == 0, result.output
    cli = json.loads((out / "metrics.json").read_text())
    python = predictor.evaluate(pumps_small.table_path)
    assert cli["metrics"]["accuracy"] == python["metrics"]["accuracy"]
    assert cli["data"]["rows"] == python["rows"]


# --- 2. pandas wherever polars --------------------------------------------------------------------
def test_plait_does_not_import_pandas():
    code = (
        "import sys, plait, plait.predictor, plait.data.frames, plait.evaluation.evaluate\n"
        "print('pandas' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_as_polars_takes_polars_and_pandas_and_nothing_else(table):
    pd = pytest.importorskip("pandas")
    assert as_polars(table) is table
    back = as_polars(table.to_pandas())
    assert back is not None and back.schema == table.schema
    # pandas' own missing value is NaN, so NaN readings inside a series come back as nulls
    assert back.drop("vibration").equals(table.drop("vibration"))
    assert as_polars([{"a": 1}]) is None and as_polars("t.parquet") is None
    with pytest.raises(DataError, match="could not be converted to polars"):
        as_polars(pd.DataFrame({"mixed": [[1.0], "text"]}))


def test_predict_and_evaluate_take_pandas(predictor, table, pumps_small):
    pytest.importorskip("pandas")
    rows = table.head(8)
    frame = rows.to_pandas()
    from_polars = predictor.predict(rows, root=pumps_small.root)
    from_pandas = predictor.predict(frame, root=pumps_small.root)
    assert [p.prediction for p in from_pandas] == [p.prediction for p in from_polars]
    assert [p.probabilities for p in from_pandas] == [p.probabilities for p in from_polars]
    polars_eval = predictor.evaluate(table, root=pumps_small.root, rows="all")
    pandas_eval = predictor.evaluate(table.to_pandas(), root=pumps_small.root, rows="all")
    assert pandas_eval["metrics"] == polars_eval["metrics"] and pandas_eval["rows"] == 150
    report = predictor.report(table.to_pandas(), root=pumps_small.root, rows="all", robustness=False)
    assert report.metrics["accuracy"] == polars_eval["metrics"]["accuracy"]


def test_pandas_cells_holding_numpy_arrays_are_read_as_lists(predictor, table, pumps_small):
    pd = pytest.importorskip("pandas")
    rows = table.head(8)
    frame = pd.DataFrame({c: rows[c].to_list() for c in rows.columns if c != "vibration"})
    # the natural way to hold a multichannel series: one (steps, channels) array per row
    frame["vibration"] = [np.asarray(v, dtype=np.float32) for v in rows["vibration"].to_list()]
    assert frame["vibration"].iloc[0].ndim == 2
    back = as_polars(frame)
    assert back is not None and back.schema["vibration"] == pl.List(pl.List(pl.Float64))
    assert isinstance(frame["vibration"].iloc[0], np.ndarray)  # the caller's frame is left as it was
    from_polars = predictor.predict(rows, root=pumps_small.root)
    from_pandas = predictor.predict(frame, root=pumps_small.root)
    assert [p.probabilities for p in from_pandas] == [p.probabilities for p in from_polars]


def test_pandas_answers_keep_the_input_index(predictor, table, pumps_small):
    pytest.importorskip("pandas")
    frame = table.head(12).to_pandas()
    sub = frame[np.arange(len(frame)) % 3 == 1].copy()  # index 1, 4, 7, 10
    sub["p"] = predictor.predict(sub, root=pumps_small.root, as_frame=True)["prediction"]
    listed = predictor.predict(sub, root=pumps_small.root)
    assert sub["p"].tolist() == [p.prediction for p in listed]  # aligned on the index: no NaN, no shift
    proba = predictor.predict_proba(sub, root=pumps_small.root)
    assert list(proba.index) == [1, 4, 7, 10]
    assert proba.loc[7].to_dict() == listed[2].probabilities


def test_fit_takes_pandas_and_answers_in_pandas(three_class_table):
    pd = pytest.importorskip("pandas")
    frame = three_class_table(90, seed=1).to_pandas()
    predictor = Predictor(label="y", fusion="concat", epochs=2, progress=False).fit(frame)
    assert set(predictor.trained.modalities) >= {"vec"}
    predictions = predictor.predict(frame.head(5), as_frame=True)
    classes = predictor.trained.task.classes
    assert isinstance(predictions, pd.DataFrame) and len(predictions) == 5
    assert list(predictions.columns) == [
        "prediction",
        *(f"prob_{c}" for c in classes),
        "fields_used",
        "fields_imputed",
        "fields_missing",
        "degraded",
        "model_id",
    ]
    proba = predictor.predict_proba(frame.head(5))
    assert isinstance(proba, pd.DataFrame) and list(proba.columns) == list(classes)
    assert np.allclose(proba.sum(axis=1).to_numpy(), 1.0, atol=1e-4)
    picked = [classes[i] for i in proba.to_numpy().argmax(axis=1)]
    assert picked == predictions["prediction"].tolist()


def test_fit_on_pandas_reads_media_paths_from_the_working_directory(table, pumps_small, monkeypatch):
    pytest.importorskip("pandas")
    monkeypatch.chdir(pumps_small.root)
    predictor = Predictor(label="fault", fusion="concat", epochs=1, progress=False).fit(table.to_pandas())
    loaded = {f["field"]: f for f in predictor.trained.metrics["load_report"]["fields"]}
    assert loaded["thermal"]["absent"] < 10 and loaded["sound"]["absent"] < 10  # only the corrupt files
    assert predictor.config is not None and predictor.config.media_root() == Path(pumps_small.root).resolve()


# --- 3. predictions as a DataFrame; predict_proba ---------------------------------------------------
def test_predict_as_frame_follows_the_input_and_keeps_the_list_by_default(predictor, table, pumps_small):
    rows = table.head(4)
    listed = predictor.predict(rows, root=pumps_small.root)
    assert isinstance(listed, list) and len(listed) == 4
    frame = predictor.predict(rows, root=pumps_small.root, as_frame=True)
    assert isinstance(frame, pl.DataFrame) and frame.height == 4
    assert frame["prediction"].to_list() == [p.prediction for p in listed]
    assert frame["degraded"].to_list() == [p.degraded for p in listed]
    proba = predictor.predict_proba(rows.to_dicts(), root=pumps_small.root)
    assert isinstance(proba, pl.DataFrame) and proba.columns == list(predictor.trained.task.classes)
    assert proba.row(0, named=True) == listed[0].probabilities
    empty = predictor.predict_proba([], root=pumps_small.root)
    assert empty.height == 0 and empty.columns == list(predictor.trained.task.classes)


def test_predict_proba_of_a_regression_names_predict(three_class_table):
    df = three_class_table(60, seed=2)
    predictor = Predictor(label="x", fields={"vec": "embedding"}, epochs=1, progress=False).fit(df)
    assert predictor.trained.task.type == "regression"
    with pytest.raises(PlaitError, match=r"regression of 'x'.*use predict\(rows\)"):
        predictor.predict_proba(df.head(3))
    frame = predictor.predict(df.head(3), as_frame=True)
    assert frame.columns == [
        "prediction",
        "fields_used",
        "fields_imputed",
        "fields_missing",
        "degraded",
        "model_id",
    ]


# --- 4. a dict of lists is a batch of rows or a clear error ----------------------------------------
SEQUENCES = frozenset({"vibration", "vec"})


@pytest.mark.parametrize(
    ("mapping", "rows"),
    [
        ({"note": "a", "rpm": 1.0}, 1),  # scalars: one row
        ({"vibration": [0.1, 0.2, 0.3], "note": "a"}, 1),  # a sequence field's own list: one row
        ({"vibration": [[0.1, 0.2], [0.3, 0.4]], "note": "a"}, 1),  # one [T, C] series
        ({"vibration": [[[0.1]], [[0.2]]], "note": ["a", "b"]}, 2),  # one series per row
        ({"note": ["a", "b", "c"], "rpm": (1, 2, 3)}, 3),
        ({"note": np.array(["a", "b"]), "rpm": pl.Series([1.0, 2.0])}, 2),
        ({"vec": np.zeros((2, 4)), "note": ["a", "b"]}, 2),  # a 2-d array: one vector per row
        ({"vibration": ["a.npy", "b.npy"]}, 2),  # paths: one per row
        ({"vibration": [None, None], "note": ["a", "b"]}, 2),  # absent in both rows
        ({"vibration": [None, None], "note": "a"}, 1),  # one series with no readings
        ({"vibration": [0.1, 0.2]}, 1),
        ({}, 1),
    ],
)
def test_mapping_rows(mapping, rows):
    out = mapping_rows(mapping, SEQUENCES, "predict")
    assert len(out) == rows
    assert all(set(row) == set(mapping) for row in out)


def test_mapping_rows_takes_pandas_series():
    pd = pytest.importorskip("pandas")
    out = mapping_rows({"note": pd.Series(["a", "b"]), "rpm": pd.Series([1.0, 2.0])}, SEQUENCES, "predict")
    assert out == [{"note": "a", "rpm": 1.0}, {"note": "b", "rpm": 2.0}]


@pytest.mark.parametrize(
    ("mapping", "message"),
    [
        ({"note": ["a", "b"], "rpm": [1.0, 2.0, 3.0]}, r"different lengths \('note': 2, 'rpm': 3\)"),
        ({"note": ["a", "b"], "rpm": 1.0}, r"'note' is a list of 2 values but 'rpm' is one value \(1\.0\)"),
        ({"note": ["a", "b"], "vibration": [0.1, 0.2]}, "a sequence field holds one list per row"),
        ({"vibration": [[0.1, 0.2], [0.3, 0.4]]}, r"one row \(one multichannel series\) or a batch"),
    ],
)
def test_mapping_rows_refuses_what_it_cannot_read(mapping, message):
    with pytest.raises(DataError, match=message) as caught:
        mapping_rows(mapping, SEQUENCES, "predict")
    assert FIX in str(caught.value)


def test_predict_reads_a_dict_of_columns_as_rows(predictor, table, pumps_small):
    rows = table.head(3)
    columns = {c: rows[c].to_list() for c in rows.columns}
    by_columns = predictor.predict(columns, root=pumps_small.root)
    by_records = predictor.predict(rows.to_dicts(), root=pumps_small.root)
    assert len(by_columns) == 3
    assert [p.probabilities for p in by_columns] == [p.probabilities for p in by_records]
    series = {c: rows[c] for c in rows.columns}  # polars Series work too
    assert [p.prediction for p in predictor.predict(series, root=pumps_small.root)] == [
        p.prediction for p in by_records
    ]


def test_predict_reads_one_record_with_a_series_as_one_row(predictor, table, pumps_small):
    row = table.row(0, named=True)
    [full] = predictor.predict(row, root=pumps_small.root)
    [one] = predictor.predict({"vibration": row["vibration"], "note": row["note"]}, root=pumps_small.root)
    assert set(one.fields_used) == {"vibration", "note"} & set(full.fields_used) != set()
    assert len(predictor.predict({"note": "bearing grinding loudly"}, root=pumps_small.root)) == 1


def test_predict_refuses_ambiguous_batches(predictor, pumps_small):
    with pytest.raises(DataError, match=r"predict: the dict's columns have different lengths") as caught:
        predictor.predict({"note": ["a", "b"], "rpm": [1.0, 2.0, 3.0]}, root=pumps_small.root)
    assert FIX in str(caught.value)
    with pytest.raises(DataError, match="mixes columns and single values"):
        predictor.predict({"note": ["a", "b"], "rpm": 1500.0}, root=pumps_small.root)
    with pytest.raises(DataError, match=r"predict: row 1 is a str, not a dict"):
        predictor.predict([{"note": "a"}, "b"], root=pumps_small.root)


# --- 5. a table without a field's column ----------------------------------------------------------
def test_evaluate_without_a_fields_column_counts_it_absent(predictor, table, pumps_small):
    result = predictor.evaluate(table.drop("note"), root=pumps_small.root, rows="all")
    fields = {f["field"]: f for f in result["load_report"]["fields"]}
    assert fields["note"]["absent"] == 150
    assert fields["note"]["reasons"] == {"no column 'note' in the table": 150}
    assert fields["thermal"]["absent"] < 150
    assert result["rows"] == 150 and 0.0 <= result["metrics"]["accuracy"] <= 1.0
    assert result["single_field"]["note"]["accuracy"] <= 1.0


def test_plait_evaluate_without_a_fields_column(pumps_bundle, table, pumps_small, tmp_path):
    path = tmp_path / "no_note.parquet"
    table.drop("note").write_parquet(path)
    args = ["evaluate", str(pumps_bundle.bundle_path), str(path), "--root", str(pumps_small.root)]
    result = CliRunner().invoke(app, [*args, "-o", str(tmp_path / "eval"), "--no-robustness"])
    assert result.exit_code == 0, result.output
    assert "no column 'note' in the table" in result.output
    report = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert report["data"]["rows"] == 150


def test_predict_on_a_table_without_a_column_says_why(predictor, table, pumps_small):
    predictions, report = predictor.predict_with_report(table.head(5).drop("thermal"), root=pumps_small.root)
    assert all("thermal" in p.fields_missing for p in predictions)
    thermal = next(f for f in report.fields if f.field == "thermal")
    assert thermal.reasons == {"no column 'thermal' in the table": 5}


def test_evaluate_needs_the_label_and_some_field(predictor, table, pumps_small):
    with pytest.raises(DataError, match="none of the columns the model's fields read"):
        predictor.evaluate(table.select("inspection_id", "fault"), root=pumps_small.root)
    with pytest.raises(DataError, match=r"no column 'fault' for task\.label"):
        predictor.evaluate(table.drop("fault"), root=pumps_small.root)
    with pytest.raises(DataError, match=r"expected the path of a table file .* got list"):
        predictor.evaluate([{"fault": "normal"}])  # type: ignore[arg-type]


def test_relative_media_paths_of_a_dataframe_resolve_from_the_working_directory(
    predictor, table, pumps_small, monkeypatch
):
    monkeypatch.chdir(pumps_small.root)
    assert Path("thermal").is_dir()
    from_cwd = predictor.evaluate(table, rows="all")
    assert from_cwd["metrics"] == predictor.evaluate(table, root=pumps_small.root, rows="all")["metrics"]


def test_a_misspelt_key_is_an_error_and_other_extra_keys_are_ignored(pumps_bundle, pumps_small) -> None:
    """Regression (issue 13): `plait serve` answers 422 for an unknown key, while predict silently
    left the misspelt field absent."""
    import polars as pl

    from plait import Predictor
    from plait.errors import DataError

    predictor = Predictor.load(pumps_bundle.bundle_path)
    row = pl.read_parquet(pumps_small.table_path).row(0, named=True)  # carries the id and the label
    assert predictor.predict(row, root=pumps_small.root)[0].fields_missing == ()
    typo = {("notes" if k == "note" else k): v for k, v in row.items()}
    with pytest.raises(DataError, match=r"row 0 has the key 'notes'.*did you mean 'note'\?"):
        predictor.predict(typo, root=pumps_small.root)
