"""The HTTP API of `plait serve`: `create_app(bundle, settings)` builds a FastAPI app (no module-level
app). The lifespan starts the dynamic batcher and runs one warm-up prediction; /readyz answers 503
until both are done.

POST /v1/predict          JSON body: one record object → one prediction object; a list of records
                          or {"records": [...]} → {"model_id", "predictions": [...]} in order.
POST /v1/predict/upload   multipart form: a file per image/audio column, form values for the rest
                          → one prediction object.
POST /v1/embed            records as /v1/predict → each record's fields in the shared space
                          ({"embeddings": {field: [..] or null}, fields_used/imputed/missing}).
                          `?impute=embedding` (predict, upload, embed): a bundle with an imputer
                          synthesises the record's missing fields; they are listed in fields_imputed.
GET  /v1/info             fields (kind, columns, limits), task, classes, metrics and provenance summary
GET  /healthz /readyz     liveness; readiness (model loaded and warmed up)
GET  /metrics             Prometheus text exposition
GET  /docs /redoc         the API docs (Swagger UI, ReDoc), their assets served locally (docs.py)

A prediction object is the engine's `Served.to_json()` (prediction, probabilities, fields_used,
fields_missing, degraded, weights, model_id, temperature, fields: {name: {state, reason}}) plus
`latency_ms`. Every error is JSON `{"error": {"code", "message", "field"}}` and names no server
path. With an API key set, /v1/* and /metrics need header `X-API-Key: KEY` or `Authorization:
Bearer KEY`; the probes, `/` and the OpenAPI docs stay open.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
from fastapi import Depends, FastAPI, Query, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException

from plait.bundle import TrainedModel, load_bundle
from plait.errors import ConfigError
from plait.json_safe import finite
from plait.serving.batcher import Batcher, BatcherClosed
from plait.serving.body import parse_json_body
from plait.serving.docs import add_docs
from plait.serving.engine import Served, ServingEngine
from plait.serving.guard import FieldGuard
from plait.serving.info import server_info
from plait.serving.inputs import InputSchema, ParsedRecord, RequestError, parse_form
from plait.serving.metrics import CONTENT_TYPE, ServeMetrics
from plait.serving.middleware import BodyLimit, RequestMetrics, add_error_handlers, api_key_check
from plait.serving.onnx_engine import UNSUPPORTED
from plait.serving.page import PAGE_HTML
from plait.serving.process import EngineProcess, EngineStopped, GuardLimits
from plait.serving.runtime import RuntimeChoice, build_engine, check_export, runtime_choice
from plait.serving.schemas import openapi_patch
from plait.serving.settings import API_KEY_ENV, ServeSettings, api_key_from_env
from plait.serving.space_requests import asks_imputation, embedding_answer, space_fields

log = logging.getLogger(__name__)
EXPLAIN = Query(
    False,
    description="Add each used field's leave-one-out contribution to the answer (one more fusion + head "
    "run per field; off by default: it adds milliseconds to a single-record request).",
)
IMPUTE = Query(
    None,
    description="`embedding`: synthesise the record's missing fields of the shared space from the fields "
    "it has (a bundle trained with `space: {impute: true}`); they are listed in `fields_imputed`.",
)


@dataclass(frozen=True)
class Job:
    """One record's values and what its request asks beyond the prediction."""

    values: dict[str, Any]
    explain: bool = False
    impute: bool = False
    embed: bool = False


# A JSON body up to this size is parsed on the event loop; larger ones in a worker thread.
INLINE_BODY_BYTES = 256 * 1024
BUNDLE_ENV = "PLAIT_SERVE_BUNDLE"  # for `app_from_env`, the factory uvicorn workers import
SETTINGS_ENV = "PLAIT_SERVE_SETTINGS"  # JSON of ServeSettings.to_json() plus "api_key_env"


@dataclass
class _Server:
    """What the routes share; `engine` and `batcher` live from lifespan start to its end."""

    trained: TrainedModel
    settings: ServeSettings
    schema: InputSchema
    metrics: ServeMetrics
    given_engine: ServingEngine | None
    bundle_dir: Path | None  # None: served from a TrainedModel in memory
    runtime: RuntimeChoice  # what runs the model: torch, or the bundle's ONNX export
    report_html: str | None = None  # the bundle's report.html, read once, when it has one
    engine: ServingEngine | None = None
    batcher: Batcher[Job, Served] | None = None

    @property
    def ready(self) -> bool:
        return self.engine is not None and self.engine.ready and self.batcher is not None

    def breaker_states(self) -> dict[str, str]:
        return {} if self.engine is None else self.engine.breaker_states()

    def build_engine(self) -> ServingEngine:
        """The engine the settings ask for: in a child process (the default) or in this one."""
        s = self.settings
        if s.inference == "process":
            assert self.bundle_dir is not None  # create_app refuses otherwise
            limits = GuardLimits(s.breaker_fail_max, s.breaker_reset_timeout_s, s.field_timeout_s)
            # torch threads per model process: this worker's share of the cores, less its own one
            threads = max(1, (os.cpu_count() or 1) // s.workers - 1)
            return EngineProcess(
                self.bundle_dir,
                limits,
                threads=threads,
                call_timeout_s=s.batch_timeout_s,
                decode_budget_s=s.max_batch_decode_s,
                trust_modified=s.trust_modified,
                runtime=self.runtime,
            )
        guard = FieldGuard(
            list(self.trained.modalities),
            fail_max=s.breaker_fail_max,
            reset_timeout_s=s.breaker_reset_timeout_s,
            timeout_s=s.field_timeout_s,
        )
        return build_engine(self.trained, self.runtime, guard=guard, decode_budget_s=s.max_batch_decode_s)


def create_app(
    bundle: Path | str | TrainedModel,
    settings: ServeSettings | None = None,
    *,
    engine: ServingEngine | None = None,
) -> FastAPI:
    """The app for one bundle. `engine`: use this engine (its owner closes it) instead of building one."""
    settings = settings if settings is not None else ServeSettings()
    in_memory = isinstance(bundle, TrainedModel)
    if in_memory and engine is None and settings.inference == "process":
        raise ConfigError(
            "serve.inference='process' loads the bundle again in a child process, so it needs the "
            "bundle's directory, not a model in memory: pass the path, or ServeSettings(inference='thread')"
        )
    trained = (
        bundle
        if isinstance(bundle, TrainedModel)
        else load_bundle(bundle, trust_modified=settings.trust_modified)
    )
    bundle_dir = None if isinstance(bundle, TrainedModel) else Path(bundle)
    runtime = runtime_choice(settings, bundle_dir)
    if engine is None:
        check_export(trained, runtime)  # here, once, rather than in the model process
    metrics = ServeMetrics()
    report = None if bundle_dir is None else bundle_dir / "report.html"
    state = _Server(
        trained, settings, InputSchema.build(trained, settings), metrics, engine, bundle_dir, runtime
    )
    state.report_html = (
        report.read_text(encoding="utf-8") if report is not None and report.is_file() else None
    )
    metrics.states = state.breaker_states  # breaker gauges are read at scrape time

    app = FastAPI(
        title="plait serve",
        version=trained.model_id or "0",
        description=f"Predictions of plait model {trained.model_id} ({trained.task.type} of "
        f"'{trained.task.label}'). Records may hold any subset of the fields.",
        lifespan=_lifespan(state),
        docs_url=None,  # add_docs serves /docs and /redoc with local assets, not a CDN's
        redoc_url=None,
    )
    app.state.plait = state  # what the routes share: the engine, the batcher, the metrics
    add_error_handlers(app)
    _add_routes(app, state)
    add_docs(app)
    app.add_middleware(
        BodyLimit,
        max_body_bytes=settings.max_body_bytes,
        api_key=settings.api_key,
        body_timeout_s=settings.body_timeout_s,
    )
    app.add_middleware(RequestMetrics, metrics=state.metrics)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST"],
            allow_headers=["Content-Type", "X-API-Key", "Authorization"],
        )
    app.openapi = _openapi(app, state)  # type: ignore[method-assign]
    return app


def app_from_env() -> FastAPI:
    """`create_app` from PLAIT_SERVE_BUNDLE and PLAIT_SERVE_SETTINGS: what each uvicorn worker
    process runs (`uvicorn.run("plait.serving.app:app_from_env", factory=True, workers=N)`)."""
    bundle = os.environ.get(BUNDLE_ENV)
    if not bundle:
        raise ConfigError(f"{BUNDLE_ENV} is not set: it must name the bundle directory to serve")
    try:
        raw = json.loads(os.environ.get(SETTINGS_ENV) or "{}")
    except ValueError as exc:
        raise ConfigError(f"{SETTINGS_ENV} is not JSON ({exc}); `plait serve` writes it") from None
    key_env = str(raw.pop("api_key_env", API_KEY_ENV))
    return create_app(Path(bundle), ServeSettings.from_json(raw, api_key=api_key_from_env(key_env)))


def _lifespan(state: _Server) -> Callable[[FastAPI], Any]:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        s = state.settings
        engine = state.given_engine
        if engine is None:
            engine = await anyio.to_thread.run_sync(state.build_engine)  # a child process: seconds
        run = engine.predict

        def predict_jobs(jobs: list[Job]) -> list[Served]:
            return run(
                [j.values for j in jobs],
                explain=[j.explain for j in jobs],
                impute=[j.impute for j in jobs],
                embed=[j.embed for j in jobs],
            )

        batcher: Batcher[Job, Served] = Batcher(
            predict_jobs,
            max_batch_size=s.max_batch_size,
            max_wait_ms=s.max_wait_ms,
            workers=s.inference_threads,
            on_batch=state.metrics.observe_batch,
        )
        await batcher.start()
        state.engine = engine
        try:
            await anyio.to_thread.run_sync(engine.warm_up)
            state.batcher = batcher
            yield
        finally:
            state.batcher = None
            await batcher.close(timeout_s=30.0)
            state.engine = None
            if state.given_engine is None:
                engine.close()
            state.metrics.close()

    return lifespan


# ---- routes --------------------------------------------------------------------------------------


def _add_routes(app: FastAPI, state: _Server) -> None:
    guarded = [Depends(api_key_check(state.settings.api_key))] if state.settings.api_key else []
    errors: dict[int | str, dict[str, Any]] = {
        400: {"description": "Malformed body"},
        413: {"description": "Body over max_body_bytes"},
        422: {"description": "Unknown field, wrong value type, text over its limit, required field"},
    }
    if guarded:
        errors[401] = {"description": "Missing or wrong API key"}

    @app.post("/v1/predict", dependencies=guarded, summary="Predict one record or a list", responses=errors)
    async def predict(request: Request, explain: bool = EXPLAIN, impute: str | None = IMPUTE) -> JSONResponse:
        started = time.perf_counter()
        imputes = _asks_imputation(state, impute)
        single, records = await _json_records(request, state)
        results = await _predict(state, records, started, single, explain, imputes)
        if single:
            return JSONResponse(results[0])
        return JSONResponse({"model_id": state.trained.model_id, "predictions": results})

    @app.post(
        "/v1/embed",
        dependencies=guarded,
        summary="Embed one record or a list in the shared space",
        responses=errors,
    )
    async def embed(
        request: Request,
        field: list[str] | None = Query(
            None, description="Only these fields (repeatable); default: every field in the space."
        ),
        impute: str | None = IMPUTE,
    ) -> JSONResponse:
        started = time.perf_counter()
        _require_space_runtime(state, "POST /v1/embed")
        fields = space_fields(state.trained, field)
        imputes = _asks_imputation(state, impute)
        single, records = await _json_records(request, state)
        results = await _predict(state, records, started, single, False, imputes, fields)
        if single:
            return JSONResponse(results[0])
        return JSONResponse({"model_id": state.trained.model_id, "embeddings": results})

    @app.post(
        "/v1/predict/upload", dependencies=guarded, summary="Predict one record from a form", responses=errors
    )
    async def predict_upload(
        request: Request, explain: bool = EXPLAIN, impute: str | None = IMPUTE
    ) -> JSONResponse:
        started = time.perf_counter()
        imputes = _asks_imputation(state, impute)
        content_type = request.headers.get("content-type", "").lower()
        if not content_type.startswith(("multipart/form-data", "application/x-www-form-urlencoded")):
            raise RequestError(
                400, "bad_request", "expected a multipart/form-data body (a file per media field)"
            )
        items: list[tuple[str, str | bytes]] = []
        async with request.form(max_files=64, max_fields=1000) as form:
            for key, value in form.multi_items():
                if isinstance(value, UploadFile):
                    items.append((key, await value.read(state.settings.max_file_bytes + 1)))
                else:
                    items.append((key, value))
        if not items:
            raise RequestError(
                400, "bad_request", "the form has no parts: send one part per field (files for media)"
            )
        record = await run_in_threadpool(parse_form, items, state.schema)
        results = await _predict(state, [record], started, True, explain, imputes)
        return JSONResponse(results[0])

    @app.get("/v1/info", dependencies=guarded, summary="The model, its fields and the server's limits")
    async def info() -> JSONResponse:
        return JSONResponse(
            finite(
                server_info(
                    state.trained,
                    state.settings,
                    state.schema,
                    breakers=state.breaker_states(),
                    restarts=getattr(state.engine, "restarts", 0),
                    report=state.report_html is not None,
                    runtime=state.runtime.info(),
                )
            )
        )

    @app.get("/healthz", summary="Liveness: the process answers")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", summary="Readiness: model loaded and warmed up", responses={503: {}})
    async def readyz() -> JSONResponse:
        if not state.ready:
            raise RequestError(503, "not_ready", "the model is loading or warming up; retry shortly")
        return JSONResponse({"status": "ready", "model_id": state.trained.model_id})

    @app.get("/metrics", dependencies=guarded, summary="Prometheus metrics", response_class=Response)
    async def metrics() -> Response:
        return Response(state.metrics.exposition(), media_type=CONTENT_TYPE)

    @app.get("/", include_in_schema=False)
    async def index() -> HTMLResponse:
        return HTMLResponse(PAGE_HTML)

    @app.get("/report", include_in_schema=False, dependencies=guarded)
    async def report() -> Response:
        """The bundle's evaluation report (self-contained HTML), when it has one; guarded like /v1:
        it names training rows and data paths."""
        if state.report_html is None:
            raise StarletteHTTPException(404, "this bundle has no report.html; `plait train` writes one")
        return HTMLResponse(state.report_html)


def _asks_imputation(state: _Server, impute: str | None) -> bool:
    """`?impute=` checked against the bundle (`asks_imputation`) and the runtime."""
    asked = asks_imputation(state.trained, impute)
    if asked:
        _require_space_runtime(state, "impute=embedding")
    return asked


def _require_space_runtime(state: _Server, what: str) -> None:
    """The shared space runs on torch only: under another runtime, 422 that says so."""
    if not state.runtime.info()["embed"]:
        raise RequestError(
            422,
            "unsupported_by_runtime",
            f"{what}: {UNSUPPORTED} (this server runs '{state.runtime.name}')",
            None,
        )


async def _json_records(request: Request, state: _Server) -> tuple[bool, list[ParsedRecord]]:
    body = await request.body()
    if len(body) <= INLINE_BODY_BYTES:  # parsing it costs less than a hop to a thread and back
        return parse_json_body(body, state.schema, state.settings)
    return await run_in_threadpool(parse_json_body, body, state.schema, state.settings)


async def _predict(
    state: _Server,
    records: list[ParsedRecord],
    started: float,
    single: bool,
    explain: bool = False,
    impute: bool = False,
    embed: tuple[str, ...] | None = None,
) -> list[dict[str, Any]]:
    """Each record's answer (a prediction; with `embed`, its embeddings of those fields instead)."""
    if embed is None and not state.trained.task.predicts:
        raise RequestError(
            422,
            "bad_request",
            "this model was trained without labels (a shared space only): it predicts nothing; "
            "use POST /v1/embed",
            None,
        )
    batcher = state.batcher
    if batcher is None:
        raise RequestError(503, "not_ready", "the server is starting or shutting down; retry shortly")
    try:
        jobs = [Job(r.values, explain, impute, embed is not None) for r in records]
        served = await batcher.submit(jobs)
    except BatcherClosed:
        raise RequestError(
            503, "not_ready", "the server is shutting down; retry on another instance"
        ) from None
    except EngineStopped as exc:  # the model's process died with this batch; a new one is starting
        raise RequestError(503, "engine_restarting", str(exc)) from None  # no path in it: see _died
    latency_ms = round((time.perf_counter() - started) * 1000.0, 3)
    out = []
    for i, one in enumerate(served):
        _check_required(state.schema, one, None if single else i)
        state.metrics.observe_fields(one.fields)
        answer = one.to_json() if embed is None else embedding_answer(one, embed)
        out.append(finite({**answer, "latency_ms": latency_ms}))
    return out


def _check_required(schema: InputSchema, served: Served, index: int | None) -> None:
    """A required field the engine could not use: 422 when the client's value was the problem
    (missing, undecodable, too large), 503 when the server was (breaker open, encoder timed out or
    failed) — the client cannot fix that, only retry."""
    required = {f.name for f in schema.fields if f.required}
    for status in served.fields:
        if status.field in required and status.state != "used":
            where = "record" if index is None else f"records[{index}]"
            if status.state == "skipped" or status.reason.startswith("encoder"):
                raise RequestError(
                    503,
                    "field_unavailable",
                    f"{where}: required field '{status.field}' is unavailable on this server right now "
                    f"({status.reason}); retry shortly",
                    status.field,
                )
            raise RequestError(
                422,
                "required_field",
                f"{where}: field '{status.field}' is required by this server and was {status.state}: "
                f"{status.reason}",
                status.field,
            )


def _openapi(app: FastAPI, state: _Server) -> Callable[[], dict[str, Any]]:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title, version=app.version, description=app.description, routes=app.routes
            )
            openapi_patch(schema, state.schema)
            app.openapi_schema = schema
        return app.openapi_schema

    return openapi
