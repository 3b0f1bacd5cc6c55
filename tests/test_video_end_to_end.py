"""The `video` kind end to end (issue 14, part 5): clips written at test time train beside a number,
evaluate with the frame-drop and noise curves, predict (a broken clip → the field absent), are
fingerprinted in the bundle's provenance, are served as an upload, and the page offers a video."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from fastapi.testclient import TestClient

pytest.importorskip("av")

from plait import Predictor, load_bundle
from plait.serving.app import create_app
from plait.serving.settings import ServeSettings
from plait.testing.media import write_test_video

COLOURS = {"warm": (220, 60, 30), "cold": (30, 80, 220)}


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pl.DataFrame]:
    root = tmp_path_factory.mktemp("clips")
    rng = np.random.default_rng(0)
    rows = []
    for i in range(48):
        label = "warm" if i % 2 else "cold"
        base = np.array(COLOURS[label]) + rng.integers(-25, 26, 3)
        name = f"c{i}.mp4"
        write_test_video(
            root / name, frames=int(rng.integers(3, 7)), fps=4, size=16, colour=tuple(base.clip(0, 255))
        )
        rows.append({"clip": name, "x": float(rng.normal()), "y": label})
    (root / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"garbage" * 20)
    rows[5]["clip"] = "broken.mp4"
    return root, pl.DataFrame(rows)


@pytest.fixture(scope="module")
def predictor(clips: tuple[Path, pl.DataFrame]) -> Predictor:
    root, table = clips
    fields = {
        "clip": {"kind": "video", "fps": 4, "frames": 6, "size": 16},
        "x": {"kind": "tabular", "numeric": ["x"]},
    }
    return Predictor(
        label="y", fields=fields, fusion="gated", epochs=8, dim=16, hidden=16, progress=False
    ).fit(table, root=root)


def test_video_trains_and_evaluates_with_frame_drop_and_noise(predictor: Predictor, clips):
    root, table = clips
    result = predictor.report(table, root=root, rows="all")
    assert result.metrics["accuracy"] >= 0.75  # the colour decides; x is noise
    curves = {(c.field, c.perturbation) for c in result.robustness.curves}
    assert {("clip", "missing"), ("clip", "frame_drop"), ("clip", "frame_noise")} <= curves


def test_a_broken_clip_is_absent_and_a_good_one_is_used(predictor: Predictor, clips):
    root, _ = clips
    out = predictor.predict([{"clip": "c1.mp4", "x": 0.0}, {"clip": "broken.mp4", "x": 0.0}], root=root)
    assert out[0].fields_used == ("clip", "x") and out[0].prediction == "warm"
    assert out[1].fields_missing == ("clip",)


def test_its_files_are_fingerprinted_and_it_is_served_as_an_upload(predictor: Predictor, clips, tmp_path):
    root, _ = clips
    bundle = predictor.save(tmp_path / "bundle")
    media = json.loads((bundle / "provenance.json").read_text())["media"]
    assert media is not None and media["count"] >= 30  # the training rows' clips (a split's share)
    trained = load_bundle(bundle)
    with TestClient(create_app(trained, ServeSettings(api_key=None, inference="thread"))) as client:
        clip = next(f for f in client.get("/v1/info").json()["fields"] if f["name"] == "clip")
        assert clip["widget"] == {"control": "file", "accept": "video/*", "preview": "video", "hint": ""}
        data = (root / "c3.mp4").read_bytes()
        upload = client.post(
            "/v1/predict/upload", files={"clip": ("c3.mp4", data, "video/mp4")}, data={"x": "0"}
        )
        assert upload.status_code == 200, upload.text
        assert upload.json()["fields_used"] == ["clip", "x"] and upload.json()["prediction"] == "warm"
        as_json = client.post("/v1/predict", json={"clip": base64.b64encode(data).decode(), "x": 0.0}).json()
        assert as_json["prediction"] == "warm"
        wrong = client.post(
            "/v1/predict", json={"clip": base64.b64encode(b"GIF89a....").decode(), "x": 0.0}
        ).json()
        assert wrong["degraded"] is True and wrong["fields_missing"] == ["clip"]
