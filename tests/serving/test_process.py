"""The engine in its own process (`plait serve`'s default): the same answers as the engine in this
process, breaker states brought back, a clear error for a bad bundle, and a child that dies is
replaced — the batch it held gets a 503 and the server is ready again without a restart."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from plait.bundle import load_bundle
from plait.data.table import read_table
from plait.errors import BundleError, ConfigError
from plait.serving.app import create_app
from plait.serving.engine import Engine
from plait.serving.process import EngineProcess, EngineStopped
from plait.serving.settings import ServeSettings

MEDIA = ("sound", "thermal")
RESTART_S = 120.0  # a new child imports torch and loads the bundle: seconds on a busy machine


@pytest.fixture(scope="module")
def records(pumps_small: Any) -> list[dict[str, Any]]:
    """Four table rows as the HTTP layer hands them over: media as bytes, series as arrays."""
    table = read_table(pumps_small.table_path).to_dicts()[:4]
    out = []
    for row in table:
        record = {k: v for k, v in row.items() if k not in ("fault", "inspection_id")}
        for column in MEDIA:
            if record[column] is not None:
                record[column] = (pumps_small.root / record[column]).read_bytes()
        out.append(record)
    out[1]["vibration"] = np.asarray([[0.1, 0.2, 0.3]] * 40)  # what /v1/predict makes of a JSON array
    out[2].pop("thermal")
    return out


@pytest.fixture(scope="module")
def child(pumps_bundle: Any) -> Iterator[EngineProcess]:
    engine = EngineProcess(pumps_bundle.bundle_path)
    engine.warm_up()
    yield engine
    engine.close()


def wait_until(condition: Any, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


def test_the_child_answers_as_the_engine_in_this_process_does(
    child: EngineProcess, pumps_bundle: Any, records: list[dict[str, Any]]
) -> None:
    here = Engine(load_bundle(pumps_bundle.bundle_path))
    try:
        expected = here.predict(records, explain=[False, True, False, True])
    finally:
        here.close()
    got = child.predict(records, explain=[False, True, False, True])
    assert child.ready
    assert [s.fields for s in got] == [s.fields for s in expected]
    for a, b in zip(got, expected, strict=True):
        assert a.prediction.prediction == b.prediction.prediction
        assert a.prediction.fields_used == b.prediction.fields_used
        assert a.prediction.probabilities is not None and b.prediction.probabilities is not None
        for label, p in b.prediction.probabilities.items():
            assert a.prediction.probabilities[label] == pytest.approx(p, abs=1e-5)
        assert (a.contributions is None) == (b.contributions is None)
    assert got[2].prediction.degraded and "thermal" in got[2].prediction.fields_missing
    assert set(child.breaker_states()) == set(expected[0].prediction.fields_used) | {"thermal"}
    assert set(child.breaker_states().values()) == {"closed"}


def test_a_bundle_the_child_cannot_load_fails_at_start_with_the_bundles_error(tmp_path: Path) -> None:
    (tmp_path / "plait.json").write_text("{ not json")
    with pytest.raises(BundleError) as caught:
        EngineProcess(tmp_path, start_timeout_s=RESTART_S)
    assert str(tmp_path) in str(caught.value)


def test_a_killed_child_is_replaced_without_a_call_noticing_first(
    pumps_bundle: Any, records: list[dict[str, Any]]
) -> None:
    engine = EngineProcess(pumps_bundle.bundle_path)
    try:
        engine.warm_up()
        first = engine.pid
        assert first is not None
        os.kill(first, signal.SIGKILL)
        try:  # the watcher may win the race and answer from the new child; else the call is refused
            assert len(engine.predict(records[:1])) == 1
        except EngineStopped as exc:
            assert "retry shortly" in str(exc)
        assert wait_until(lambda: engine.ready, RESTART_S), "no new child after the old one was killed"
        assert engine.pid not in (None, first)
        assert engine.restarts == 1
        assert len(engine.predict(records)) == len(records)
    finally:
        engine.close()
    assert not engine.ready
    with pytest.raises(EngineStopped, match="closed"):
        engine.predict(records[:1])


def test_the_server_answers_503_while_its_model_process_restarts_then_serves_again(
    pumps_bundle: Any,
) -> None:
    record = {"note": "grinding noise near the bearing"}
    with TestClient(create_app(pumps_bundle.bundle_path, ServeSettings(api_key=None))) as client:
        assert client.post("/v1/predict", json=record).status_code == 200
        engine = _engine_of(client)
        assert engine.pid is not None
        os.kill(engine.pid, signal.SIGKILL)
        assert wait_until(lambda: not engine.ready, 10.0)
        answer = client.post("/v1/predict", json=record)
        if answer.status_code == 503:  # the batch met the dead child
            assert answer.json()["error"]["code"] == "engine_restarting"
        else:  # the restart won the race
            assert answer.status_code == 200
        assert wait_until(lambda: client.get("/readyz").status_code == 200, RESTART_S)
        again = client.post("/v1/predict", json=record)
        assert again.status_code == 200, again.text
        assert again.json()["fields_used"]


def test_a_child_that_stops_answering_is_killed_after_the_call_timeout_and_replaced(
    pumps_bundle: Any, records: list[dict[str, Any]]
) -> None:
    engine = EngineProcess(pumps_bundle.bundle_path, call_timeout_s=1.0)
    try:
        engine.warm_up()
        frozen = engine.pid
        assert frozen is not None
        os.kill(frozen, signal.SIGSTOP)  # stuck, as in a deadlock in native code: alive, silent
        started = time.monotonic()
        with pytest.raises(EngineStopped, match="did not finish predict in time and was killed"):
            engine.predict(records[:1])
        assert time.monotonic() - started < 10.0
        assert wait_until(lambda: engine.ready, RESTART_S)
        assert engine.pid not in (None, frozen)
        assert len(engine.predict(records[:2])) == 2
    finally:
        engine.close()


def test_process_inference_needs_a_bundle_directory(pumps_bundle: Any) -> None:
    trained = load_bundle(pumps_bundle.bundle_path)
    with pytest.raises(ConfigError, match="inference='thread'"):
        create_app(trained, ServeSettings(api_key=None))
    with pytest.raises(ConfigError, match="did you mean 'thread'"):
        ServeSettings(api_key=None, inference="threads")


def _engine_of(client: TestClient) -> EngineProcess:
    engine = client.app.state.plait.engine  # type: ignore[attr-defined]
    assert isinstance(engine, EngineProcess)
    return engine


def test_a_call_held_by_a_child_that_dies_fails_with_engine_stopped(
    child: EngineProcess, records: list[dict[str, Any]]
) -> None:
    import threading

    outcome: list[BaseException | int] = []

    def call() -> None:
        try:
            outcome.append(len(child.predict(records * 400)))  # 1600 records: seconds in the child
        except BaseException as exc:
            outcome.append(exc)

    caller = threading.Thread(target=call)
    caller.start()
    time.sleep(0.3)
    assert caller.is_alive(), "the batch finished before the child could be killed; make it larger"
    assert child.pid is not None
    os.kill(child.pid, signal.SIGKILL)
    caller.join(30.0)
    assert len(outcome) == 1 and isinstance(outcome[0], EngineStopped), outcome
    assert "a new one is starting" in str(outcome[0])
    assert wait_until(lambda: child.ready, RESTART_S)
    assert len(child.predict(records)) == len(records)
