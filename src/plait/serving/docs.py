"""The OpenAPI docs of `plait serve` with no internet: Swagger UI at /docs and ReDoc at /redoc, their
JavaScript, CSS and favicon served by this app from the `fastapi-offline` package (Swagger UI 5,
ReDoc 2) under /static/docs/ instead of FastAPI's default CDN.

The app is built with `docs_url=None, redoc_url=None`; `add_docs(app)` adds the two pages and the
asset mount. Like /openapi.json they need no API key: they show only what the schema already shows.
"""

from __future__ import annotations

from importlib.util import find_spec
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

DOCS_URL = "/docs"
REDOC_URL = "/redoc"
STATIC_URL = "/static/docs"
ASSETS = ("swagger-ui-bundle.js", "swagger-ui.css", "redoc.standalone.js", "favicon.png")

# validatorUrl: None keeps Swagger UI from asking validator.swagger.io about the schema
_SWAGGER_PARAMETERS = {"validatorUrl": None}
# ReDoc 2 always shows Redocly's logo from cdn.redoc.ly (hidden when it fails to load): images from
# this server or inline only, so opening the docs never asks another host for anything
_IMAGES_FROM_HERE = {"Content-Security-Policy": "img-src 'self' data:"}


def assets_dir() -> Path:
    """The folder of the vendored Swagger UI and ReDoc files, found without importing the package."""
    spec = find_spec("fastapi_offline")
    folder = None if spec is None or spec.origin is None else Path(spec.origin).parent / "static"
    if folder is None or not all((folder / name).is_file() for name in ASSETS):
        raise RuntimeError(
            f"the API docs' assets ({', '.join(ASSETS)}) were not found in package fastapi-offline "
            f"(looked in {folder}); reinstall plait's dependencies: pip install 'fastapi-offline>=1.7'"
        )
    return folder


def add_docs(app: FastAPI) -> None:
    """Swagger UI at DOCS_URL, ReDoc at REDOC_URL and their assets at STATIC_URL, all local."""
    if app.docs_url is not None or app.redoc_url is not None:
        raise ValueError(
            f"add_docs serves {DOCS_URL} and {REDOC_URL} itself; build the app with "
            f"FastAPI(docs_url=None, redoc_url=None), got docs_url={app.docs_url!r}, "
            f"redoc_url={app.redoc_url!r}"
        )
    openapi_url = app.openapi_url or "/openapi.json"
    app.mount(STATIC_URL, StaticFiles(directory=assets_dir()), name="docs-assets")

    @app.get(DOCS_URL, include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = _root_path(request)
        page = get_swagger_ui_html(
            openapi_url=root + openapi_url,
            title=f"{app.title} — API",
            swagger_js_url=f"{root}{STATIC_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{STATIC_URL}/swagger-ui.css",
            swagger_favicon_url=f"{root}{STATIC_URL}/favicon.png",
            swagger_ui_parameters=_SWAGGER_PARAMETERS,
        )
        page.headers.update(_IMAGES_FROM_HERE)
        return page

    @app.get(REDOC_URL, include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = _root_path(request)
        page = get_redoc_html(
            openapi_url=root + openapi_url,
            title=f"{app.title} — ReDoc",
            redoc_js_url=f"{root}{STATIC_URL}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{STATIC_URL}/favicon.png",
            with_google_fonts=False,
        )
        page.headers.update(_IMAGES_FROM_HERE)
        return page


def _root_path(request: Request) -> str:
    """The prefix a reverse proxy serves the app under (uvicorn --root-path), as FastAPI's own
    docs use it."""
    return str(request.scope.get("root_path", "")).rstrip("/")
