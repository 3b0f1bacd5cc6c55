"""The shared space over HTTP: /v1/embed, and ?impute=embedding on /v1/predict — through the model
process (the default) and in a thread, with clear 422s for what a bundle cannot do."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import polars as pl
import pytest
from fastapi.testclient import TestClient

from plait.predictor import Predictor
from plait.serving.app import create_app
from plait.serving.settings import ServeSettings


@pytest.fixture(scope="module")
def rows(impute_run: Any) -> list[dict[str, Any]]:
    df = pl.read_parquet(impute_run.bundle_path.parent / "pairs.parquet").drop_nulls().slice(0, 3)
    return [{"va": list(r["va"]), "vb": list(r["vb"])} for r in df.iter_rows(named=True)]


@pytest.fixture(scope="module", params=["process", "thread"])
def client(impute_run: Any, request: pytest.FixtureRequest) -> Iterator[TestClient]:
    settings = ServeSettings(api_key=None, inference=request.param)
    with TestClient(create_app(impute_run.bundle_path, settings)) as c:
        yield c


def test_embed_returns_the_predictors_vectors(
    client: TestClient, impute_run: Any, rows: list[dict[str, Any]]
) -> None:
    one = client.post("/v1/embed", json=rows[0])
    assert one.status_code == 200, one.text
    body = one.json()
    assert set(body["embeddings"]) == {"va", "vb"} and body["fields_imputed"] == []
    mine = Predictor.load(impute_run.bundle_path).embed([rows[0]], field="va").vectors[0]
    assert np.allclose(body["embeddings"]["va"], mine, atol=1e-5)
    many = client.post("/v1/embed?field=vb", json={"records": [rows[1], {"va": rows[2]["va"]}]}).json()
    assert [set(e["embeddings"]) for e in many["embeddings"]] == [{"vb"}, {"vb"}]
    assert many["embeddings"][1]["embeddings"]["vb"] is None  # absent, not invented
    assert many["embeddings"][1]["fields_missing"] == ["vb"]
    assert client.get("/v1/info").json()["space"] == {"fields": ["va", "vb"], "dim": 16, "impute": True}


def test_embed_can_impute_and_says_so(client: TestClient, rows: list[dict[str, Any]]) -> None:
    body = client.post("/v1/embed?impute=embedding", json={"va": rows[0]["va"]}).json()
    assert body["fields_used"] == ["va"] and body["fields_imputed"] == ["vb"]
    assert body["embeddings"]["vb"] is not None
    assert abs(np.linalg.norm(body["embeddings"]["vb"]) - 1.0) < 1e-4


def test_predict_imputes_only_when_asked(client: TestClient, rows: list[dict[str, Any]]) -> None:
    record = {"vb": rows[1]["vb"]}
    plain = client.post("/v1/predict", json=record).json()
    filled = client.post("/v1/predict?impute=embedding", json=record).json()
    assert plain["fields_missing"] == ["va"] and plain["fields_imputed"] == []
    assert (
        filled["fields_used"] == ["vb"]
        and filled["fields_imputed"] == ["va"]
        and filled["fields_missing"] == []
    )
    assert filled["degraded"] is True
    assert filled["fields"]["va"]["state"] != "used"  # the record did not bring it
    explained = client.post("/v1/predict?impute=embedding&explain=true", json=record).json()
    assert set(explained["contributions"]) == {"va", "vb"}


def test_bad_requests_are_422(client: TestClient, rows: list[dict[str, Any]]) -> None:
    bad = client.post("/v1/predict?impute=mean", json=rows[0])
    assert bad.status_code == 422 and "expected `embedding`" in bad.json()["error"]["message"]
    unknown = client.post("/v1/embed?field=vbb", json=rows[0])
    assert unknown.status_code == 422 and "did you mean 'vb'" in unknown.json()["error"]["message"]


def test_a_bundle_without_space_or_imputer_refuses_cleanly(pumps_bundle: Any, space_run: Any) -> None:
    with TestClient(
        create_app(pumps_bundle.bundle_path, ServeSettings(api_key=None, inference="thread"))
    ) as c:
        r = c.post("/v1/embed", json={"note": "grinding noise"})
        assert r.status_code == 422 and "no shared space" in r.json()["error"]["message"]
    with TestClient(create_app(space_run.bundle_path, ServeSettings(api_key=None, inference="thread"))) as c:
        r = c.post("/v1/predict?impute=embedding", json={"va": [0.0] * 8})
        assert r.status_code == 422 and "no embedding imputer" in r.json()["error"]["message"]
        assert c.post("/v1/embed", json={"va": [0.0] * 8}).status_code == 200
