"""A free loopback port, and an app served by uvicorn in a thread on one, for the tests that run a
real server."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serve_in_thread(app: Any, *, start_s: float = 60.0, **config: Any) -> Iterator[int]:
    """The port `app` answers on, served by uvicorn in a daemon thread (extra uvicorn.Config
    options in `config`); stopped on exit."""
    import uvicorn

    port = free_port()
    options = {"log_level": "warning", "lifespan": "on", **config}
    runner = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, **options))
    thread = threading.Thread(target=runner.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + start_s
        while not runner.started and time.monotonic() < deadline:
            time.sleep(0.05)
        assert runner.started, "uvicorn did not start"
        yield port
    finally:
        runner.should_exit = True
        thread.join(timeout=10)
