"""`plait serve --runtime onnx`: the same answers as torch from the bundle's ONNX export, what the
runtime refuses (the shared space) and how a wrong or stale export is refused at start."""

from __future__ import annotations

import base64
import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from plait.bundle import TrainedModel, load_bundle
from plait.data.table import read_table
from plait.errors import BundleError, ConfigError
from plait.serving.app import create_app
from plait.serving.settings import ServeSettings


@pytest.fixture(scope="module")
def trained(pumps_bundle: Any) -> TrainedModel:
    return load_bundle(pumps_bundle.bundle_path)


@pytest.fixture(scope="module")
def records(pumps_small: Any) -> list[dict[str, Any]]:
    """Six clean rows as clients send them, some with fields left out."""
    corrupt = {i for ids in pumps_small.corrupted.values() for i in ids}
    rows = [r for r in read_table(pumps_small.table_path).to_dicts() if r["inspection_id"] not in corrupt][:6]
    out = []
    for i, row in enumerate(rows):
        one = {k: v for k, v in row.items() if k not in ("fault", "inspection_id")}
        one["sound"] = base64.b64encode((pumps_small.root / row["sound"]).read_bytes()).decode()
        one["thermal"] = base64.b64encode((pumps_small.root / row["thermal"]).read_bytes()).decode()
        for field in ("thermal", "sound", "note")[: i % 4]:  # 0 to 3 fields left out
            one.pop(field)
        out.append(one)
    return out


def thread_server(trained: TrainedModel, **settings: Any) -> TestClient:
    return TestClient(create_app(trained, ServeSettings(api_key=None, inference="thread", **settings)))


@pytest.fixture(scope="module")
def both(trained: TrainedModel, pumps_onnx: Any) -> Iterator[dict[str, TestClient]]:
    onnx = {"runtime": "onnx", "onnx_folder": str(pumps_onnx.folder)}
    with (
        thread_server(trained) as torch_server,
        thread_server(trained, **onnx) as fp32,
        thread_server(trained, **onnx, onnx_int8=True) as int8,
    ):
        yield {"torch": torch_server, "fp32": fp32, "int8": int8}


def test_onnx_answers_as_torch_does_for_records_with_any_fields(
    both: dict[str, TestClient], records: list[dict[str, Any]]
) -> None:
    expected = both["torch"].post("/v1/predict?explain=true", json=records).json()["predictions"]
    got = both["fp32"].post("/v1/predict?explain=true", json=records).json()["predictions"]
    assert len({tuple(p["fields_used"]) for p in expected}) == 4  # the records differ in their fields
    for e, g in zip(expected, got, strict=True):
        for key in (
            "prediction",
            "fields_used",
            "fields_missing",
            "degraded",
            "fields",
            "model_id",
            "temperature",
        ):
            assert g[key] == e[key], key
        for c, p in e["probabilities"].items():
            assert g["probabilities"][c] == pytest.approx(p, abs=1e-4)
        for f, w in e["weights"].items():
            assert g["weights"][f] == pytest.approx(w, abs=1e-4)
        assert set(g["contributions"]) == set(e["contributions"])
        for f, c in e["contributions"].items():
            assert g["contributions"][f] == pytest.approx(c, abs=1e-4)


def test_the_int8_graph_serves_and_says_so(
    both: dict[str, TestClient], records: list[dict[str, Any]]
) -> None:
    info = both["int8"].get("/v1/info").json()
    assert info["runtime"]["name"] == "onnx" and info["runtime"]["graph"] == "model.int8.onnx"
    expected = both["torch"].post("/v1/predict", json=records).json()["predictions"]
    got = both["int8"].post("/v1/predict", json=records).json()["predictions"]
    for e, g in zip(expected, got, strict=True):
        assert g["fields_used"] == e["fields_used"]
        assert sum(g["probabilities"].values()) == pytest.approx(1.0, abs=1e-4)


def test_the_shared_space_is_refused_by_name_under_onnx(both: dict[str, TestClient]) -> None:
    embed = both["fp32"].post("/v1/embed", json={"note": "pump runs hot"})
    assert embed.status_code == 422
    error = embed.json()["error"]
    assert error["code"] == "unsupported_by_runtime"
    assert "--runtime torch" in error["message"] and "'onnx'" in error["message"]
    info = both["fp32"].get("/v1/info").json()["runtime"]
    assert (info["embed"], info["impute"], info["explain"]) == (False, False, True)


def test_runtime_settings_are_checked_with_named_errors(trained: TrainedModel, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"serve\.runtime: .*did you mean 'onnx'"):
        ServeSettings(runtime="onx")
    with pytest.raises(ConfigError, match=re.escape("add --runtime onnx")):
        ServeSettings(onnx_int8=True)
    with pytest.raises(ConfigError, match=re.escape("onnx_folder=...")):
        create_app(trained, ServeSettings(api_key=None, inference="thread", runtime="onnx"))
    with pytest.raises(BundleError, match=re.escape("plait export BUNDLE --format onnx")):
        create_app(
            trained,
            ServeSettings(api_key=None, inference="thread", runtime="onnx", onnx_folder=str(tmp_path)),
        )


def test_an_export_of_another_model_is_refused_at_start(
    trained: TrainedModel, pumps_onnx: Any, tmp_path: Path
) -> None:
    stale = tmp_path / "stale.onnx"
    shutil.copytree(pumps_onnx.folder, stale)
    manifest = stale / "manifest.json"
    manifest.write_text(manifest.read_text().replace(trained.model_id, "0123456789abcdef"))
    with pytest.raises(BundleError, match="was made from model 0123456789abcdef"):
        create_app(
            trained, ServeSettings(api_key=None, inference="thread", runtime="onnx", onnx_folder=str(stale))
        )


def test_an_fp32_only_export_cannot_serve_int8(
    trained: TrainedModel, pumps_onnx: Any, tmp_path: Path
) -> None:
    fp32_only = tmp_path / "fp32.onnx"
    shutil.copytree(pumps_onnx.folder, fp32_only)
    manifest = fp32_only / "manifest.json"

    raw = json.loads(manifest.read_text())
    raw["files"] = [f for f in raw["files"] if f["name"] == "model.onnx"]
    manifest.write_text(json.dumps(raw))
    settings = ServeSettings(
        api_key=None, inference="thread", runtime="onnx", onnx_folder=str(fp32_only), onnx_int8=True
    )
    with pytest.raises(BundleError, match=re.escape("no model.int8.onnx; export with --int8")):
        create_app(trained, settings)


class NonFiniteSpecs:
    """The real graph, but the first record's `specs` encoding comes back NaN while it is present
    (as values at the edge of float range make it): what the engine must catch."""

    def __init__(self, graph: Any) -> None:
        self.graph = graph
        self.field_order = graph.field_order
        self.file_name = graph.file_name
        self.present_seen: list[bool] = []

    def run(self, values: Any, masks: Any, present: Any) -> Any:
        from plait.export.session import GraphOutput

        got = self.graph.run(values, masks, present)
        self.present_seen.append(bool(present["specs"][0]))
        if not bool(present["specs"][0]):
            return got
        pooled = dict(got.pooled)
        pooled["specs"] = pooled["specs"].clone()
        pooled["specs"][0] = float("nan")
        return GraphOutput(got.out, pooled)


def test_a_non_finite_encoding_fails_its_field_for_that_record_only(
    trained: TrainedModel, pumps_onnx: Any, records: list[dict[str, Any]]
) -> None:
    from plait.export.session import OnnxModel
    from plait.serving.engine import Engine
    from plait.serving.onnx_engine import OnnxEngine

    graph = NonFiniteSpecs(OnnxModel.load(pumps_onnx.folder))
    engine = OnnxEngine(trained, graph)  # type: ignore[arg-type]
    first, second = engine.predict([records[0], records[4]])
    engine.close()
    specs = next(s for s in first.fields if s.field == "specs")
    assert (specs.state, specs.reason) == ("failed", "non-finite encoding: the values are out of range")
    assert "specs" in first.prediction.fields_missing and first.prediction.degraded
    assert "specs" in second.prediction.fields_used
    assert graph.present_seen == [True, False]  # run again with the field absent in that record
    # …which is the answer torch gives the record without the field
    columns = set(trained.modalities["specs"].columns())
    torch_engine = Engine(trained)
    expected = torch_engine.predict([{k: v for k, v in records[0].items() if k not in columns}])[0]
    torch_engine.close()
    assert first.prediction.probabilities is not None and expected.prediction.probabilities is not None
    for c, p in expected.prediction.probabilities.items():
        assert first.prediction.probabilities[c] == pytest.approx(p, abs=1e-4)


def test_plait_serve_runtime_onnx_serves_the_export_it_names(
    pumps_bundle: Any, pumps_onnx: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import uvicorn
    from typer.testing import CliRunner

    from plait.cli.main import app

    served: list[Any] = []
    monkeypatch.setattr(uvicorn, "run", lambda target, **kw: served.append(target))
    monkeypatch.setenv("PLAIT_SERVE_HEADER_TIMEOUT_S", "10.0")  # written for the workers; restored after
    bundle = str(pumps_bundle.bundle_path)
    folder = str(pumps_onnx.folder)
    args = ["serve", bundle, "--runtime", "onnx", "--onnx-folder", folder, "--int8", "--inference", "thread"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "onnx runtime (int8)" in result.output
    with TestClient(served[0]) as client:
        runtime = client.get("/v1/info").json()["runtime"]
        assert (runtime["name"], runtime["graph"]) == ("onnx", "model.int8.onnx")
        assert client.post("/v1/predict", json={"note": "grinding noise"}).json()["fields_used"] == ["note"]

    wrong = CliRunner().invoke(app, ["serve", bundle, "--runtime", "onxx"])
    assert isinstance(wrong.exception, ConfigError) and "did you mean 'onnx'" in str(wrong.exception)
