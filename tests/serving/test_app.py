"""The HTTP layer of `plait serve`: endpoints, request shapes, input safety (limits, sniffing, no
URL or path is ever read), degradation instead of rejection, auth, CORS, metrics and the CLI."""

from __future__ import annotations

import base64
import io
import json
import math
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from plait.bundle import TrainedModel, load_bundle
from plait.data.table import read_table
from plait.errors import ConfigError
from plait.serving.app import BUNDLE_ENV, SETTINGS_ENV, app_from_env, create_app
from plait.serving.settings import ServeSettings

FIELDS = ["vibration", "sound", "thermal", "note", "specs"]


@pytest.fixture(scope="module")
def trained(pumps_bundle: Any) -> TrainedModel:
    return load_bundle(pumps_bundle.bundle_path)  # this module's own copy


@pytest.fixture(scope="module")
def rows(pumps_small: Any) -> list[dict[str, Any]]:
    """Clean table rows (no corrupted field), media as paths relative to the root."""
    table = read_table(pumps_small.table_path).to_dicts()
    corrupt = {i for ids in pumps_small.corrupted.values() for i in ids}
    return [r for r in table if r["inspection_id"] not in corrupt][:3]


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def record(row: dict[str, Any], root: Path) -> dict[str, Any]:
    """A table row as a client sends it: media base64-encoded, no label or id."""
    out = {k: v for k, v in row.items() if k not in ("fault", "inspection_id")}
    out["sound"] = b64((root / row["sound"]).read_bytes())
    out["thermal"] = "data:image/png;base64," + b64((root / row["thermal"]).read_bytes())
    return out


@pytest.fixture(scope="module")
def full(rows: list[dict[str, Any]], pumps_small: Any) -> dict[str, Any]:
    return record(rows[0], pumps_small.root)


@pytest.fixture(scope="module")
def client(pumps_bundle: Any) -> Iterator[TestClient]:
    """The default server: the model in its own process, loaded from the bundle directory."""
    with TestClient(create_app(pumps_bundle.bundle_path, ServeSettings(api_key=None))) as c:
        yield c


RUNTIMES = ["torch", "onnx"]


@pytest.fixture(scope="module")
def onnx_client(pumps_bundle: Any, pumps_onnx: Any) -> Iterator[TestClient]:
    """The default server on the bundle's ONNX export (`--runtime onnx`), the graph run by
    onnxruntime in the model's own process."""
    settings = ServeSettings(api_key=None, runtime="onnx", onnx_folder=str(pumps_onnx.folder))
    with TestClient(create_app(pumps_bundle.bundle_path, settings)) as c:
        yield c


@pytest.fixture(params=RUNTIMES)
def served(request: pytest.FixtureRequest) -> TestClient:
    """The core cases run on each runtime: torch, and the ONNX export; the same API."""
    return request.getfixturevalue("client" if request.param == "torch" else "onnx_client")  # type: ignore[no-any-return]


def served_with(trained: TrainedModel, **settings: Any) -> TestClient:
    """A server for one test, the model in this process (no child to start per test)."""
    return TestClient(
        create_app(trained, ServeSettings(**{"api_key": None, "inference": "thread", **settings}))
    )


def png_bytes(width: int = 40, height: int = 30) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 40, 10)).save(out, format="PNG")
    return out.getvalue()


def state(prediction: dict[str, Any], field: str) -> tuple[str, str]:
    f = prediction["fields"][field]
    return f["state"], f["reason"]


# ---- probes and info -------------------------------------------------------------------------------


def test_healthz_and_readyz_after_startup(served: TestClient) -> None:
    assert served.get("/healthz").json() == {"status": "ok"}
    ready = served.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["status"] == "ready"


def test_readyz_is_503_before_the_lifespan_ran(trained: TrainedModel) -> None:
    c = served_with(trained)  # not entered: no startup, no warm-up
    response = c.get("/readyz")
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "not_ready"
    assert c.get("/healthz").status_code == 200


def test_info_lists_fields_classes_limits_and_metrics(served: TestClient, trained: TrainedModel) -> None:
    info = served.get("/v1/info").json()
    assert info["model_id"] == trained.model_id
    assert info["classes"] == list(trained.task.classes)
    assert info["task"] == {"type": "classification", "label": "fault"}
    fields = {f["name"]: f for f in info["fields"]}
    assert list(fields) == FIELDS
    assert {n: f["kind"] for n, f in fields.items()} == {
        "vibration": "timeseries",
        "sound": "audio",
        "thermal": "image",
        "note": "text",
        "specs": "tabular",
    }
    assert fields["specs"]["columns"] == list(trained.modalities["specs"].columns())
    own = trained.modalities["thermal"].max_pixels  # type: ignore[attr-defined]
    assert fields["thermal"]["limits"]["max_pixels"] == min(own, 16_000_000)  # the server's default is lower
    assert fields["note"]["limits"] == {"max_chars": ServeSettings().max_text_chars}
    assert fields["sound"]["limits"]["max_seconds"] == ServeSettings().max_audio_seconds
    # how the page asks for each field, declared by its modality
    assert {n: f["widget"]["control"] for n, f in fields.items()} == {
        "vibration": "json",
        "sound": "file",
        "thermal": "file",
        "note": "text",
        "specs": "columns",
    }
    file = {"control": "file", "hint": ""}
    assert fields["thermal"]["widget"] == {**file, "accept": "image/*", "preview": "img"}
    assert fields["sound"]["widget"] == {**file, "accept": "audio/*", "preview": "audio"}
    assert fields["thermal"]["accepts"].startswith("base64 text or data URL, or a file upload (PNG")
    assert info["metrics"]["metrics"]["accuracy"] == pytest.approx(trained.metrics["metrics"]["accuracy"])
    assert info["metrics"]["split"] == "test"
    assert "table_path" not in info["provenance"]  # server paths are not published
    assert info["limits"]["max_body_bytes"] == 20 * 1024 * 1024
    assert info["limits"]["max_request_pixels"] == 64_000_000  # the decode budgets are published
    assert info["limits"]["max_batch_decode_s"] == 1.0
    assert info["limits"]["body_timeout_s"] == 30.0
    assert set(info["breakers"]) == set(FIELDS)  # brought back from the model's own process
    assert set(info["breakers"].values()) == {"closed"}
    assert info["inference"] == {"where": "process", "restarts": 0}
    runtime = info["runtime"]
    assert runtime["name"] in RUNTIMES
    assert runtime["graph"] == ("model.onnx" if runtime["name"] == "onnx" else None)
    assert runtime["explain"] is True and runtime["embed"] is (runtime["name"] == "torch")
    assert info["batching"] == {"max_batch_size": 16, "max_wait_ms": 5.0}


def test_a_lower_pixel_limit_is_declared_and_enforced(trained: TrainedModel, full: dict[str, Any]) -> None:
    with served_with(trained, max_image_pixels=100) as c:
        info = c.get("/v1/info").json()
        assert next(f for f in info["fields"] if f["name"] == "thermal")["limits"]["max_pixels"] == 100
        out = c.post("/v1/predict", json=full).json()
    assert state(out, "thermal")[0] == "failed"
    assert state(out, "thermal")[1].startswith("too large")


# ---- predictions -----------------------------------------------------------------------------------


def test_a_full_record_predicts_undegraded(served: TestClient, full: dict[str, Any]) -> None:
    response = served.post("/v1/predict", json=full)
    assert response.status_code == 200
    out = response.json()
    assert out["degraded"] is False
    assert out["fields_used"] == FIELDS
    assert out["fields_missing"] == []
    assert math.isclose(sum(out["probabilities"].values()), 1.0, abs_tol=1e-4)
    assert out["prediction"] in out["probabilities"]
    assert out["latency_ms"] >= 0


def test_leaving_the_image_out_degrades(served: TestClient, full: dict[str, Any]) -> None:
    without = {k: v for k, v in full.items() if k != "thermal"}
    out = served.post("/v1/predict", json=without).json()
    assert out["degraded"] is True
    assert out["fields_missing"] == ["thermal"]
    assert state(out, "thermal")[0] == "missing"
    assert math.isclose(sum(out["probabilities"].values()), 1.0, abs_tol=1e-4)


def test_corrupt_or_wrong_media_degrades_with_a_reason(served: TestClient, full: dict[str, Any]) -> None:
    bad_base64 = served.post("/v1/predict", json={**full, "sound": "this is not base64!!"})
    assert bad_base64.status_code == 200
    out = bad_base64.json()
    assert out["degraded"] is True
    assert out["fields_missing"] == ["sound"]
    assert state(out, "sound")[0] == "failed"
    assert state(out, "sound")[1].startswith("undecodable")

    png_as_audio = served.post("/v1/predict", json={**full, "sound": b64(png_bytes())}).json()
    assert state(png_as_audio, "sound")[0] == "failed"
    assert "wrong content" in state(png_as_audio, "sound")[1]
    assert "PNG" in state(png_as_audio, "sound")[1]
    assert png_as_audio["fields_used"] == ["vibration", "thermal", "note", "specs"]

    truncated = served.post("/v1/predict", json={**full, "thermal": b64(png_bytes()[:60])}).json()
    assert state(truncated, "thermal")[0] == "failed"


def test_a_url_or_a_path_for_a_media_field_is_never_read(
    client: TestClient,
    full: dict[str, Any],
    rows: list[dict[str, Any]],
    pumps_small: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    connects: list[Any] = []
    monkeypatch.setattr(socket.socket, "connect", lambda self, addr: connects.append(addr))
    monkeypatch.setattr(socket, "create_connection", lambda *a, **k: connects.append(a))
    out = client.post("/v1/predict", json={**full, "thermal": "https://example.com/pump.png"}).json()
    assert connects == []
    assert state(out, "thermal")[0] == "failed"
    assert "URLs are not fetched" in state(out, "thermal")[1]
    assert out["degraded"] is True

    path = str((pumps_small.root / rows[0]["thermal"]).resolve())  # an existing server file
    by_path = client.post("/v1/predict", json={**full, "thermal": path}).json()
    assert state(by_path, "thermal")[0] == "failed"
    series_path = client.post("/v1/predict", json={**full, "vibration": "/etc/hostname"}).json()
    assert state(series_path, "vibration")[0] == "failed"


def test_a_series_is_used_as_a_json_array_or_as_json_text_and_a_ragged_one_fails_alone(
    client: TestClient, full: dict[str, Any]
) -> None:
    series = json.loads(full["vibration"]) if isinstance(full["vibration"], str) else full["vibration"]
    as_array = client.post("/v1/predict", json={**full, "vibration": series}).json()
    as_text = client.post("/v1/predict", json={**full, "vibration": json.dumps(series)}).json()
    assert state(as_array, "vibration")[0] == state(as_text, "vibration")[0] == "used"
    assert as_array["probabilities"] == pytest.approx(as_text["probabilities"], abs=1e-6)
    ragged = client.post("/v1/predict", json={**full, "vibration": [[0.1, 0.2, 0.3], [0.4]]})
    assert ragged.status_code == 200
    assert state(ragged.json(), "vibration")[0] == "failed"
    assert state(ragged.json(), "vibration")[1].startswith("undecodable: expected an array of numbers")
    assert ragged.json()["fields_used"] == ["sound", "thermal", "note", "specs"]


def test_a_column_sent_empty_is_reported_empty_and_one_not_sent_not_in_the_record(
    client: TestClient, full: dict[str, Any]
) -> None:
    fields = {f["name"]: f for f in client.get("/v1/info").json()["fields"]}
    specs = fields["specs"]["columns"]
    blanks = {c: "NA" if isinstance(full[c], int | float) else None for c in specs}  # "NA": a missing number
    assert "NA" in blanks.values()
    sent = client.post("/v1/predict", json={**full, "note": None, **blanks}).json()
    assert state(sent, "note") == ("missing", "empty")
    assert state(sent, "specs") == ("missing", "empty")
    left_out = client.post("/v1/predict", json={k: v for k, v in full.items() if k != "note"}).json()
    assert state(left_out, "note") == ("missing", "not in the record")
    text = client.post("/v1/predict", json={**full, "note": "   "}).json()
    assert state(text, "note") == ("missing", "empty")


def test_unknown_field_is_422_with_valid_names_and_did_you_mean(client: TestClient) -> None:
    response = client.post("/v1/predict", json={"thermla": "x", "note": "hot"})
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "unknown_field"
    assert error["field"] == "thermla"
    assert "did you mean 'thermal'?" in error["message"]
    for name in ("note", "rpm", "sound", "vibration", "pump_model"):
        assert name in error["message"]


def test_a_tabular_field_name_points_to_its_columns(client: TestClient) -> None:
    error = client.post("/v1/predict", json={"specs": {"rpm": 1}}).json()["error"]
    assert "send its columns" in error["message"]
    assert "rpm" in error["message"]


def test_text_over_the_limit_is_422_naming_field_and_limit(trained: TrainedModel) -> None:
    with served_with(trained, max_text_chars=50) as c:
        ok = c.post("/v1/predict", json={"note": "x" * 50})
        over = c.post("/v1/predict", json={"note": "x" * 51})
    assert ok.status_code == 200
    assert over.status_code == 422
    error = over.json()["error"]
    assert error["field"] == "note"
    assert "50" in error["message"]
    assert "'note'" in error["message"]


def test_wrong_json_types_are_422_and_numbers_may_be_strings(client: TestClient) -> None:
    assert client.post("/v1/predict", json={"note": 12}).status_code == 422
    assert client.post("/v1/predict", json={"thermal": 12}).status_code == 422
    assert client.post("/v1/predict", json={"rpm": "fast"}).json()["error"]["field"] == "rpm"
    as_text = client.post("/v1/predict", json={"rpm": "1450.5", "pump_model": "KP-100"}).json()
    assert as_text["fields_used"] == ["specs"]
    assert client.post("/v1/predict", json="just a string").status_code == 422
    assert client.post("/v1/predict", content=b"{not json").status_code == 400


def test_body_over_the_limit_is_413_by_header_and_by_stream(trained: TrainedModel) -> None:
    big = {"note": "y" * 6000}
    with served_with(trained, max_body_bytes=4096) as c:
        by_header = c.post("/v1/predict", json=big)
        body = json.dumps(big).encode()
        streamed = c.post("/v1/predict", content=iter([body[:3000], body[3000:]]))  # chunked, no length
        small = c.post("/v1/predict", json={"note": "short"})
    assert by_header.status_code == 413
    assert by_header.json()["error"]["code"] == "too_large"
    assert streamed.status_code == 413
    assert small.status_code == 200


def test_a_list_of_three_gives_three_predictions_in_order(
    served: TestClient, rows: list[dict[str, Any]], pumps_small: Any
) -> None:
    records = [
        record(rows[0], pumps_small.root),
        {"note": rows[1]["note"]},
        {k: v for k, v in record(rows[2], pumps_small.root).items() if k != "sound"},
    ]
    singles = [served.post("/v1/predict", json=r).json() for r in records]
    for body in (records, {"records": records}):
        response = served.post("/v1/predict", json=body)
        assert response.status_code == 200
        out = response.json()
        assert out["model_id"] == singles[0]["model_id"]
        predictions = out["predictions"]
        assert [p["fields_used"] for p in predictions] == [s["fields_used"] for s in singles]
        assert [p["fields_used"] for p in predictions] == [
            FIELDS,
            ["note"],
            ["vibration", "thermal", "note", "specs"],
        ]
        for p, s in zip(predictions, singles, strict=True):
            assert p["prediction"] == s["prediction"]
            for c, v in s["probabilities"].items():
                assert p["probabilities"][c] == pytest.approx(v, abs=1e-5)


def test_upload_with_a_real_png_file(
    client: TestClient, rows: list[dict[str, Any]], pumps_small: Any
) -> None:
    png = (pumps_small.root / rows[0]["thermal"]).read_bytes()
    response = client.post(
        "/v1/predict/upload",
        files={"thermal": ("anything.bin", png, "application/octet-stream")},
        data={"note": rows[0]["note"], "rpm": "1500", "site": rows[0]["site"]},
    )
    assert response.status_code == 200
    out = response.json()
    assert out["fields_used"] == ["thermal", "note", "specs"]
    assert state(out, "thermal") == ("used", "")
    wav_as_image = client.post(
        "/v1/predict/upload",
        files={"thermal": ("x.png", (pumps_small.root / rows[0]["sound"]).read_bytes(), "image/png")},
    ).json()
    assert state(wav_as_image, "thermal")[0] == "failed"  # sniffed by content, not by name or type
    assert "WAV" in state(wav_as_image, "thermal")[1]
    unknown = client.post("/v1/predict/upload", data={"notes": "x"})
    assert unknown.status_code == 422
    assert "did you mean 'note'?" in unknown.json()["error"]["message"]


def test_required_fields_are_422_when_absent_or_unusable(trained: TrainedModel, full: dict[str, Any]) -> None:
    with served_with(trained, required_fields=("thermal",)) as c:
        assert c.post("/v1/predict", json=full).status_code == 200
        missing = c.post("/v1/predict", json={"note": "hot"})
        broken = c.post("/v1/predict", json={**full, "thermal": b64(b"\x89PNG\r\n\x1a\n" + b"0" * 40)})
        info = c.get("/v1/info").json()
    assert missing.status_code == 422
    assert missing.json()["error"] == {
        "code": "required_field",
        "message": "record: field 'thermal' is required by this server; send column(s) thermal",
        "field": "thermal",
    }
    assert broken.status_code == 422
    assert broken.json()["error"]["field"] == "thermal"
    assert next(f for f in info["fields"] if f["name"] == "thermal")["required"] is True
    with pytest.raises(ConfigError, match="did you mean 'thermal'"):
        create_app(trained, ServeSettings(api_key=None, inference="thread", required_fields=("thermla",)))


def test_a_field_the_bundle_marks_required_is_required(trained: TrainedModel, full: dict[str, Any]) -> None:
    from dataclasses import replace

    raw = trained.config.to_dict()
    raw["fields"]["thermal"]["required"] = True  # `required: true` in the config the bundle was trained with
    config = type(trained.config).from_dict(raw, base_dir=trained.config.base_dir)
    assert config.to_dict()["fields"]["thermal"]["required"] is True  # survives the YAML round trip
    assert "required" not in config.to_dict()["fields"]["note"]
    with served_with(replace(trained, config=config)) as c:
        assert c.post("/v1/predict", json=full).status_code == 200
        missing = c.post("/v1/predict", json={"note": "hot"})
    assert missing.status_code == 422 and missing.json()["error"]["field"] == "thermal"
    with pytest.raises(ConfigError, match=r"fields.note.required: expected true or false"):
        type(config).from_dict(
            {**raw, "fields": {**raw["fields"], "note": {"kind": "text", "required": "yes"}}}
        )


# ---- auth, CORS, errors, metrics -------------------------------------------------------------------


def test_api_key_is_required_when_set(trained: TrainedModel) -> None:
    with served_with(trained, api_key="s3cret") as c:
        none = c.post("/v1/predict", json={"note": "hot"})
        wrong = c.post("/v1/predict", json={"note": "hot"}, headers={"X-API-Key": "guess"})
        right = c.post("/v1/predict", json={"note": "hot"}, headers={"X-API-Key": "s3cret"})
        bearer = c.get("/v1/info", headers={"Authorization": "Bearer s3cret"})
        metrics = c.get("/metrics")
        probe = c.get("/healthz")
    assert none.status_code == 401
    assert none.json()["error"]["code"] == "unauthorized"
    assert wrong.status_code == 401
    assert right.status_code == 200
    assert bearer.status_code == 200
    assert metrics.status_code == 401
    assert probe.status_code == 200


def test_api_key_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLAIT_API_KEY", "from-env")
    assert ServeSettings().api_key == "from-env"
    assert "from-env" not in repr(ServeSettings())
    assert ServeSettings(api_key=None).api_key is None
    monkeypatch.setenv("PLAIT_API_KEY", "  ")
    assert ServeSettings().api_key is None


def test_cors_is_off_by_default_and_on_when_configured(client: TestClient, trained: TrainedModel) -> None:
    origin = {"Origin": "https://app.example.org"}
    assert "access-control-allow-origin" not in client.get("/v1/info", headers=origin).headers
    with served_with(trained, cors_origins=("https://app.example.org",)) as c:
        allowed = c.get("/v1/info", headers=origin)
        other = c.get("/v1/info", headers={"Origin": "https://evil.example"})
    assert allowed.headers["access-control-allow-origin"] == "https://app.example.org"
    assert "access-control-allow-origin" not in other.headers


def test_errors_are_json_with_code_message_field(client: TestClient) -> None:
    missing = client.get("/no/such/page")
    assert missing.status_code == 404
    assert set(missing.json()["error"]) == {"code", "message", "field"}
    wrong_method = client.get("/v1/predict")
    assert wrong_method.status_code == 405
    assert wrong_method.json()["error"]["code"] == "method_not_allowed"


def test_metrics_count_requests_batches_and_degraded_fields(
    trained: TrainedModel, full: dict[str, Any]
) -> None:
    with served_with(trained) as c:
        c.post("/v1/predict", json=full)
        c.post("/v1/predict", json=[{"note": "hot"}, {"note": "noisy"}])
        c.post("/v1/predict", json={"nope": 1})
        text = c.get("/metrics").text
    assert 'plait_requests_total{endpoint="/v1/predict",status="200"} 2.0' in text
    assert 'plait_requests_total{endpoint="/v1/predict",status="422"} 1.0' in text
    assert "plait_batch_size_count" in text
    batches = next(line for line in text.splitlines() if line.startswith("plait_batch_size_sum"))
    assert float(batches.split()[-1]) == 3.0  # 1 + 2 records went through the batcher
    thermal = [line for line in text.splitlines() if line.startswith('plait_degraded_total{field="thermal"')]
    assert len(thermal) == 1  # one reason: left out of the two records of the list
    assert 'state="missing"' in thermal[0]
    assert float(thermal[0].split()[-1]) == 2.0
    assert 'plait_breaker_state{field="thermal"} 0.0' in text
    assert "plait_request_seconds_bucket" in text


def test_the_index_page_links_to_docs_and_info(client: TestClient) -> None:
    page = client.get("/")
    assert page.headers["content-type"].startswith("text/html")
    assert "/docs" in page.text
    assert "/v1/info" in page.text


# ---- settings, the env factory, the CLI ------------------------------------------------------------


def test_settings_are_checked_with_named_errors() -> None:
    with pytest.raises(ConfigError, match=r"serve\.port"):
        ServeSettings(port=70000, api_key=None)
    with pytest.raises(ConfigError, match=r"serve\.max_wait_ms"):
        ServeSettings(max_wait_ms=float("nan"), api_key=None)
    with pytest.raises(ConfigError, match=r"serve\.cors_origins"):
        ServeSettings(cors_origins=["https://a"], api_key=None)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"serve\.api_key"):
        ServeSettings(api_key="")
    settings = ServeSettings(port=9000, cors_origins=("https://a",), api_key="k")
    again = ServeSettings.from_json(json.loads(json.dumps(settings.to_json())), api_key="k")
    assert again == settings
    assert "api_key" not in settings.to_json()


def test_plait_serve_takes_any_setting_with_set(pumps_bundle: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import uvicorn
    from typer.testing import CliRunner

    from plait.cli.main import app as cli

    started: list[tuple[Any, dict[str, Any]]] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: started.append((app, kw)))
    bundle = str(pumps_bundle.bundle_path)
    args = ["serve", bundle, "--inference", "thread", "--set", "max_text_chars=77", "--set", "port=9123"]
    result = CliRunner().invoke(cli, [*args, "--set", 'cors_origins=["https://a.example"]'])
    assert result.exit_code == 0, result.output
    ((served, options),) = started
    settings = served.state.plait.settings
    assert (settings.max_text_chars, settings.port, settings.cors_origins) == (
        77,
        9123,
        ("https://a.example",),
    )
    assert options["port"] == 9123 and "http://127.0.0.1:9123" in result.output
    for bad, said in (
        ("max_txt_chars=5", "did you mean 'max_text_chars'"),
        ("max_text_chars=many", "serve.max_text_chars: expected an integer"),
        ("api_key=s3cret", "only from the environment"),
        ("max_text_chars", "expected NAME=VALUE"),
    ):
        failed = CliRunner().invoke(cli, ["serve", bundle, "--set", bad])
        assert isinstance(failed.exception, ConfigError) and said in str(failed.exception), (
            bad,
            failed.exception,
        )
    assert len(started) == 1


def test_app_from_env_builds_the_app_each_worker_imports(
    pumps_bundle: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(BUNDLE_ENV, str(pumps_bundle.bundle_path))
    raw = {**ServeSettings(max_text_chars=77, api_key=None).to_json(), "api_key_env": "MY_KEY"}
    monkeypatch.setenv(SETTINGS_ENV, json.dumps(raw))
    monkeypatch.setenv("MY_KEY", "abc")
    with TestClient(app_from_env()) as c:
        assert c.get("/v1/info").status_code == 401
        info = c.get("/v1/info", headers={"X-API-Key": "abc"}).json()
    assert next(f for f in info["fields"] if f["name"] == "note")["limits"] == {"max_chars": 77}
    monkeypatch.delenv(BUNDLE_ENV)
    with pytest.raises(ConfigError, match=BUNDLE_ENV):
        app_from_env()


def test_cli_serve_runs_uvicorn_with_the_app_or_the_factory(
    pumps_bundle: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import uvicorn
    from typer.testing import CliRunner

    from plait.cli.main import app
    from plait.serving.metrics import MULTIPROC_ENV

    calls: list[tuple[Any, dict[str, Any]]] = []
    shared: list[str | None] = []

    def run(target: Any, **kw: Any) -> None:
        calls.append((target, kw))
        shared.append(os.environ.get(MULTIPROC_ENV))
        assert shared[-1] is None or os.path.isdir(shared[-1])

    monkeypatch.setattr(uvicorn, "run", run)
    monkeypatch.delenv(MULTIPROC_ENV, raising=False)
    monkeypatch.setenv(BUNDLE_ENV, "unset")  # the command writes both; monkeypatch restores them
    monkeypatch.setenv(SETTINGS_ENV, "{}")
    monkeypatch.setenv("PLAIT_SERVE_HEADER_TIMEOUT_S", "10.0")  # written for the workers; restored after
    bundle = str(pumps_bundle.bundle_path)
    one = CliRunner().invoke(app, ["serve", bundle, "--port", "8123", "--max-batch-size", "8"])
    assert one.exit_code == 0, one.output
    target, kw = calls[0]
    assert not isinstance(target, str)  # the app object itself
    assert kw["port"] == 8123
    # uvicorn alone never times out a request's headers: the server's own protocol does
    assert kw["http"] == "plait.serving.server:HeaderTimeoutProtocol"
    assert kw["timeout_keep_alive"] == 5
    many = CliRunner().invoke(app, ["serve", bundle, "--workers", "2", "--cors-origin", "https://a"])
    assert many.exit_code == 0, many.output
    target, kw = calls[1]
    assert target == "plait.serving.app:app_from_env"
    assert kw["factory"] is True
    assert kw["workers"] == 2
    settings = json.loads(os.environ[SETTINGS_ENV])
    assert settings["cors_origins"] == ["https://a"]
    assert os.environ[BUNDLE_ENV] == str(Path(bundle).resolve())
    # the workers shared a temporary metrics directory, gone (and unset) once the server stopped
    assert shared[0] is None and shared[1] is not None
    assert MULTIPROC_ENV not in os.environ and not os.path.exists(shared[1])


def test_non_finite_numbers_become_null_in_responses() -> None:
    from plait.json_safe import finite as _finite

    clean = {"p": [0.25, 0.75], "t": 1.0}
    assert _finite(clean) is clean  # the common case is not copied
    assert _finite({"a": [1.0, float("nan")], "b": {"c": float("inf")}, "d": (2.0,)}) == {
        "a": [1.0, None],
        "b": {"c": None},
        "d": [2.0],
    }


def test_nan_from_pythons_json_dumps_is_read_as_missing(client: TestClient) -> None:
    """The fast parser rejects NaN; the standard one reads it, and a NaN number is a missing value."""
    specs = next(f for f in client.get("/v1/info").json()["fields"] if f["name"] == "specs")
    body = json.dumps({"note": "pump runs hot", specs["columns"][0]: float("nan")}).encode()
    assert b"NaN" in body
    response = client.post("/v1/predict", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 200, response.text
    broken = client.post("/v1/predict", content=b'{"note": ', headers={"Content-Type": "application/json"})
    assert broken.status_code == 400 and "not valid JSON" in broken.json()["error"]["message"]


def test_explain_adds_contributions_only_when_asked(served: TestClient, full: dict[str, Any]) -> None:
    plain = served.post("/v1/predict", json=full).json()
    assert plain["contributions"] is None
    explained = served.post("/v1/predict?explain=true", json=full).json()
    assert set(explained["contributions"]) == set(explained["fields_used"])
    assert explained["probabilities"] == plain["probabilities"]
    bad = served.post("/v1/predict?explain=maybe", json=full)
    assert bad.status_code == 422 and "explain" in json.dumps(bad.json())


def test_out_of_range_numbers_fail_the_field_instead_of_a_nan_answer(served: TestClient) -> None:
    """Regression: numbers near the float limit made the tabular encoding NaN, and the answer had
    null probabilities with a confident-looking class."""
    specs = next(f for f in served.get("/v1/info").json()["fields"] if f["name"] == "specs")
    numeric = specs["columns"][:2]
    body = {"note": "pump runs hot", numeric[0]: -1e38, numeric[1]: 3e38}
    answer = served.post("/v1/predict", json=body).json()
    assert all(isinstance(p, float) for p in answer["probabilities"].values())
    if (
        served.get("/v1/info").json()["runtime"]["name"] == "onnx"
        and answer["fields"]["specs"]["state"] == "used"
    ):
        # onnxruntime's fused LayerNormalization keeps these encodings finite where torch's overflows:
        # an answer from the extreme values, still never a NaN one
        assert abs(sum(answer["probabilities"].values()) - 1.0) < 1e-4
        return
    assert (
        answer["fields"]["specs"]["state"] == "failed" and "non-finite" in answer["fields"]["specs"]["reason"]
    )
    assert "specs" in answer["fields_missing"] and answer["degraded"] is True
    assert abs(sum(answer["probabilities"].values()) - 1.0) < 1e-4


def test_report_is_guarded_and_a_resave_drops_a_stale_one(trained: TrainedModel, tmp_path: Path) -> None:
    from plait.bundle import save_bundle

    bundle = save_bundle(trained, tmp_path / "b")
    (bundle / "report.html").write_text("<!DOCTYPE html><title>r</title>old model's report")
    (bundle / "evaluation.json").write_text("{}")
    with TestClient(create_app(bundle, ServeSettings(api_key="k"))) as c:
        assert c.get("/report").status_code == 401
        assert "old model" in c.get("/report", headers={"X-API-Key": "k"}).text
    save_bundle(trained, bundle)  # a new model written over it: the old report must not survive
    assert not (bundle / "report.html").exists() and not (bundle / "evaluation.json").exists()


def test_a_required_field_the_server_cannot_encode_is_503_not_422(
    trained: TrainedModel, full: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("encoder down")

    with served_with(trained, required_fields=("thermal",)) as c:
        monkeypatch.setattr(trained.model.encoders["thermal"], "forward", broken)  # after the warm-up
        answer = c.post("/v1/predict", json=full)
    assert answer.status_code == 503  # the client cannot fix this, only retry
    assert (
        answer.json()["error"]["code"] == "field_unavailable" and answer.json()["error"]["field"] == "thermal"
    )


def test_without_the_key_a_body_is_refused_before_it_is_read(trained: TrainedModel) -> None:
    """401 comes before the body limit: a client without the key cannot make the server buffer."""
    settings = ServeSettings(api_key="k", max_body_bytes=2048, inference="thread")
    with TestClient(create_app(trained, settings)) as c:
        big = c.post("/v1/predict", content=b"x" * 5000, headers={"Content-Type": "application/json"})
        assert big.status_code == 401 and big.json()["error"]["code"] == "unauthorized"
        keyed = c.post("/v1/predict", content=b"x" * 5000, headers={"X-API-Key": "k"})
        assert keyed.status_code == 413
        bearer = c.post("/v1/predict", json={"note": "hot"}, headers={"Authorization": "Bearer k"})
        assert bearer.status_code == 200


def test_an_empty_or_broken_form_is_a_400(client: TestClient) -> None:
    broken = client.post(
        "/v1/predict/upload",
        content=b"--x\r\nbroken",
        headers={"Content-Type": "multipart/form-data; boundary=x"},
    )
    assert broken.status_code == 400 and broken.json()["error"]["code"] == "bad_request"
