"""The per-request decode budget: what a request may ask to decode is read from its media headers
and charged in record order; a value that does not fit is skipped (its record answered without it,
the reason given), never the other records, and nothing of it is decoded."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from plait.bundle import TrainedModel, load_bundle
from plait.errors import ConfigError
from plait.modalities.contract import Probe
from plait.modalities.media_probe import probe_image
from plait.serving.app import create_app
from plait.serving.budget import RequestBudget
from plait.serving.settings import ServeSettings


@pytest.fixture(scope="module")
def trained(pumps_bundle: Any) -> TrainedModel:
    return load_bundle(pumps_bundle.bundle_path)


def image(side: int, fmt: str = "PNG") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (side, side), (200, 40, 40)).save(out, fmt)
    return out.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


@pytest.fixture(scope="module")
def client(trained: TrainedModel) -> Iterator[TestClient]:
    settings = ServeSettings(api_key=None, inference="thread", max_request_pixels=2_500_000)
    with TestClient(create_app(trained, settings)) as c:
        yield c


def test_records_past_the_request_budget_are_skipped_with_the_reason(client: TestClient) -> None:
    big = b64(image(1000))  # 1 Mpx: two fit in the 2.5-Mpx budget, the third does not
    small = b64(image(100))  # 0.01 Mpx: still fits after the third was refused
    records = [{"note": "hot", "thermal": v} for v in (big, big, big, small)]
    response = client.post("/v1/predict", json={"records": records})
    assert response.status_code == 200, response.text
    states = [p["fields"]["thermal"] for p in response.json()["predictions"]]
    assert [s["state"] for s in states] == ["used", "used", "skipped", "used"]
    assert states[2]["reason"].startswith(
        "request over its decode budget: this image decodes to 1000000 pixels"
    )
    assert "max_request_pixels=2500000" in states[2]["reason"]
    third = response.json()["predictions"][2]
    assert third["degraded"] is True and third["fields"]["note"]["state"] == "used"
    # each request has a budget of its own: the same image alone is decoded
    alone = client.post("/v1/predict", json={"note": "hot", "thermal": big}).json()
    assert alone["fields"]["thermal"]["state"] == "used"


def test_the_budget_is_counted_in_metrics_as_skipped(client: TestClient) -> None:
    records = [{"thermal": b64(image(1000))} for _ in range(3)]
    client.post("/v1/predict", json=records)
    text = client.get("/metrics").text
    assert (
        'plait_degraded_total{field="thermal",reason="request over its decode budget",state="skipped"}'
        in text
    )


def test_a_jpeg_counts_the_pixels_it_decodes_to_not_its_header_size() -> None:
    jpeg = probe_image(image(4000, "JPEG"), max_bytes=10**8, max_pixels=16_000_000, size=64)
    png = probe_image(image(4000), max_bytes=10**8, max_pixels=16_000_000, size=64)
    assert png == Probe(pixels=16_000_000)
    assert jpeg == Probe(pixels=500 * 500)  # drafted at 1/8 scale, as the image modality decodes it


def test_the_request_budget_charges_pixels_and_seconds_until_they_run_out() -> None:
    budget = RequestBudget(max_pixels=100, max_audio_s=3.0)
    assert budget.charge(Probe(pixels=60)) is None
    over = budget.charge(Probe(pixels=60))
    assert over is not None and over.reason == "over budget" and "max_request_pixels=100" in over.detail
    assert budget.charge(Probe(pixels=40)) is None  # what is left still serves a smaller image
    assert budget.charge(Probe(seconds=2.0)) is None
    over = budget.charge(Probe(seconds=2.0))
    assert over is not None and "max_request_audio_s=3" in over.detail


def test_the_budgets_are_checked_settings() -> None:
    with pytest.raises(ConfigError, match="max_batch_decode_s"):
        ServeSettings(api_key=None, max_batch_decode_s=0)
    with pytest.raises(ConfigError, match="max_request_pixels"):
        ServeSettings(api_key=None, max_request_pixels=-1)
