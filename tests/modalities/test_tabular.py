import json
import math
from pathlib import Path

import polars as pl
import pytest
import torch

from plait.errors import ConfigError, DataError
from plait.modalities.base import Encoder, NotFittedError
from plait.modalities.tabular import TabularModality
from plait.types import Absent

ROOT = Path(".")
TABLE = pl.DataFrame(
    {
        "power": [1.0, 3.0, None, 5.0, float("nan")],
        "age": ["10", " 20 ", "", "30", "NA"],  # a numeric column that polars read as text
        "maker": ["acme", "bolt", "acme", None, "crux"],
    }
)


def fitted(**options: object) -> TabularModality:
    modality = TabularModality("specs", numeric=["power", "age"], categorical=["maker"], **options)  # type: ignore[arg-type]
    modality.fit(TABLE, ROOT)
    return modality


def test_fit_statistics_and_levels() -> None:
    state = fitted().get_state()
    assert state["mean"] == pytest.approx([3.0, 20.0])
    assert state["std"][0] == pytest.approx(math.sqrt(8 / 3))
    assert state["levels"] == [["acme", "bolt", "crux"]]


def test_state_json_round_trip_gives_identical_load() -> None:
    modality = fitted()
    restored = TabularModality("specs", numeric=["x"])
    restored.set_state(json.loads(json.dumps(modality.get_state())))
    assert restored.columns() == ("power", "age", "maker")
    row = {"power": 4.2, "age": "25", "maker": "bolt"}
    a, b = modality.load(row, ROOT), restored.load(row, ROOT)
    assert isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor)
    assert torch.equal(a, b) and a.shape == (3,)
    assert a[2].item() == 2.0  # "bolt" is level 2 (1-based; 0 = unknown)


def test_max_levels_keeps_most_frequent() -> None:
    state = fitted(max_levels=1).get_state()
    assert state["levels"] == [["acme"]]


def test_missing_column_is_masked_not_absent() -> None:
    modality = fitted()
    item = modality.load({"power": "abc", "maker": "acme"}, ROOT)  # unparseable + key missing
    assert isinstance(item, torch.Tensor)
    assert math.isnan(item[0].item()) and math.isnan(item[1].item()) and item[2].item() == 1.0
    values, mask = modality.collate([item])
    assert mask is not None and mask.tolist() == [[False, False, True]]
    assert torch.isfinite(values).all()


def test_unseen_category_is_unknown() -> None:
    item = fitted().load({"power": 2.0, "maker": "zeta"}, ROOT)
    assert isinstance(item, torch.Tensor) and item[2].item() == 0.0


@pytest.mark.parametrize("row", [{}, {"power": None, "age": "", "maker": None}, {"maker": float("nan")}])
def test_every_column_missing_is_absent(row: dict[str, object]) -> None:
    result = fitted().load(row, ROOT)
    assert isinstance(result, Absent) and result.reason == "empty"


@pytest.mark.parametrize("row", [{"power": float("inf")}, {"power": "lots", "age": None}])
def test_a_value_that_is_no_number_is_absent_as_such_not_empty(row: dict[str, object]) -> None:
    """Regression (issue 13): text or ±inf in a numeric column was reported as 'empty'."""
    result = fitted().load(row, ROOT)
    assert isinstance(result, Absent) and result.reason == "not a number" and "power=" in result.detail


def test_text_in_numeric_column_names_column_and_rows() -> None:
    table = pl.DataFrame({"power": ["1", "x", "2", "y", "z", "w", "v", "u"]})
    with pytest.raises(DataError) as info:
        TabularModality("specs", numeric=["power"]).fit(table, ROOT)
    message = str(info.value)
    assert "'power'" in message and "specs" in message
    assert "row 1: 'x'" in message and "row 3: 'y'" in message and "row 7" not in message
    assert "6 training row" in message and "categorical" in message


def test_config_errors() -> None:
    with pytest.raises(ConfigError, match=r"fields\.specs"):
        TabularModality("specs")
    with pytest.raises(ConfigError, match="once"):
        TabularModality("specs", numeric=["a"], categorical=["a"])
    with pytest.raises(ConfigError, match=r"fields\.specs\.max_levels"):
        TabularModality("specs", numeric=["a"], max_levels=0)
    with pytest.raises(NotFittedError, match="specs"):
        TabularModality("specs", numeric=["a"]).get_state()


def test_encoder_shapes_absent_and_gradients() -> None:
    torch.manual_seed(0)
    modality = fitted()
    rows: list[dict[str, object]] = [{"power": 2.0, "age": 11, "maker": "acme"}, {}, {"age": "31"}]
    items = [modality.load(r, ROOT) for r in rows]
    values, mask = modality.collate([i if isinstance(i, torch.Tensor) else None for i in items])
    enc = modality.build_encoder(8)
    out = enc(values, torch.tensor([True, False, True]), mask)
    assert enc.output_dim == 8 and isinstance(enc, Encoder)
    assert out.tokens.shape == (3, 3, 8) and out.pooled.shape == (3, 8)
    assert torch.equal(out.pooled[1], torch.zeros(8)) and torch.equal(out.tokens[1], torch.zeros(3, 8))
    # a random projection: a plain sum has zero gradient through a final LayerNorm
    (
        out.pooled[0] * torch.randn(out.pooled.shape[1], generator=torch.Generator().manual_seed(1))
    ).sum().backward()
    assert enc.weight.grad is not None and enc.weight.grad.abs().sum() > 0
    assert enc.categories[0].weight.grad is not None


def test_all_absent_batch_gives_finite_zero_pooled() -> None:
    modality = fitted()
    values, mask = modality.collate([None, None])
    out = modality.build_encoder(4)(values, torch.tensor([False, False]), mask)
    assert torch.isfinite(out.tokens).all()
    assert torch.equal(out.pooled, torch.zeros(2, 4))
