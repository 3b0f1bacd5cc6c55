"""`plait serve` loads bundles verified, as predict and evaluate do: an edited bundle is refused
unless `trust_modified` (`--trust-modified`), and then its answers carry the new content id."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from plait.errors import BundleError
from plait.serving.app import create_app
from plait.serving.process import EngineProcess
from plait.serving.settings import ServeSettings


def edited(bundle: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "bundle"
    shutil.copytree(bundle, copy)
    states = json.loads((copy / "preprocessing.json").read_text())
    state = next(s for s in states.values() if isinstance(s.get("mean"), list) and s["mean"])
    state["mean"][0] = float(state["mean"][0]) + 1.0
    (copy / "preprocessing.json").write_text(json.dumps(states))
    return copy


def test_an_edited_bundle_is_refused_unless_trusted(pumps_bundle, tmp_path: Path) -> None:
    bundle = edited(pumps_bundle.bundle_path, tmp_path)
    with pytest.raises(BundleError, match="modified"):
        create_app(bundle, ServeSettings(api_key=None, inference="thread"))
    with pytest.warns(UserWarning, match="modified"):
        app = create_app(bundle, ServeSettings(api_key=None, inference="thread", trust_modified=True))
    with TestClient(app) as client:
        answer = client.post("/v1/predict", json={"note": "grinding at the bearing"}).json()
    assert answer["model_id"] != pumps_bundle.trained.model_id
    assert ServeSettings.from_json({"trust_modified": True}, api_key=None).trust_modified
    process = EngineProcess.__new__(EngineProcess)  # the child is told too (no process started here)
    EngineProcess.__init__(process, bundle, trust_modified=True)
    assert process.trust_modified
