"""`plait serve` for real, in a process of its own on a loopback port (the tests that time it or
hold its sockets need the server's own event loop and uvicorn's protocol, not a TestClient)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from loopback import free_port

START_S = 180.0  # the server and its model process import torch and load the bundle


@contextmanager
def live_server(
    bundle: Path,
    *options: str,
    env: dict[str, str] | None = None,
    start_s: float = START_S,
    settle_s: float = 0.0,
) -> Iterator[tuple[str, int]]:
    """(url, port) of `plait serve BUNDLE OPTIONS…`, ready; stopped (SIGINT) on exit. `env` adds
    variables; `settle_s` waits after /readyz first answers (other workers warming up)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    environment = {**os.environ, "PLAIT_API_KEY": "", **(env or {})}
    command = [sys.executable, "-m", "plait.cli.main", "serve", str(bundle), "--port", str(port)]
    command += ["--log-level", "warning", *options]
    server = subprocess.Popen(command, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _wait_ready(url, server, start_s)
        time.sleep(settle_s)
        yield url, port
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(10)


def _wait_ready(url: str, server: subprocess.Popen[bytes], start_s: float) -> None:
    deadline = time.monotonic() + start_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(f"server exited: {server.stderr.read().decode() if server.stderr else ''}")
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"server not ready after {start_s:g} s")
