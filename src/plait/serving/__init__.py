"""`plait serve`: the HTTP API for one bundle — the only package that imports FastAPI.

    from plait.serving import ServeSettings, create_app
    app = create_app("bundle/", ServeSettings(api_key="s3cret"))   # run with uvicorn

app.py       create_app: routes, JSON errors, API key, CORS, body limit, lifespan
body.py      a JSON body (one record, a list, {"records": [...]}) → parsed records
info.py      what GET /v1/info tells a client
settings.py  ServeSettings: host, port, batching, limits, auth, breakers
inputs.py    request records → engine records: columns, base64, sniffing, limits, no URLs or paths
schemas.py   the OpenAPI models of the request shapes and responses
metrics.py   Prometheus metrics in the app's own registry
engine.py    predictions for a batch with every field's encoder behind a circuit breaker (guard.py)
loader.py    one record's values → its fields' tensors (decoding; failures stay with the record)
process.py   the engine in a child process of its own, replaced when it dies or stops answering
batcher.py   dynamic batching off the event loop

Imports are lazy: `import plait.serving.engine` does not import FastAPI.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from plait.serving.app import create_app
    from plait.serving.settings import ServeSettings

__all__ = ["ServeSettings", "create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from plait.serving.app import create_app

        return create_app
    if name == "ServeSettings":
        from plait.serving.settings import ServeSettings

        return ServeSettings
    raise AttributeError(f"module 'plait.serving' has no attribute '{name}'")
