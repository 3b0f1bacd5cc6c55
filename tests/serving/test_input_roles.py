"""A kind that declares no `input_spec` is served all the same: each of its columns takes any JSON
scalar or array (role `value`), handed to its `load` as it came — an object is a 422, and a string
is never read as a file path."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest
import torch
from torch import Tensor

from plait.bundle import TrainedModel
from plait.serving.inputs import InputSchema, RequestError, parse_form, parse_record
from plait.serving.loader import RecordLoader
from plait.serving.schemas import record_model
from plait.serving.settings import ServeSettings


class Toy:
    """A plug-in with one column and no `input_spec`: its `load` reads the value's text length."""

    kind = "toy"

    def __init__(self, name: str) -> None:
        self.name = name

    def columns(self) -> tuple[str, ...]:
        return (self.name,)

    def load(self, row: Mapping[str, Any], root: Path) -> Tensor:
        return torch.tensor([float(len(str(row[self.name])))])


@pytest.fixture
def schema() -> InputSchema:
    trained = SimpleNamespace(modalities={"reading": Toy("reading")}, config=SimpleNamespace(fields=()))
    return InputSchema.build(cast(TrainedModel, trained), ServeSettings(api_key=None))


def test_a_kind_without_input_spec_takes_json_values_as_they_came(schema: InputSchema) -> None:
    assert schema.columns["reading"].role == "value" and schema.media_columns == ()
    for value in (3.5, 7, True, "a few words", [1, [2, 3]]):
        assert parse_record({"reading": value}, schema).values == {"reading": value}
    assert parse_record({"reading": None}, schema).values == {"reading": None}
    assert parse_form([("reading", "12")], schema).values == {"reading": "12"}


def test_a_json_object_for_a_value_column_is_a_422(schema: InputSchema) -> None:
    with pytest.raises(RequestError) as caught:
        parse_record({"reading": {"a": 1}}, schema)
    assert caught.value.status == 422 and caught.value.field == "reading"
    assert "expects a JSON value" in caught.value.message and "got an object" in caught.value.message
    with pytest.raises(RequestError):  # an uploaded file is for media columns only
        parse_form([("reading", b"\x89PNG")], schema)


def test_the_field_is_described_by_the_default_spec(schema: InputSchema) -> None:
    (field,) = schema.fields
    out = field.to_json()
    assert out["kind"] == "toy" and out["columns"] == ["reading"] and out["limits"] == {}
    assert out["widget"]["control"] == "json" and out["accepts"]
    assert (
        record_model(schema)
        .model_json_schema()["properties"]["reading"]["description"]
        .startswith("toy field 'reading': a JSON value")
    )


def test_the_loader_hands_strings_to_load_but_never_a_path(tmp_path: Path) -> None:
    loader = RecordLoader({"reading": cast(Any, Toy("reading"))})
    try:
        used = loader.load({"reading": "etc/passwd"})
        assert used.statuses["reading"].state == "used"
        assert float(used.values["reading"][0]) == len("etc/passwd")  # the text, not a file
        refused = loader.load({"reading": tmp_path / "secret.txt"})
        assert refused.statuses["reading"].state == "failed"
        assert "never reads a value as a file path" in refused.statuses["reading"].reason
    finally:
        loader.close()
