"""The smaller serving items of issue 13 (6): slow clients are timed out (headers and body), an
aborted upload is counted as aborted (499), not as a server error, a 503 names no server path, and
start-up survives a model process that dies once."""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import time
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from live import live_server

from plait.serving import process
from plait.serving.app import create_app
from plait.serving.process import EngineProcess
from plait.serving.settings import ServeSettings

TIMEOUT_S = 1.0  # the header and body timeouts of the live server below


def closed_within(sock: socket.socket, seconds: float) -> tuple[bool, bytes]:
    """(whether the server closed `sock` within `seconds`, what it sent before)."""
    sock.settimeout(seconds)
    got = b""
    try:
        while chunk := sock.recv(4096):
            got += chunk
    except TimeoutError:
        return False, got
    return True, got


def connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=5)


@pytest.mark.slow
def test_slow_clients_are_timed_out_and_aborted_uploads_are_counted_as_499(pumps_bundle: Any) -> None:
    options = ("--set", f"header_timeout_s={TIMEOUT_S}", "--set", f"body_timeout_s={TIMEOUT_S}")
    with live_server(pumps_bundle.bundle_path, *options) as (url, port):
        # Headers that never end: closed after header_timeout_s (uvicorn alone kept them open).
        silent, partial = connect(port), connect(port)
        partial.sendall(b"POST /v1/predict HTTP/1.1\r\nHost: x\r\n")
        started = time.monotonic()
        for sock in (silent, partial):
            closed, _ = closed_within(sock, 10 * TIMEOUT_S)
            assert closed, "a connection with no complete headers stayed open"
            sock.close()
        assert time.monotonic() - started < 10 * TIMEOUT_S

        # A body that stops arriving: 408, and the connection is closed.
        stalled = connect(port)
        stalled.sendall(
            b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b'Content-Length: 100\r\n\r\n{"note": '
        )
        closed, answer = closed_within(stalled, 10 * TIMEOUT_S)
        stalled.close()
        assert closed and answer.startswith(b"HTTP/1.1 408"), answer[:200]
        assert b"request_timeout" in answer and b"body_timeout_s" in answer

        # An upload the client gives up on: counted as 499, not as a server error.
        aborted = connect(port)
        aborted.sendall(
            b"POST /v1/predict/upload HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; "
            b"boundary=b\r\nContent-Length: 100000\r\n\r\n--b\r\n"
        )
        time.sleep(0.3)
        aborted.close()
        time.sleep(0.5)
        metrics = httpx.get(f"{url}/metrics", timeout=30).text
        assert 'plait_requests_total{endpoint="/v1/predict/upload",status="499"} 1.0' in metrics
        assert 'status="500"' not in metrics
        assert 'endpoint="/v1/predict",status="408"' in metrics
        assert httpx.post(f"{url}/v1/predict", json={"note": "hot"}, timeout=30).status_code == 200


def test_a_503_names_no_server_path_and_the_log_has_it(
    pumps_bundle: Any, caplog: pytest.LogCaptureFixture
) -> None:
    settings = ServeSettings(api_key=None, batch_timeout_s=1.0)
    with TestClient(create_app(pumps_bundle.bundle_path, settings)) as client:
        engine = client.app.state.plait.engine  # type: ignore[attr-defined]
        assert isinstance(engine, EngineProcess) and engine.pid is not None
        os.kill(engine.pid, signal.SIGSTOP)  # stuck: the call times out and the child is killed
        with caplog.at_level(logging.WARNING, logger="plait.serving.process"):
            answer = client.post("/v1/predict", json={"note": "hot"})
    assert answer.status_code == 503
    body = answer.text
    assert answer.json()["error"]["code"] == "engine_restarting"
    assert str(pumps_bundle.bundle_path) not in body and "Errno" not in body and "/" not in body
    assert str(pumps_bundle.bundle_path) in caplog.text  # the operator still learns which bundle


def test_start_up_survives_a_model_process_that_dies_while_loading(
    pumps_bundle: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = subprocess.Popen
    started: list[int] = []

    def popen(*args: Any, **kwargs: Any) -> Any:
        child = real(*args, **kwargs)
        started.append(child.pid)
        if len(started) == 1:
            os.kill(child.pid, signal.SIGKILL)  # as if killed for memory while importing torch
        return child

    monkeypatch.setattr(process.subprocess, "Popen", popen)
    with TestClient(create_app(pumps_bundle.bundle_path, ServeSettings(api_key=None))) as client:
        assert client.get("/readyz").status_code == 200
        assert client.post("/v1/predict", json={"note": "hot"}).status_code == 200
    assert len(started) == 2


def test_start_up_survives_a_model_process_that_dies_while_warming_up(
    pumps_bundle: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = EngineProcess._send_call
    killed: list[int] = []

    def send_call(self: EngineProcess, op: str, payload: Any) -> None:
        if op == "warm_up" and not killed and self.pid is not None:
            killed.append(self.pid)
            os.kill(self.pid, signal.SIGKILL)
        real(self, op, payload)

    monkeypatch.setattr(EngineProcess, "_send_call", send_call)
    with TestClient(create_app(pumps_bundle.bundle_path, ServeSettings(api_key=None))) as client:
        assert client.get("/readyz").status_code == 200
        assert client.post("/v1/predict", json={"note": "hot"}).status_code == 200
        engine = client.app.state.plait.engine  # type: ignore[attr-defined]
        assert killed and engine.pid != killed[0]


@pytest.mark.parametrize("protocol", ["H11HeaderTimeout", "HttpToolsHeaderTimeout"])
def test_each_protocol_closes_a_connection_whose_headers_are_late(
    protocol: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both of uvicorn's parsers (httptools when installed, else h11) get the header timeout; a
    complete request on another connection is answered as usual."""

    from loopback import serve_in_thread

    from plait.serving import server as serving_server

    if not hasattr(serving_server, protocol):
        pytest.skip(f"{protocol}: its parser is not installed")

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    monkeypatch.setenv(serving_server.HEADER_TIMEOUT_ENV, str(TIMEOUT_S))
    http = getattr(serving_server, protocol)
    with serve_in_thread(app, start_s=30, lifespan="off", http=http) as port:
        partial = connect(port)
        partial.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
        assert httpx.get(f"http://127.0.0.1:{port}/", timeout=10).text == "ok"
        closed, _ = closed_within(partial, 10 * TIMEOUT_S)
        partial.close()
    assert closed, f"{protocol}: a connection with no complete headers stayed open"
