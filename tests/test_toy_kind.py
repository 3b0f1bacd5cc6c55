"""A field kind of a contributor's own, end to end, with no edit outside this module and the registry
line (issue 14): `digits`, a string of digits per row read as the share of each digit. It declares
what the contract asks (fit/load/collate/encoder, its perturbation families and value columns) and
nothing about HTTP, so it is served with the default role (a JSON value). It passes
`check_modality`, then trains beside a tabular field, evaluates (its perturbation curves), predicts
with the field present, empty and undecodable, saves and reloads, and is served."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import polars as pl
import pytest
import torch
from fastapi.testclient import TestClient
from torch import Tensor, nn

from plait import Predictor, load_bundle
from plait.modalities import MODALITIES
from plait.modalities.base import JSONState, NotFittedError, is_empty, zero_absent, zeros_like_batch
from plait.serving.app import create_app
from plait.serving.settings import ServeSettings
from plait.testing import ModalitySample, check_modality
from plait.types import Absent, EncoderOutput

ROWS = 180


class DigitsEncoder(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.output_dim = dim
        self.net = nn.Sequential(nn.Linear(10, dim), nn.ReLU(), nn.Linear(dim, dim))

    def forward(self, x: Tensor, present: Tensor, mask: Tensor | None = None) -> EncoderOutput:
        pooled = zero_absent(self.net(x), present)  # (B, 10) -> (B, D)
        return EncoderOutput(tokens=pooled.unsqueeze(1), pooled=pooled)  # one token per row


class DigitsModality:
    """A string of digits → the share of each digit 0-9 (FloatTensor[10])."""

    kind: ClassVar[str] = "digits"
    perturbations: ClassVar[tuple[str, ...]] = ("gaussian_noise",)
    noise_family: ClassVar[str] = "gaussian_noise"

    def __init__(self, name: str, column: str | None = None) -> None:
        self.name = name
        self.column = column or name
        self.longest_: int | None = None

    def columns(self) -> tuple[str, ...]:
        return (self.column,)

    def value_columns(self) -> tuple[str, ...]:
        return (self.column,)

    def fit(self, table: pl.DataFrame, root: Path) -> None:
        lengths = [len(v) for v in table[self.column].drop_nulls().to_list()]
        self.longest_ = max(lengths, default=0)

    def get_state(self) -> JSONState:
        if self.longest_ is None:
            raise NotFittedError.for_field(self.name, self.kind)
        return {"column": self.column, "longest": self.longest_}

    def set_state(self, state: JSONState) -> None:
        self.column = str(state["column"])
        self.longest_ = int(state["longest"])

    def load(self, row: Mapping[str, Any], root: Path) -> Tensor | Absent:
        value = row.get(self.column)
        if is_empty(value):
            return Absent("empty")
        text = str(value).strip()
        if not text.isdigit():
            return Absent("undecodable", f"expected digits, got {text[:20]!r}")
        counts = torch.bincount(torch.tensor([int(c) for c in text]), minlength=10).float()
        return counts / counts.sum()

    def collate(self, items: Sequence[Tensor | None]) -> tuple[Tensor, Tensor | None]:
        return zeros_like_batch(items, (10,), torch.float32), None

    def build_encoder(self, dim: int) -> DigitsEncoder:
        return DigitsEncoder(dim)


@pytest.fixture(scope="module", autouse=True)
def registered() -> Iterator[None]:
    MODALITIES.register("digits", DigitsModality)  # the one registry line
    try:
        yield
    finally:
        MODALITIES.unregister("digits")


def _table(n: int, seed: int) -> pl.DataFrame:
    """Class c favours digits 3c..3c+2; a noisy number helps a little; some codes empty or broken."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    codes = []
    for i, c in enumerate(y):
        digits = np.where(rng.random(8) < 0.7, rng.integers(3 * c, 3 * c + 3, 8), rng.integers(0, 10, 8))
        codes.append("".join(map(str, digits)))
        if i % 17 == 5:
            codes[-1] = ""
        elif i % 23 == 7:
            codes[-1] = "not digits"
    return pl.DataFrame({"code": codes, "x": y + rng.normal(scale=1.5, size=n), "y": [f"c{v}" for v in y]})


def test_the_toy_kind_passes_check_modality(tmp_path: Path):
    sample = ModalitySample(
        options={},
        train=pl.DataFrame({"code": ["0123", "4455", "999"]}),
        present={"code": "3141"},
        empty={"code": " "},
        broken={"code": "3.14"},
        request={"code": "3141"},
        root=tmp_path,
        name="code",
    )
    check_modality(DigitsModality, sample)


@pytest.fixture(scope="module")
def predictor(tmp_path_factory: pytest.TempPathFactory) -> Predictor:
    fields = {"code": "digits", "x": {"kind": "tabular", "numeric": ["x"]}}
    return Predictor(
        label="y", fields=fields, fusion="gated", epochs=20, lr=0.01, dim=16, hidden=16, progress=False
    ).fit(_table(ROWS, seed=1))


def test_it_trains_and_evaluates_with_its_own_perturbations(predictor: Predictor):
    result = predictor.report(_table(90, seed=2), rows="all")
    assert result.metrics["accuracy"] > 0.5, result.metrics  # the digits carry the class; chance 1/3
    curves = {(c.field, c.perturbation) for c in result.robustness.curves}
    assert {("code", "missing"), ("code", "gaussian_noise")} <= curves


def test_it_predicts_present_empty_and_undecodable(predictor: Predictor):
    rows = [{"code": "00011122", "x": 0.0}, {"code": "", "x": 0.0}, {"code": "abc", "x": 0.0}]
    used = [p.fields_used for p in predictor.predict(rows)]
    assert used[0] == ("code", "x")
    assert used[1] == ("x",) and used[2] == ("x",)  # absent, never invented


def test_it_saves_reloads_and_is_served(predictor: Predictor, tmp_path: Path):
    bundle = predictor.save(tmp_path / "bundle")
    assert json.loads((bundle / "preprocessing.json").read_text())["code"]["longest"] >= 8
    trained = load_bundle(bundle)
    assert trained.modalities["code"].kind == "digits"
    reloaded = Predictor.load(bundle).predict([{"code": "66677788", "x": 2.0}])[0]
    assert reloaded.prediction == predictor.predict([{"code": "66677788", "x": 2.0}])[0].prediction

    settings = ServeSettings(api_key=None, inference="thread")
    with TestClient(create_app(trained, settings)) as client:
        info = client.get("/v1/info").json()
        code = next(f for f in info["fields"] if f["name"] == "code")
        assert code["kind"] == "digits" and code["widget"]["control"] == "json"
        out = client.post("/v1/predict", json={"code": "66677788", "x": 2.0}).json()
        assert out["prediction"] == reloaded.prediction and out["fields_used"] == ["code", "x"]
        broken = client.post("/v1/predict", json={"code": "abc", "x": 2.0}).json()
        assert broken["degraded"] is True and broken["fields_missing"] == ["code"]
        refused = client.post("/v1/predict", json={"code": {"a": 1}, "x": 2.0})
        assert refused.status_code == 422
