"""The API docs of `plait serve` (/docs: Swagger UI, /redoc: ReDoc) work with no internet: the pages
reference only this server's URLs, every asset they load is served here, and they are as open as
/openapi.json when an API key is set. In a real browser (Debian's Chromium, every request to another
host blocked) Swagger UI renders the operations and ReDoc the reference."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from loopback import serve_in_thread

from chromium import ARGS, ARTIFACTS, CHROMIUM, MARKS
from plait.bundle import load_bundle
from plait.serving.app import create_app
from plait.serving.docs import ASSETS, add_docs
from plait.serving.settings import ServeSettings

PAGES = ("/docs", "/redoc")
KINDS = {".js": "javascript", ".css": "text/css", ".png": "image/png"}
MIN_BYTES = {".js": 200_000, ".css": 50_000, ".png": 500}  # the real files are 1.5 MB, 180 kB, 5 kB


def bare_app() -> FastAPI:
    app = FastAPI(title="t", docs_url=None, redoc_url=None)

    @app.get("/ping")
    async def ping() -> dict[str, str]:
        return {"pong": "yes"}

    add_docs(app)
    return app


def referenced(html: str) -> list[str]:
    """Every URL a docs page loads: src, href and spec-url attributes and the schema URL given to
    Swagger UI."""
    return re.findall(r'(?:src|href|spec-url)="([^"]+)"', html) + re.findall(r"url: '([^']+)'", html)


@pytest.mark.parametrize("page", PAGES)
def test_the_docs_pages_reference_only_local_urls(page: str) -> None:
    response = TestClient(bare_app()).get(page)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["content-security-policy"] == "img-src 'self' data:"  # ReDoc's CDN logo
    html = response.text.lower()
    for outside in ("http://", "https://", "cdn", "jsdelivr", "unpkg", "googleapis"):
        assert outside not in html, f"{page} names {outside!r}"
    urls = referenced(response.text)
    assert "/openapi.json" in urls
    assert len(urls) >= 3  # the schema, the script, the favicon (and Swagger's CSS)
    assert all(u.startswith("/") and not u.startswith("//") for u in urls), urls


def test_every_asset_a_docs_page_loads_is_served_with_its_type() -> None:
    client = TestClient(bare_app())
    urls = {u for page in PAGES for u in referenced(client.get(page).text) if u != "/openapi.json"}
    assert {u.rsplit("/", 1)[1] for u in urls} == set(ASSETS)
    for url in sorted(urls):
        response = client.get(url)
        suffix = url[url.rindex(".") :]
        assert response.status_code == 200, url
        assert KINDS[suffix] in response.headers["content-type"], (url, response.headers["content-type"])
        assert len(response.content) >= MIN_BYTES[suffix], (url, len(response.content))
    assert client.get("/static/docs/nope.js").status_code == 404


def test_the_docs_follow_the_root_path_of_a_proxy() -> None:
    client = TestClient(bare_app(), root_path="/plait")
    for page in PAGES:
        urls = referenced(client.get(page).text)
        assert urls and all(u.startswith("/plait/") for u in urls), urls


def test_add_docs_refuses_an_app_that_serves_fastapis_own_docs() -> None:
    with pytest.raises(ValueError, match=r"docs_url=None, redoc_url=None"):
        add_docs(FastAPI())


def test_the_servers_docs_are_open_like_the_schema_with_an_api_key(pumps_bundle: Any) -> None:
    """No lifespan (no engine) is needed to serve the docs; the predict routes stay guarded."""
    app = create_app(load_bundle(pumps_bundle.bundle_path), ServeSettings(api_key="k", inference="thread"))
    client = TestClient(app)
    schema = client.get("/openapi.json")
    assert schema.status_code == 200
    for page in PAGES:
        response = client.get(page)
        assert response.status_code == 200, page
        for url in referenced(response.text):
            assert client.get(url).status_code == 200, url
    assert client.get("/v1/info").status_code == 401
    assert client.get("/v1/info", headers={"X-API-Key": "k"}).status_code == 200
    assert "/docs" not in schema.json()["paths"] and "/redoc" not in schema.json()["paths"]


# ---- in a real browser, offline ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(pumps_bundle: Any) -> Iterator[str]:
    """`plait serve`'s app under uvicorn in a thread, on a free loopback port."""
    app = create_app(pumps_bundle.bundle_path, ServeSettings(api_key=None, inference="thread"))
    with serve_in_thread(app) as port:
        yield f"http://127.0.0.1:{port}"


@pytest.mark.parametrize(
    ("page", "rendered"),
    [
        pytest.param("/docs", ".opblock", id="swagger", marks=MARKS),
        pytest.param("/redoc", "[data-section-id^='operation/']", id="redoc", marks=MARKS),
    ],
)
def test_the_docs_render_in_a_browser_with_no_internet(server: str, page: str, rendered: str) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        tab = browser.new_page(viewport={"width": 1366, "height": 900})
        blocked: list[str] = []
        errors: list[str] = []

        def only_loopback(route: Any) -> None:
            url = route.request.url
            if url.startswith((server + "/", "data:", "blob:")):
                route.continue_()
            else:
                blocked.append(url)
                route.abort()

        tab.route("**/*", only_loopback)
        tab.on("pageerror", lambda e: errors.append(str(e)))
        tab.goto(server + page)
        tab.wait_for_selector(rendered, state="visible", timeout=30_000)
        operations = tab.locator(rendered).count()
        ARTIFACTS.mkdir(exist_ok=True)
        tab.screenshot(path=str(ARTIFACTS / f"docs{page.replace('/', '-')}.png"))
        browser.close()
    assert operations >= 6, f"{page}: {operations} operations rendered"  # predict, upload, info, probes, …
    assert blocked == [], f"{page} asked other hosts for {blocked}"
    assert errors == [], errors
