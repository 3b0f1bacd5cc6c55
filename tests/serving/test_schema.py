"""Property-based tests of the HTTP API from its own OpenAPI schema (schemathesis): whatever a
client sends to POST /v1/predict, /v1/predict/upload, /v1/embed or the GET endpoints — bodies that follow the
schema and bodies that break it — the server never answers with a 5xx."""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from plait.bundle import load_bundle
from plait.serving.app import create_app
from plait.serving.settings import ServeSettings

# (path, method, examples per generation mode): the predict routes get most of the budget.
OPERATIONS = [
    ("/v1/predict", "POST", 40),
    ("/v1/predict/upload", "POST", 15),
    ("/v1/embed", "POST", 10),  # this bundle has no shared space: a 422 whatever comes, never a 5xx
    ("/v1/info", "GET", 3),
    ("/healthz", "GET", 3),
    ("/readyz", "GET", 3),
    ("/metrics", "GET", 3),
]


@pytest.fixture(scope="module")
def api_schema(pumps_bundle: Any) -> Any:
    app = create_app(
        load_bundle(pumps_bundle.bundle_path),
        ServeSettings(api_key=None, max_text_chars=500, inference="thread"),
    )
    # schemathesis starts the app's lifespan (batcher + warm-up) with its first request
    return schemathesis.openapi.from_asgi("/openapi.json", app)


def test_the_schema_documents_every_operation(api_schema: Any) -> None:
    found = {(op.ok().path, op.ok().method.upper()) for op in api_schema.get_all_operations()}
    assert found == {(path, method) for path, method, _ in OPERATIONS}


# Negative cases (bodies that break the schema) exist only where there is a body to break.
CASES = [
    pytest.param(path, method, examples, mode, id=f"{method} {path} {mode.value}")
    for path, method, examples in OPERATIONS
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    if method == "POST" or mode == GenerationMode.POSITIVE
]


@pytest.mark.parametrize(("path", "method", "examples", "mode"), CASES)
def test_no_server_errors(
    api_schema: Any, path: str, method: str, examples: int, mode: GenerationMode
) -> None:
    operation = api_schema[path][method]
    seen: list[int] = []

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=examples, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    def check(case: Any) -> None:
        response = case.call()
        seen.append(response.status_code)
        case.validate_response(response, checks=[not_a_server_error])

    check()
    assert seen, "no case was generated"
