"""Faults injected behind the HTTP app: an encoder that raises or hangs degrades its field, never
the answer; its breaker opens after `breaker_fail_max` failed requests (the encoder is then not
called), and closes again after a successful trial once `breaker_reset_timeout_s` has passed.
Client mistakes (undecodable media) never count against a breaker.

Each test serves its own copy of the pumps bundle: the tests patch `model.encoders["thermal"]`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from test_app import b64, record  # the record builder of the app tests (media base64-encoded)

from plait.bundle import TrainedModel, load_bundle
from plait.data.table import read_table
from plait.predictor import Predictor
from plait.serving.app import create_app
from plait.serving.settings import ServeSettings

FIELD = "thermal"  # the field whose encoder breaks
FAIL_MAX = 3
RESET_S = 0.5  # short: the recovery test waits it out
LONG_RESET_S = 60.0  # an open breaker stays open for the whole test
TIMEOUT_S = 0.3
HANG_S = 10.0  # a hung encoder blocks this long at most (released when its test ends)
OTHERS = ["vibration", "sound", "note", "specs"]


@pytest.fixture
def trained(pumps_bundle: Any) -> TrainedModel:
    return load_bundle(pumps_bundle.bundle_path)  # a fresh copy per test: its encoders get patched


@pytest.fixture(scope="module")
def row(pumps_small: Any) -> dict[str, Any]:
    """The first clean table row (media as paths relative to the root)."""
    corrupt = {i for ids in pumps_small.corrupted.values() for i in ids}
    return next(r for r in read_table(pumps_small.table_path).to_dicts() if r["inspection_id"] not in corrupt)


@pytest.fixture(scope="module")
def full(row: dict[str, Any], pumps_small: Any) -> dict[str, Any]:
    return record(row, pumps_small.root)


@contextmanager
def serve(trained: TrainedModel, reset_s: float = LONG_RESET_S) -> Iterator[TestClient]:
    settings = ServeSettings(
        api_key=None,
        breaker_fail_max=FAIL_MAX,
        breaker_reset_timeout_s=reset_s,
        field_timeout_s=TIMEOUT_S,
        inference="thread",  # the faults are injected into this process's encoders
    )
    with TestClient(create_app(trained, settings)) as client:  # the lifespan runs: batcher, warm-up
        yield client


class Encoder:
    """Stands in for the encoder's `forward`: raises while `broken`, blocks while `hanging` (until
    `release` or HANG_S), otherwise calls the real one. Counts calls."""

    def __init__(self, real: Callable[..., Any]) -> None:
        self.real = real
        self.calls = 0
        self.broken = False
        self.hanging = False
        self.release = threading.Event()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        if self.broken:
            raise RuntimeError("injected encoder fault")
        if self.hanging:
            self.release.wait(HANG_S)
        return self.real(*args, **kwargs)


@pytest.fixture
def encoder(trained: TrainedModel, monkeypatch: pytest.MonkeyPatch) -> Iterator[Encoder]:
    """The thermal encoder's forward, replaced (patch it after the lifespan's warm-up if the warm-up
    must not count: tests reset `calls` once the client is up)."""
    module = trained.model.encoders[FIELD]
    fake = Encoder(module.forward)
    monkeypatch.setattr(module, "forward", fake)
    yield fake
    fake.release.set()  # let a hung call finish so its thread ends


def post(client: TestClient, body: Any) -> dict[str, Any]:
    response = client.post("/v1/predict", json=body)
    assert response.status_code == 200, response.text
    out: dict[str, Any] = response.json()
    return out


def field_state(out: dict[str, Any], field: str = FIELD) -> tuple[str, str]:
    return out["fields"][field]["state"], out["fields"][field]["reason"]


def metric(client: TestClient, name: str, **labels: str) -> float:
    """The value of sample `name` whose labels include `labels`; summed when several match, 0.0 when none."""
    text = client.get("/metrics").text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items())
    )


def breaker(client: TestClient, field: str = FIELD) -> float:
    return metric(client, "plait_breaker_state", field=field)


def assert_degraded_by(out: dict[str, Any], state: str, reason: str) -> None:
    assert field_state(out)[0] == state
    assert reason in field_state(out)[1]
    assert out["degraded"] is True
    assert out["fields_missing"] == [FIELD]
    assert out["fields_used"] == OTHERS


# ---- failures open the breaker ---------------------------------------------------------------------


def test_a_failing_encoder_degrades_its_field_then_its_breaker_opens_and_stops_calling_it(
    trained: TrainedModel, encoder: Encoder, full: dict[str, Any]
) -> None:
    with serve(trained) as client:
        encoder.calls = 0  # the lifespan's warm-up ran it
        encoder.broken = True
        for i in range(FAIL_MAX):
            assert breaker(client) == 0.0, f"open after {i} failures"
            out = post(client, full)
            assert_degraded_by(out, "failed", "injected encoder fault")
            assert field_state(out)[1].startswith("encoder failed: RuntimeError")
        assert encoder.calls == FAIL_MAX
        assert breaker(client) == 2.0  # open
        assert client.get("/v1/info").json()["breakers"] == {
            **{f: "closed" for f in OTHERS},
            FIELD: "open",
        }

        for _ in range(4):  # open: the field is skipped without calling the encoder
            out = post(client, full)
            assert_degraded_by(out, "skipped", "breaker open")
        assert encoder.calls == FAIL_MAX
        assert [breaker(client, f) for f in OTHERS] == [0.0] * len(OTHERS)

        # The degraded counter, per field and why.
        assert metric(client, "plait_degraded_total", field=FIELD, state="failed") == FAIL_MAX
        assert metric(client, "plait_degraded_total", field=FIELD, reason="encoder failed") == FAIL_MAX
        assert (
            metric(client, "plait_degraded_total", field=FIELD, state="skipped", reason="breaker open") == 4
        )
        assert metric(client, "plait_degraded_total", field=FIELD) == FAIL_MAX + 4
        assert metric(client, "plait_degraded_total", field="note") == 0.0
        assert metric(client, "plait_requests_total", endpoint="/v1/predict", status="200") == FAIL_MAX + 4


def test_other_fields_keep_working_while_the_breaker_is_open(
    trained: TrainedModel, encoder: Encoder, full: dict[str, Any], row: dict[str, Any], pumps_small: Any
) -> None:
    without = {k: v for k, v in full.items() if k != FIELD}
    offline = Predictor.from_trained(trained).predict([{**row, FIELD: None}], root=pumps_small.root)[0]
    with serve(trained) as client:
        healthy = post(client, full)
        left_out = post(client, without)
        encoder.broken = True
        for _ in range(FAIL_MAX):
            post(client, full)
        assert breaker(client) == 2.0
        skipped = post(client, full)  # thermal sent, but its breaker is open
        without_open = post(client, without)
    assert healthy["degraded"] is False
    assert healthy["fields_used"] == [*OTHERS[:2], FIELD, *OTHERS[2:]]
    assert_degraded_by(skipped, "skipped", "breaker open")
    assert left_out["fields_missing"] == [FIELD]
    assert field_state(left_out) == ("missing", "not in the record")
    # Skipping a field is predicting without it: the same numbers as leaving it out.
    for out in (skipped, without_open):
        assert out["probabilities"] == left_out["probabilities"]
        assert out["prediction"] == left_out["prediction"]
        assert out["temperature"] == left_out["temperature"]
    assert left_out["probabilities"] == pytest.approx(offline.probabilities, abs=1e-5)
    assert left_out["probabilities"] != pytest.approx(healthy["probabilities"], abs=1e-6)


# ---- recovery --------------------------------------------------------------------------------------


def test_the_breaker_closes_after_a_successful_trial_once_the_reset_timeout_passed(
    trained: TrainedModel, encoder: Encoder, full: dict[str, Any]
) -> None:
    with serve(trained, reset_s=RESET_S) as client:
        before = post(client, full)
        encoder.broken = True
        for _ in range(FAIL_MAX):
            assert field_state(post(client, full))[0] == "failed"
        assert breaker(client) == 2.0

        encoder.broken = False  # the encoder is fixed; the breaker does not know yet
        calls = encoder.calls
        time.sleep(RESET_S + 0.2)
        trial = post(client, full)
        assert encoder.calls == calls + 1
        assert field_state(trial) == ("used", "")
        assert trial["degraded"] is False
        assert trial["fields_missing"] == []
        assert trial["probabilities"] == pytest.approx(before["probabilities"], abs=1e-6)
        assert breaker(client) == 0.0
        assert client.get("/v1/info").json()["breakers"][FIELD] == "closed"
        assert field_state(post(client, full)) == ("used", "")


def test_a_failed_trial_opens_the_breaker_again(
    trained: TrainedModel, encoder: Encoder, full: dict[str, Any]
) -> None:
    with serve(trained, reset_s=RESET_S) as client:
        encoder.broken = True
        for _ in range(FAIL_MAX):
            post(client, full)
        calls = encoder.calls
        time.sleep(RESET_S + 0.2)
        trial = post(client, full)  # still broken: one call, then open again
        assert encoder.calls == calls + 1
        assert field_state(trial)[0] == "failed"
        assert breaker(client) == 2.0


# ---- timeouts --------------------------------------------------------------------------------------


def test_a_hanging_encoder_times_out_and_repeated_timeouts_open_the_breaker(
    trained: TrainedModel, encoder: Encoder, full: dict[str, Any]
) -> None:
    with serve(trained) as client:
        encoder.calls = 0
        encoder.hanging = True
        reasons = []
        for _ in range(FAIL_MAX):
            started = time.perf_counter()
            out = post(client, full)
            # Functional, not a benchmark: the answer did not wait for the hung encoder.
            assert time.perf_counter() - started < HANG_S / 2
            assert_degraded_by(out, "skipped", "timed out")
            reasons.append(field_state(out)[1])
        assert reasons[0] == f"encoder timed out after {TIMEOUT_S:g} s"
        # With both of the field's threads hung, a later step waits in the queue and never starts.
        assert all(r.endswith(f"timed out after {TIMEOUT_S:g} s") for r in reasons)
        assert breaker(client) == 2.0
        assert 1 <= encoder.calls <= FAIL_MAX  # a call queued behind hung ones never starts
        calls = encoder.calls
        started = time.perf_counter()
        out = post(client, full)
        assert time.perf_counter() - started < HANG_S / 2
        assert_degraded_by(out, "skipped", "breaker open")
        assert encoder.calls == calls
        assert metric(client, "plait_degraded_total", field=FIELD, state="skipped") == FAIL_MAX + 1
        encoder.release.set()


# ---- client mistakes -------------------------------------------------------------------------------


def test_undecodable_input_never_opens_a_breaker(
    trained: TrainedModel, encoder: Encoder, full: dict[str, Any], row: dict[str, Any], pumps_small: Any
) -> None:
    png = (pumps_small.root / row[FIELD]).read_bytes()
    wav = (pumps_small.root / row["sound"]).read_bytes()
    mistakes = [
        "this is not base64!!",  # rejected while parsing the request
        "data:image/png;base64,@@@@",
        b64(png[:60]),  # a PNG header, then nothing: the image loader cannot decode it
        b64(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4),
        b64(wav),  # sniffed by content: not an image
    ]
    with serve(trained) as client:
        encoder.calls = 0
        for _ in range(2 * FAIL_MAX):
            for bad in mistakes:
                out = post(client, {**full, FIELD: bad})
                assert field_state(out)[0] == "failed"
                assert out["fields_missing"] == [FIELD]
                assert out["fields_used"] == OTHERS
        assert encoder.calls == 0  # nothing decodable ever reached the encoder
        assert breaker(client) == 0.0
        assert client.get("/v1/info").json()["breakers"][FIELD] == "closed"
        assert metric(client, "plait_degraded_total", field=FIELD, state="failed") == 2 * FAIL_MAX * len(
            mistakes
        )
        assert field_state(post(client, full)) == ("used", "")
