"""The evaluation report in a real browser (Playwright driving Debian's Chromium): no request leaves
the file, no console error, every chart is drawn with a size, nothing overflows a laptop screen.
Screenshots land in artifacts/ for a person to look at.

Needs `apt-get install -y chromium` (make test does it as root); never `playwright install`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chromium import ARGS, ARTIFACTS, CHROMIUM, MARKS
from plait.evaluation.result import EvaluationReport
from plait.report import render_report
from report_samples import classification_report_data, expected_plot_count, regression_report_data

sync_api = pytest.importorskip("playwright.sync_api")

pytestmark = MARKS


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as p:
        launched = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield launched
        launched.close()


def _check_page(browser: Any, data: dict[str, Any] | EvaluationReport, tmp_path: Path, shot: str) -> None:
    page_file = tmp_path / "report.html"
    report = data if isinstance(data, EvaluationReport) else EvaluationReport.from_json(data)
    page_file.write_text(render_report(report), encoding="utf-8")
    page = browser.new_page(viewport={"width": 1366, "height": 768})
    blocked: list[str] = []
    errors: list[str] = []

    def route(r: Any) -> None:
        if r.request.url.startswith("file://"):
            r.continue_()
        else:
            blocked.append(r.request.url)
            r.abort()

    page.route("**/*", route)
    page.on("console", lambda m: errors.append(f"console: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(f"pageerror: {e}"))
    page.goto(page_file.as_uri())
    page.wait_for_load_state("load")

    plots = page.locator("svg.plot")
    count = plots.count()
    assert count == expected_plot_count(report.to_json())
    for i in range(count):
        plot = plots.nth(i)
        plot.scroll_into_view_if_needed()
        assert plot.is_visible(), f"svg.plot #{i} ({plot.get_attribute('aria-label')}) is not visible"
        box = plot.bounding_box()
        assert box is not None and box["width"] > 50 and box["height"] > 50, (i, box)
        assert box["x"] >= 0 and box["x"] + box["width"] <= 1366, (i, box)

    scroll_width = page.evaluate("document.scrollingElement.scrollWidth")
    inner_width = page.evaluate("window.innerWidth")
    assert scroll_width <= inner_width, f"horizontal overflow: {scroll_width} > {inner_width}"
    headings = page.locator("section h2").all_inner_texts()
    assert len(headings) == 6 and headings[0] == "Headline"

    ARTIFACTS.mkdir(exist_ok=True)
    target = ARTIFACTS / shot
    page.screenshot(path=str(target), full_page=True)
    print(f"screenshot: {target}")
    assert target.stat().st_size > 10_000
    assert blocked == [], f"the page tried to load: {blocked}"
    assert errors == [], f"console errors: {errors}"
    page.close()


def test_classification_report_in_chromium(browser: Any, tmp_path: Path) -> None:
    _check_page(browser, classification_report_data(), tmp_path, "report.png")


def test_regression_report_in_chromium(browser: Any, tmp_path: Path) -> None:
    _check_page(browser, regression_report_data(), tmp_path, "report-regression.png")


def test_narrow_screen_has_no_horizontal_overflow(browser: Any, tmp_path: Path) -> None:
    page_file = tmp_path / "report.html"
    page_file.write_text(
        render_report(EvaluationReport.from_json(classification_report_data())), encoding="utf-8"
    )
    page = browser.new_page(viewport={"width": 480, "height": 800})
    page.goto(page_file.as_uri())
    widths = page.evaluate("[document.scrollingElement.scrollWidth, window.innerWidth]")
    assert widths[0] <= widths[1], f"horizontal overflow at 480 px: {widths}"
    page.close()


def test_a_real_models_report_in_chromium(
    browser: Any, tmp_path: Path, pumps_small: Any, pumps_bundle: Any
) -> None:
    """The page of a trained model's evaluation (five fields of every kind), not a hand-made sample."""
    from plait.workflow.evaluate import evaluate_report

    data = evaluate_report(pumps_bundle.trained, pumps_small.table_path).data
    _check_page(browser, data, tmp_path, "report-pumps.png")
