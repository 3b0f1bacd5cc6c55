"""read_table, check_columns, infer_task_type and prepare_labels, with their error messages."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from plait.data.table import check_columns, infer_task_type, prepare_labels, read_table
from plait.errors import DataError

ROWS = {"fault": ["normal", "worn", "normal"], "rpm": [1200.0, 1500.5, 900.0], "note": ["ok", "noisy", None]}


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".parquet", ".pq", ".jsonl", ".ndjson", ".json"])
def test_read_table_every_format_gives_the_same_frame(tmp_path: Path, suffix: str) -> None:
    df = pl.DataFrame(ROWS)
    path = tmp_path / f"t{suffix}"
    if suffix in (".csv",):
        df.write_csv(path)
    elif suffix == ".tsv":
        df.write_csv(path, separator="\t")
    elif suffix in (".parquet", ".pq"):
        df.write_parquet(path)
    elif suffix in (".jsonl", ".ndjson"):
        df.write_ndjson(path)
    else:
        df.write_json(path)
    got = read_table(path)
    assert got.columns == ["fault", "rpm", "note"]
    assert got["fault"].to_list() == ROWS["fault"]
    assert got["rpm"].to_list() == ROWS["rpm"]
    assert got["note"].to_list() == ["ok", "noisy", None]


def test_read_table_unknown_extension_lists_supported(tmp_path: Path) -> None:
    path = tmp_path / "t.xlsx"
    path.write_text("x")
    with pytest.raises(DataError, match=r"unsupported extension '\.xlsx'.*\.csv.*\.parquet.*\.jsonl"):
        read_table(path)


def test_read_table_missing_file_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"nope\.csv does not exist.*data\.path"):
        read_table(tmp_path / "nope.csv")


def test_read_table_parse_failure_names_file_and_fix(tmp_path: Path) -> None:
    path = tmp_path / "broken.parquet"
    path.write_bytes(b"this is not parquet at all")
    with pytest.raises(
        DataError, match=r"broken\.parquet could not be read as parquet: .+; re-export"
    ) as info:
        read_table(path)
    assert "\n" not in str(info.value)

    bad_json = tmp_path / "bad.json"
    bad_json.write_text('[{"a": 1')
    with pytest.raises(DataError, match=r"bad\.json could not be read as json.*array of objects"):
        read_table(bad_json)
    bad_json.write_text('{"a": 1}')
    with pytest.raises(
        DataError, match=r"bad\.json could not be read as json: the file does not start with '\['"
    ):
        read_table(bad_json)


def test_read_table_zero_rows(tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_text("fault,rpm\n")
    with pytest.raises(DataError, match=r"empty\.csv has no rows"):
        read_table(path)


def test_check_columns_label_typo_suggests_and_lists() -> None:
    df = pl.DataFrame(ROWS)
    with pytest.raises(DataError) as info:
        check_columns(df, "fualt", {}, "data.csv")
    message = str(info.value)
    assert "table data.csv has no column 'fualt' for task.label; did you mean 'fault'?" in message
    assert "Columns: fault, rpm, note" in message


def test_check_columns_field_column_missing_gives_fix() -> None:
    df = pl.DataFrame(ROWS)
    check_columns(df, "fault", {"note": ("note",), "tabular": ("rpm",)}, "data.csv")  # all present
    with pytest.raises(DataError) as info:
        check_columns(df, "fault", {"speed": ("rmp",)}, "data.csv")
    message = str(info.value)
    assert "fields.speed" in message and "'rmp'" in message and "did you mean 'rpm'?" in message
    assert "set `column:` in fields.speed" in message
    with pytest.raises(DataError, match=r"fields\.tabular.*'temp'.*fix the column list of fields\.tabular"):
        check_columns(df, "fault", {"tabular": ("rpm", "temp")}, "data.csv")


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (["a", "b"], "classification"),
        ([True, False], "classification"),
        ([0, 1, 2, 1], "classification"),
        (list(range(25)), "regression"),
        ([0.5, 1.5], "regression"),
    ],
)
def test_infer_task_type_auto(values: list[object], expected: str) -> None:
    assert infer_task_type(pl.Series("y", values), "auto") == expected


def test_infer_task_type_categorical_and_declared() -> None:
    assert infer_task_type(pl.Series("y", ["a", "b"], dtype=pl.Categorical), "auto") == "classification"
    assert infer_task_type(pl.Series("y", [0.5, 1.5]), "classification") == "classification"
    assert infer_task_type(pl.Series("y", [1, 2]), "regression") == "regression"


def test_prepare_labels_classification_counts_missing_rows() -> None:
    df = pl.DataFrame({"fault": ["worn", None, "normal", "  ", "worn", "normal"]})
    info = prepare_labels(df, "fault", "classification", "data.csv")
    assert info.classes == ("normal", "worn")
    assert info.missing_rows == (1, 3)
    assert info.valid.tolist() == [True, False, True, False, True, True]
    assert info.target.dtype == np.int64
    assert info.target.tolist() == [1, -1, 0, -1, 1, 0]
    assert info.counts == (2, 2)


def test_prepare_labels_integer_classes_sort_by_value() -> None:
    df = pl.DataFrame({"y": [10, 2, 1, 2]})
    info = prepare_labels(df, "y", "classification", "t.csv")
    assert info.classes == ("1", "2", "10")
    assert info.target.tolist() == [2, 1, 0, 1]


def test_prepare_labels_single_class_message() -> None:
    df = pl.DataFrame({"fault": ["normal", "normal", None]})
    with pytest.raises(DataError) as info:
        prepare_labels(df, "fault", "classification", "data.csv")
    assert str(info.value) == (
        "task.label 'fault' has a single class 'normal' in data.csv; classification needs ≥ 2 classes — "
        "check the column or use task.type: regression"
    )


def test_prepare_labels_no_label_at_all() -> None:
    df = pl.DataFrame({"fault": [None, None]}, schema={"fault": pl.String})
    with pytest.raises(
        DataError, match=r"task.label 'fault' has no values in data.csv: all 2 rows are empty"
    ):
        prepare_labels(df, "fault", "classification", "data.csv")


def test_prepare_labels_regression_mean_std_and_nan() -> None:
    df = pl.DataFrame({"price": [1.0, float("nan"), 3.0, None]})
    info = prepare_labels(df, "price", "regression", "t.csv")
    assert info.classes == ()
    assert info.missing_rows == (1, 3)
    assert info.target.dtype == np.float64
    assert info.target[0] == 1.0 and math.isnan(info.target[1])
    assert info.mean == pytest.approx(2.0) and info.std == pytest.approx(1.0)


def test_prepare_labels_regression_numeric_strings_parse() -> None:
    df = pl.DataFrame({"price": ["1.5", " 2.5", "", "3.5"]})
    info = prepare_labels(df, "price", "regression", "t.csv")
    assert info.missing_rows == (2,)
    assert info.target[[0, 1, 3]].tolist() == [1.5, 2.5, 3.5]


def test_prepare_labels_regression_non_numeric_names_rows_and_values() -> None:
    values = ["1", "abc", "2", "n/a", "x1", "x2", "x3", "x4", "3"]
    df = pl.DataFrame({"price": values})
    with pytest.raises(DataError) as info:
        prepare_labels(df, "price", "regression", "t.csv")
    message = str(info.value)
    assert "task.label 'price' in t.csv" in message
    assert "row 1: 'abc'" in message and "row 3: 'n/a'" in message and "row 6: 'x3'" in message
    assert "and 1 more" in message and "'x4'" not in message
    assert "expected numbers" in message and "task.type: classification" in message


def test_prepare_labels_regression_bool_column_refused() -> None:
    df = pl.DataFrame({"y": [True, False]})
    with pytest.raises(DataError, match=r"dtype Boolean; a regression target must be numeric"):
        prepare_labels(df, "y", "regression", "t.csv")


def test_prepare_labels_regression_infinite_and_constant() -> None:
    with pytest.raises(DataError, match=r"infinite values \(row 1: inf\)"):
        prepare_labels(pl.DataFrame({"y": [1.0, float("inf"), 2.0]}), "y", "regression", "t.csv")
    with pytest.raises(DataError, match=r"is constant \(4\.0 in all 2 labelled rows\)"):
        prepare_labels(pl.DataFrame({"y": [4.0, 4.0, None]}), "y", "regression", "t.csv")
