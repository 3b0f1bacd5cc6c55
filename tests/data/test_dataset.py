from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch

from plait.data.dataset import load_rows, load_table
from plait.errors import DataError
from plait.modalities.embedding import EmbeddingModality
from plait.modalities.image import ImageModality
from plait.modalities.tabular import TabularModality


def fitted(df: pl.DataFrame, root: Path) -> dict:
    mods = {
        "vec": EmbeddingModality("vec"),
        "specs": TabularModality("specs", numeric=["power"], categorical=["model"]),
    }
    for m in mods.values():
        m.fit(df, root)
    return mods


def test_absent_values_are_counted_with_reason_and_rows_never_filled(tmp_path: Path):
    df = pl.DataFrame(
        {
            "vec": [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0], [7.0, 8.0]],
            "power": [1.0, 2.0, 3.0, 4.0],
            "model": ["a", "b", "a", "b"],
        }
    )
    mods = fitted(df, tmp_path)
    rows = [
        {"vec": [1.0, 2.0], "power": 1.0, "model": "a"},
        {"vec": None, "power": None, "model": None},  # everything empty
        {"vec": [1.0, float("nan")], "power": 2.0, "model": "b"},
        {"vec": [1.0], "power": 3.0, "model": "a"},
    ]
    table, report = load_rows(rows, mods, tmp_path, target=np.array([0, 1, 0, 1]))
    assert table.present["vec"].tolist() == [True, False, False, False]
    assert table.present["specs"].tolist() == [True, False, True, True]
    vec = next(f for f in report.fields if f.field == "vec")
    assert vec.absent == 3
    assert vec.reasons == {"empty": 1, "non-finite": 1, "wrong length": 1}
    assert vec.example_rows["non-finite"] == (2,)
    # an absent row is zero-filled, not a copy of a neighbour
    assert torch.count_nonzero(table.values["vec"][1:]) == 0
    assert "3 of 4 rows absent" in vec.line() and "rows 2" in vec.line()
    batch = table.batch([3, 0])
    assert batch.present["vec"].tolist() == [False, True]
    assert batch.target is not None and batch.target.tolist() == [1, 0]


def test_path_escaping_root_is_an_error_naming_the_row(tmp_path: Path):
    image = ImageModality("photo")
    image.set_state({**_image_state(image, tmp_path)})
    df = pl.DataFrame({"photo": ["ok.png", "../../etc/passwd"]})
    with pytest.raises(DataError, match=r"row 1: field 'photo': path '\.\./\.\./etc/passwd'"):
        load_table(df, {"photo": image}, tmp_path)


def _image_state(image: ImageModality, root: Path) -> dict:
    from PIL import Image

    Image.new("RGB", (8, 8), (255, 0, 0)).save(root / "ok.png")
    image.fit(pl.DataFrame({"photo": ["ok.png"]}), root)
    return image.get_state()


def test_masked_readings_inside_present_values_are_counted(tmp_path: Path):
    df = pl.DataFrame({"vec": [[1.0, 2.0]] * 3, "power": [1.0, 2.0, 3.0], "model": ["a", "b", "a"]})
    mods = fitted(df, tmp_path)
    rows = [
        {"vec": [1.0, 2.0], "power": None, "model": "a"},  # one numeric cell missing: masked, not absent
        {"vec": [1.0, 2.0], "power": 2.0, "model": "b"},
        {"vec": [1.0, 2.0], "power": float("inf"), "model": "b"},
    ]
    table, report = load_rows(rows, mods, tmp_path)
    specs = next(f for f in report.fields if f.field == "specs")
    assert table.present["specs"].tolist() == [True, True, True]
    assert (specs.absent, specs.partial, specs.partial_values, specs.partial_rows) == (0, 2, 2, (0, 2))
    assert "2 rows miss some readings (2 values masked, not filled; rows 0, 2)" in specs.line()
    assert table.masks["specs"][0].tolist() == [False, True]


def test_a_number_beyond_float32_is_counted_as_masked() -> None:
    """Regression: 1e308 became ±inf in the tensor and was masked by the encoder, but the load
    report did not count it."""
    from pathlib import Path

    import polars as pl

    from plait.data.dataset import load_table
    from plait.modalities.tabular import TabularModality

    modality = TabularModality("t", numeric=["a", "b"])
    modality.fit(pl.DataFrame({"a": [1.0, 2.0, 3.0], "b": [1.0, 2.0, 3.0]}), Path("."))
    _, report = load_table(pl.DataFrame({"a": [1e308, 2.0], "b": [1.0, 2.0]}), {"t": modality}, Path("."))
    assert (report.fields[0].partial, report.fields[0].partial_values) == (1, 1)
