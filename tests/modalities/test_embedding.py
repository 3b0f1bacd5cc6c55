import json
import math
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch

from plait.errors import DataError
from plait.modalities.base import Encoder, NotFittedError
from plait.modalities.embedding import EmbeddingModality
from plait.types import Absent

ROOT = Path(".")
TABLE = pl.DataFrame({"vec": [[1.0, 2.0, 0.0], [3.0, 2.0, 1.0], None, [], [math.nan, 1.0, 1.0]]})


def fitted() -> EmbeddingModality:
    modality = EmbeddingModality("vec")
    modality.fit(TABLE, ROOT)
    return modality


def test_fit_statistics_skip_empty_and_non_finite() -> None:
    state = fitted().get_state()
    assert state["dim"] == 3
    assert state["mean"] == pytest.approx([2.0, 2.0, 0.5])
    assert state["std"] == pytest.approx([1.0, 1.0, 0.5])  # constant dimension → 1


def test_state_json_round_trip_gives_identical_load() -> None:
    modality = fitted()
    restored = EmbeddingModality("other", column="x")
    restored.set_state(json.loads(json.dumps(modality.get_state())))
    assert restored.columns() == ("vec",)
    for value in ([0.5, -1.0, 2.0], np.array([1.0, 2.0, 3.0], dtype=np.float32), "[3, 2, 1]"):
        a, b = modality.load({"vec": value}, ROOT), restored.load({"vec": value}, ROOT)
        assert isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor)
        assert torch.equal(a, b) and a.dtype == torch.float32 and a.shape == (3,)
    item = modality.load({"vec": [3.0, 2.0, 1.0]}, ROOT)
    assert isinstance(item, torch.Tensor) and item.tolist() == pytest.approx([1.0, 0.0, 1.0])


@pytest.mark.parametrize("row", [{}, {"vec": None}, {"vec": []}, {"vec": np.zeros(0)}, {"vec": "  "}])
def test_empty_values_are_absent(row: dict[str, object]) -> None:
    result = fitted().load(row, ROOT)
    assert isinstance(result, Absent) and result.reason == "empty"


def test_wrong_length_and_non_finite_are_absent_with_detail() -> None:
    modality = fitted()
    short = modality.load({"vec": [1.0] * 12}, ROOT)
    assert short == Absent("wrong length", "expected 3 values, got 12")
    bad = modality.load({"vec": [1.0, math.inf, 0.0]}, ROOT)
    assert isinstance(bad, Absent) and bad.reason == "non-finite"
    text = modality.load({"vec": "not json"}, ROOT)
    assert isinstance(text, Absent) and text.reason == "undecodable"


def test_mixed_lengths_in_training_name_rows_and_lengths() -> None:
    table = pl.DataFrame({"vec": [[1.0, 2.0], [1.0, 2.0], [1.0], [3.0, 4.0]]})
    with pytest.raises(DataError) as info:
        EmbeddingModality("vec").fit(table, ROOT)
    message = str(info.value)
    assert "'vec'" in message and "1 values in 1 row(s) (rows 2)" in message
    assert "2 values in 3 row(s) (rows 0, 1, 3)" in message


def test_not_fitted() -> None:
    with pytest.raises(NotFittedError, match="vec"):
        EmbeddingModality("vec").get_state()


def test_encoder_shapes_absent_and_gradients() -> None:
    torch.manual_seed(0)
    modality = fitted()
    item = modality.load({"vec": [0.0, 1.0, 2.0]}, ROOT)
    assert isinstance(item, torch.Tensor)
    values, mask = modality.collate([item, None])
    assert mask is None and values.shape == (2, 3) and torch.equal(values[1], torch.zeros(3))
    enc = modality.build_encoder(8)
    out = enc(values, torch.tensor([True, False]))
    assert enc.output_dim == 8 and isinstance(enc, Encoder) and out.token_mask is None
    assert out.tokens.shape == (2, 1, 8) and out.pooled.shape == (2, 8)
    assert torch.equal(out.pooled[1], torch.zeros(8)) and out.pooled[0].abs().sum() > 0
    # a random projection: a plain sum has zero gradient through a final LayerNorm
    (
        out.pooled[0] * torch.randn(out.pooled.shape[1], generator=torch.Generator().manual_seed(1))
    ).sum().backward()
    grads = [p.grad for p in enc.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(g is not None and g.abs().sum() > 0 for g in grads)


def test_all_absent_batch_gives_finite_zero_pooled() -> None:
    modality = fitted()
    values, _ = modality.collate([None, None])
    out = modality.build_encoder(4)(values, torch.tensor([False, False]))
    assert torch.isfinite(out.tokens).all() and torch.equal(out.pooled, torch.zeros(2, 4))
