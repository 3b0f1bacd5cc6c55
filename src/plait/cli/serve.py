"""`plait serve BUNDLE`: the HTTP API (FastAPI + uvicorn) for one bundle; see plait.serving.app."""

from __future__ import annotations

from pathlib import Path

import typer


def serve_command(
    bundle: Path = typer.Argument(..., help="A bundle directory written by `plait train`."),
    host: str = typer.Option("127.0.0.1", help="Address to listen on (0.0.0.0: every interface)."),
    port: int = typer.Option(8000, help="Port to listen on."),
    workers: int = typer.Option(1, help="Worker processes; each loads its own copy of the model."),
    max_batch_size: int = typer.Option(16, help="Most records one model batch joins."),
    max_wait_ms: float = typer.Option(5.0, help="Most a busy server waits to fill a batch (ms)."),
    inference: str = typer.Option(
        "process",
        help="Where the model runs: 'process' (a child process with a core of its own, restarted if it "
        "dies) or 'thread' (inside the server process).",
    ),
    api_key_env: str = typer.Option(
        "PLAIT_API_KEY", help="Environment variable holding the API key; unset or empty: no auth."
    ),
    cors_origin: list[str] = typer.Option(
        [], "--cors-origin", help="An origin allowed by CORS (repeat for several); none: CORS off."
    ),
    required: list[str] = typer.Option(
        [], "--required", help="A field requests must include (repeat for several); 422 without it."
    ),
    max_body_mb: float = typer.Option(20.0, help="Largest request body (MiB)."),
    trust_modified: bool = typer.Option(
        False,
        "--trust-modified",
        help="Serve a bundle edited since it was written (its content no longer hashes to its model id): "
        "a warning instead of a refusal; answers carry the new content id.",
    ),
    set_: list[str] = typer.Option(
        [],
        "--set",
        help="Any other server setting as NAME=VALUE (repeat), e.g. --set max_text_chars=5000 "
        "--set breaker_fail_max=3 --set batch_timeout_s=30; see plait.serving.settings.ServeSettings.",
    ),
    runtime: str = typer.Option(
        "torch",
        help="What runs the model: 'torch', or 'onnx' — the bundle's export (`plait export BUNDLE --format "
        "onnx`) run by onnxruntime; the same API, without /v1/embed and ?impute=embedding.",
    ),
    onnx_folder: Path | None = typer.Option(
        None, help="With --runtime onnx: the export folder (default: BUNDLE.onnx beside the bundle)."
    ),
    int8: bool = typer.Option(
        False, "--int8", help="With --runtime onnx: serve model.int8.onnx (export it with --int8)."
    ),
    log_level: str = typer.Option("info", help="uvicorn log level."),
) -> None:
    """Serve predictions over HTTP: POST /v1/predict, /v1/predict/upload; GET /v1/info, /healthz,
    /readyz, /metrics; the API docs at /docs."""
    import json
    import os
    import shutil
    import tempfile

    import uvicorn

    from plait.serving.app import BUNDLE_ENV, SETTINGS_ENV, app_from_env, create_app
    from plait.serving.metrics import MULTIPROC_ENV
    from plait.serving.server import uvicorn_options
    from plait.serving.settings import MIB, ServeSettings, api_key_from_env, parse_overrides

    options = dict(
        host=host,
        port=port,
        workers=workers,
        max_batch_size=max_batch_size,
        max_wait_ms=max_wait_ms,
        inference=inference,
        max_body_bytes=round(max_body_mb * MIB),
        cors_origins=cors_origin,
        required_fields=required,
        trust_modified=trust_modified,
        runtime=runtime,
        onnx_folder=None if onnx_folder is None else str(onnx_folder.resolve()),
        onnx_int8=int8,
    )
    settings = ServeSettings.from_json(
        {**options, **parse_overrides(set_)}, api_key=api_key_from_env(api_key_env)
    )
    auth = f"API key from ${api_key_env}" if settings.api_key else "no API key"
    host, port, workers = settings.host, settings.port, settings.workers  # --set may have changed them
    where = "the model in its own process" if settings.inference == "process" else "the model in-process"
    where += f", {settings.runtime} runtime" + (" (int8)" if settings.onnx_int8 else "")
    typer.echo(
        f"plait serve: {bundle} on http://{host}:{port} ({workers} worker(s), {where}, batches of up to "
        f"{settings.max_batch_size}, {auth}); docs at /docs"
    )
    if workers == 1:
        app = create_app(bundle, settings)
        uvicorn.run(app, host=host, port=port, log_level=log_level, **uvicorn_options(settings))
        return
    # Several processes: uvicorn imports the app factory in each, so the bundle and the settings
    # travel in the environment (the API key stays in its own variable, named here).
    create_app(bundle, settings)  # fail here, once, on a bad bundle or setting rather than in N workers
    os.environ[BUNDLE_ENV] = str(bundle.resolve())
    os.environ[SETTINGS_ENV] = json.dumps({**settings.to_json(), "api_key_env": api_key_env})
    # One /metrics for the whole server: the workers share their values through files (see
    # plait.serving.metrics); a directory the user set is used as it is, and kept.
    made = None if os.environ.get(MULTIPROC_ENV) else tempfile.mkdtemp(prefix="plait-metrics-")
    if made is not None:
        os.environ[MULTIPROC_ENV] = made
    try:
        uvicorn.run(
            f"{app_from_env.__module__}:{app_from_env.__name__}",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_level=log_level,
            **uvicorn_options(settings),
        )
    finally:
        if made is not None:
            os.environ.pop(MULTIPROC_ENV, None)
            shutil.rmtree(made, ignore_errors=True)
