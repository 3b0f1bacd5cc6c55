"""How `plait serve` runs uvicorn: `uvicorn.run(app, **uvicorn_options(settings))`.

uvicorn closes an idle keep-alive connection after `timeout_keep_alive`, but has no timeout for a
request's headers: a connection that sends part of a request line (or nothing) stays open as long
as the client likes, and 200 such sockets stayed open 40 s and more. `HeaderTimeoutProtocol`
(uvicorn's httptools protocol when httptools is installed, as uvicorn's "auto" picks, else its h11
one) closes a connection whose request headers have not all arrived `header_timeout_s` after it
opened or after its previous answer. The body has its own limit, in the app
(`BodyLimit`: 408 after `body_timeout_s`).

The timeout travels in an environment variable, so uvicorn's worker processes (`--workers N`),
which import the protocol class by name, read the same value.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

from plait.serving.settings import ServeSettings

HEADER_TIMEOUT_ENV = "PLAIT_SERVE_HEADER_TIMEOUT_S"
DEFAULT_HEADER_TIMEOUT_S = 10.0


def uvicorn_options(settings: ServeSettings) -> dict[str, Any]:
    """The keyword arguments of `uvicorn.run` that carry the server's timeouts. Sets
    PLAIT_SERVE_HEADER_TIMEOUT_S, which the protocol reads in each worker process."""
    os.environ[HEADER_TIMEOUT_ENV] = repr(float(settings.header_timeout_s))
    return {
        "http": f"{__name__}:HeaderTimeoutProtocol",
        "timeout_keep_alive": max(1, round(settings.keep_alive_s)),
    }


def header_timeout_s() -> float:
    try:
        value = float(os.environ.get(HEADER_TIMEOUT_ENV, DEFAULT_HEADER_TIMEOUT_S))
    except ValueError:
        return DEFAULT_HEADER_TIMEOUT_S
    return value if value > 0 else DEFAULT_HEADER_TIMEOUT_S


class _HeaderTimer:
    """Closes `transport` when the armed timer fires while no request is being answered."""

    def __init__(self, protocol: Any) -> None:
        self.protocol = protocol
        self.seconds = header_timeout_s()
        self._handle: asyncio.TimerHandle | None = None

    def arm(self) -> None:
        self.disarm()
        self._handle = self.protocol.loop.call_later(self.seconds, self._late)

    def disarm(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _late(self) -> None:
        self._handle = None
        cycle = self.protocol.cycle
        busy = cycle is not None and not cycle.response_complete
        if not busy and not self.protocol.transport.is_closing():
            self.protocol.transport.close()


class _HeaderTimeout:
    """What both protocols add: a header timer armed when a connection opens and after each
    answer, disarmed when the connection goes (each protocol disarms it when headers arrive)."""

    header_timer: _HeaderTimer
    transport: asyncio.Transport

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.header_timer = _HeaderTimer(self)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # type: ignore[misc]
        self.header_timer.arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self.header_timer.disarm()
        super().connection_lost(exc)  # type: ignore[misc]

    def on_response_complete(self) -> None:
        super().on_response_complete()  # type: ignore[misc]
        if not self.transport.is_closing():
            self.header_timer.arm()  # the next request's headers get the same time


class H11HeaderTimeout(_HeaderTimeout, H11Protocol):
    """uvicorn's h11 protocol, closing a connection whose request headers are late."""

    def handle_events(self) -> None:
        cycle = self.cycle
        super().handle_events()
        if self.cycle is not cycle:  # a request's headers arrived: its body has the app's own limit
            self.header_timer.disarm()


HeaderTimeoutProtocol: type[asyncio.Protocol] = H11HeaderTimeout

try:  # uvicorn's faster parser, when installed (what its "auto" picks)
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # pragma: no cover - httptools is optional
    pass
else:

    class HttpToolsHeaderTimeout(_HeaderTimeout, HttpToolsProtocol):
        """uvicorn's httptools protocol, closing a connection whose request headers are late."""

        def on_headers_complete(self) -> None:
            super().on_headers_complete()
            self.header_timer.disarm()  # the body has the app's own limit

    HeaderTimeoutProtocol = HttpToolsHeaderTimeout
