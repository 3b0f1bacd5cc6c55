"""The web page at `/` in a real browser (Playwright driving Debian's Chromium) against a real
uvicorn server on loopback: fill the form from a table row, leave one field out, submit, and see
the prediction, probability bars and the degraded badge. A screenshot lands in artifacts/.

Needs `apt-get install -y chromium` (make test does it as root); never `playwright install`."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from typing import Any

import pytest
from loopback import serve_in_thread

from chromium import ARGS, ARTIFACTS, CHROMIUM, MARKS
from plait.data.table import read_table
from plait.serving.app import create_app
from plait.serving.settings import ServeSettings

sync_api = pytest.importorskip("playwright.sync_api")

pytestmark = MARKS


@pytest.fixture(scope="module")
def server(pumps_bundle: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`plait serve`'s app under uvicorn in a thread, on a free loopback port, for a copy of the
    bundle that has a report.html."""
    bundle = tmp_path_factory.mktemp("served") / "bundle"
    shutil.copytree(pumps_bundle.bundle_path, bundle)
    (bundle / "report.html").write_text("<!DOCTYPE html><title>report</title><h1>the report</h1>")
    app = create_app(bundle, ServeSettings(api_key=None))
    with serve_in_thread(app) as port:
        yield f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def row(pumps_small: Any) -> dict[str, Any]:
    corrupt = {i for ids in pumps_small.corrupted.values() for i in ids}
    return next(r for r in read_table(pumps_small.table_path).to_dicts() if r["inspection_id"] not in corrupt)


def test_the_form_predicts_without_a_left_out_field(
    server: str, row: dict[str, Any], pumps_small: Any
) -> None:
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        page = browser.new_page(viewport={"width": 1366, "height": 900})
        errors: list[str] = []
        outside: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on(
            "request",
            lambda r: None if r.url.startswith((server, "blob:", "data:")) else outside.append(r.url),
        )
        page.goto(server + "/")
        page.wait_for_selector('[data-field="thermal"] input[type=file]')

        fields = {f["name"]: f for f in page.evaluate("fetch('/v1/info').then(r => r.json())")["fields"]}
        assert set(fields) == {"vibration", "sound", "thermal", "note", "specs"}
        page.set_input_files(
            '[data-field="thermal"] input[type=file]', str(pumps_small.root / row["thermal"])
        )
        page.set_input_files('[data-field="sound"] input[type=file]', str(pumps_small.root / row["sound"]))
        page.wait_for_selector('[data-field="thermal"] .preview img')  # the preview shows the picked image
        page.fill('[data-field="vibration"] textarea', json.dumps(row["vibration"]))
        page.fill('[data-field="note"] textarea', row["note"])
        for column in fields["specs"]["columns"]:
            page.fill(f'[data-field="specs"] input[data-column="{column}"]', str(row[column]))
        page.check('[data-field="note"] [data-leave]')  # leave the note out
        page.click("#submit")
        page.wait_for_selector("#result:not([hidden])")

        prediction = page.inner_text("#prediction")
        classes = page.evaluate("fetch('/v1/info').then(r => r.json())")["classes"]
        assert prediction in classes
        assert page.locator("#probs .bar").count() == len(classes)
        total = sum(float(t.replace("%", "")) for t in page.locator("#probs .num").all_inner_texts())
        assert total == pytest.approx(100.0, abs=0.5)
        badge = page.locator("#badge")
        assert badge.get_attribute("data-degraded") == "true" and "note" in badge.inner_text()
        states = {
            r.locator("td").nth(0).inner_text(): r.get_attribute("data-field-state")
            for r in page.locator("#field-rows tr").all()
        }
        assert states == {
            "vibration": "used",
            "sound": "used",
            "thermal": "used",
            "note": "missing",
            "specs": "used",
        }
        parts = {
            c.get_attribute("data-contribution"): c.inner_text()
            for c in page.locator("[data-contribution]").all()
        }
        assert set(parts) == set(fields) and parts["note"] == "" and parts["thermal"].endswith(" pts")
        assert page.locator("#report-link").is_visible()  # the bundle has a report.html
        assert "the report" in page.request.get(server + "/report").text()

        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "serve-page.png"), full_page=True)
        assert errors == [] and outside == [], (errors, outside)

        page.uncheck('[data-field="note"] [data-leave]')  # everything in: not degraded
        page.click("#submit")
        page.wait_for_function("document.getElementById('badge').dataset.degraded === 'false'")
        assert "all fields used" in page.inner_text("#badge")
        browser.close()
