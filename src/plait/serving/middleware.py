"""Cross-cutting HTTP concerns of the serving app: the JSON error shape and its handlers, the API
key check (constant-time), the body size limit and the request metrics (pure ASGI middleware).

Every error is `{"error": {"code", "message", "field"}}`; the body limit answers 413 from the
Content-Length header before reading and again while reading a body sent without one, and 408 (and
closes the connection) when the body has not arrived within `body_timeout_s`. A request whose client
went away before its answer is counted with status 499 (nginx's "client closed request"), not 500.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from fastapi import FastAPI, Request, Security
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException as StarletteHTTPException

from plait.serving.inputs import RequestError
from plait.serving.metrics import ServeMetrics

log = logging.getLogger(__name__)

ENDPOINTS = frozenset(
    {
        "/",
        "/v1/predict",
        "/report",
        "/v1/predict/upload",
        "/v1/info",
        "/healthz",
        "/readyz",
        "/metrics",
        "/docs",
        "/openapi.json",
    }
)
ABORTED_STATUS = 499  # the client closed the connection before its answer (nginx's code)
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
ASGIApp = Callable[
    [Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]], Awaitable[None]
]

# ---- auth and errors -----------------------------------------------------------------------------

_KEY_HEADER = APIKeyHeader(name="X-API-Key", auto_error=False, description="The server's API key")
_BEARER = HTTPBearer(auto_error=False, description="The server's API key as a bearer token")


def api_key_check(expected: str) -> Callable[..., Awaitable[None]]:
    wanted = expected.encode("utf-8")

    async def check(
        key: str | None = Security(_KEY_HEADER),
        bearer: HTTPAuthorizationCredentials | None = Security(_BEARER),
    ) -> None:
        given = key if key is not None else (bearer.credentials if bearer is not None else None)
        if given is None:
            raise RequestError(
                401, "unauthorized", "an API key is required: send header X-API-Key or Authorization: Bearer"
            )
        if not hmac.compare_digest(given.encode("utf-8", "surrogateescape"), wanted):
            raise RequestError(401, "unauthorized", "the API key is not valid")

    return check


def error_response(status: int, code: str, message: str, field: str | None = None) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    body = {"error": {"code": code, "message": message, "field": field}}
    return JSONResponse(body, status_code=status, headers=headers)


def add_error_handlers(app: FastAPI) -> None:
    codes = {
        400: "bad_request",
        401: "unauthorized",
        404: "not_found",
        405: "method_not_allowed",
        413: "too_large",
    }

    @app.exception_handler(RequestError)
    async def request_error(request: Request, exc: RequestError) -> JSONResponse:
        return error_response(exc.status, exc.code, exc.message, exc.field)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = codes.get(exc.status_code, "http_error")
        return error_response(exc.status_code, code, str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        message = f"{where}: {first.get('msg', 'invalid request')}"
        return error_response(422, "invalid_value", message, where or None)

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> JSONResponse:
        log.exception("internal error on %s %s", request.method, request.url.path)
        return error_response(500, "internal_error", "internal error; the server log has the details")


# ---- middleware ----------------------------------------------------------------------------------


class BodyLimit:
    """413 for a body over `max_body_bytes`: from Content-Length before reading, and while reading a
    body sent without one (chunked). The body is read here and replayed to the app. With an API key
    set, a request without the right key is refused (401) BEFORE its body is read, so clients without
    a key cannot make the server hold bodies in memory."""

    def __init__(
        self, app: ASGIApp, max_body_bytes: int, api_key: str | None = None, body_timeout_s: float = 30.0
    ) -> None:
        self.app = app
        self.limit = max_body_bytes
        self.key = None if not api_key else api_key.encode("utf-8")
        self.timeout_s = body_timeout_s

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        if self.key is not None and not self._authorised(scope):
            await error_response(
                401, "unauthorized", "an API key is required and this one is missing or wrong"
            )(scope, receive, send)
            return
        declared = _header(scope, b"content-length")
        if declared is not None and (
            not (declared.isascii() and declared.isdigit()) or int(declared) > self.limit
        ):
            await self._reject(scope, receive, send, declared)
            return
        chunks: list[bytes] = []
        size = 0
        deadline = time.monotonic() + self.timeout_s
        while True:
            try:  # a slow or stalled client may not hold the connection (and its buffer) open
                message = await asyncio.wait_for(receive(), max(0.0, deadline - time.monotonic()))
            except TimeoutError:
                await self._timed_out(scope, receive, send, size)
                return
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                await self._reject(scope, receive, send, None)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": b"".join(chunks), "more_body": False}

        await self.app(scope, replay, send)

    def _authorised(self, scope: Scope) -> bool:
        given = _header(scope, b"x-api-key")
        if given is None:
            auth = _header(scope, b"authorization") or ""
            given = auth[7:] if auth[:7].lower() == "bearer " else None
        return given is not None and hmac.compare_digest(
            given.encode("utf-8", "surrogateescape"), self.key or b""
        )

    async def _timed_out(self, scope: Scope, receive: Any, send: Any, size: int) -> None:
        response = error_response(
            408,
            "request_timeout",
            f"the request body did not arrive within {self.timeout_s:g} s (body_timeout_s; {size} bytes "
            "came); send it at once",
        )
        response.headers["Connection"] = "close"  # uvicorn closes the connection after this answer
        await response(scope, receive, send)

    async def _reject(self, scope: Scope, receive: Any, send: Any, declared: str | None) -> None:
        if declared is not None and not (declared.isascii() and declared.isdigit()):
            message = f"Content-Length {declared[:40]!r} is not a byte count"
            response = error_response(400, "bad_request", message)
        else:
            size = f"{declared} bytes" if declared is not None else "the streamed body"
            response = error_response(
                413,
                "too_large",
                f"the request body ({size}) is over the limit of {self.limit} bytes (max_body_bytes); "
                "send fewer records per request or smaller media",
            )
        await response(scope, receive, send)


class RequestMetrics:
    """Counts every HTTP response by endpoint and status, and times it. A request whose client
    disconnected before a complete answer (an aborted upload) counts as ABORTED_STATUS."""

    def __init__(self, app: ASGIApp, metrics: ServeMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        endpoint = path if path in ENDPOINTS else "other"
        started = time.perf_counter()
        status = 500
        answered = disconnected = False

        async def receive_watched() -> Message:
            nonlocal disconnected
            message: Message = await receive()
            if message["type"] == "http.disconnect" and not answered:
                disconnected = True
            return message

        async def send_status(message: Message) -> None:
            nonlocal status, answered
            if message["type"] == "http.response.start":
                status = int(message["status"])
            elif message["type"] == "http.response.body" and not message.get("more_body", False):
                answered = True
            await send(message)

        try:
            await self.app(scope, receive_watched, send_status)
        finally:
            if disconnected and not answered:  # the client left: nobody got the 500 of its ClientDisconnect
                status = ABORTED_STATUS
            self.metrics.observe_request(endpoint, status, time.perf_counter() - started)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return bytes(value).decode("latin-1").strip()
    return None
