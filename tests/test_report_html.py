"""The evaluation report page (plait.report): every section, the right number of charts, escaping,
no external reference, balanced tags, and a sentence instead of a crash for missing data."""

from __future__ import annotations

import copy
import re
from html.parser import HTMLParser
from typing import Any

import pytest

from plait.errors import DataError
from plait.evaluation.result import EvaluationReport
from plait.report import render_report as render_page
from plait.report.svg import nice_ticks, num
from report_samples import classification_report_data, expected_plot_count, regression_report_data

HEADINGS = [
    "Headline",
    "Which fields matter (ablation)",
    "Robustness to missing and perturbed fields",
    "Calibration",
    "Confusion matrix",
    "Interpretation",
]
VOID = {"meta", "br", "hr", "img", "input", "link"}
NASTY = '<b>x</b>&"'


class Page(HTMLParser):
    """Parses a page strictly: every end tag must close the innermost open element."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.starts: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.h2: list[str] = []
        self._in_h2 = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.starts.append((tag, dict(attrs)))
        if tag not in VOID:
            self.stack.append(tag)
        self._in_h2 = tag == "h2"
        if self._in_h2:
            self.h2.append("")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.starts.append((tag, dict(attrs)))

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:]} at {self.getpos()}")
        else:
            self.stack.pop()
        self._in_h2 = False

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._in_h2:
            self.h2[-1] += data


def render_report(data: dict[str, Any]) -> str:
    """The page for a metrics.json dict, read as the file boundary reads it."""
    return render_page(EvaluationReport.from_json(data))


def parse(page: str) -> Page:
    parser = Page()
    parser.feed(page)
    parser.close()
    return parser


def renamed(value: Any, old: str, new: str) -> Any:
    """`value` with every string equal to `old` (dict keys included) replaced by `new`."""
    if isinstance(value, dict):
        return {renamed(k, old, new): renamed(v, old, new) for k, v in value.items()}
    if isinstance(value, list):
        return [renamed(v, old, new) for v in value]
    return new if value == old else value


@pytest.fixture(params=["classification", "regression"])
def sample(request: pytest.FixtureRequest) -> dict[str, Any]:
    return classification_report_data() if request.param == "classification" else regression_report_data()


def test_sample_renders_with_every_section_in_order(sample: dict[str, Any]) -> None:
    page = render_report(sample)
    parsed = parse(page)
    assert page.startswith("<!DOCTYPE html>")
    assert parsed.h2 == HEADINGS
    ids = [a["id"] for tag, a in parsed.starts if tag == "section"]
    assert ids == ["headline", "ablation", "robustness", "calibration", "confusion", "interpretation"]
    toc = [a["href"] for tag, a in parsed.starts if tag == "a"]
    assert toc == [f"#{i}" for i in ids]
    assert "<footer>plait 0.1.0 · created 2026-11-22T10:00:00+00:00" in page


def test_tags_balance_and_charts_are_accessible(sample: dict[str, Any]) -> None:
    parsed = parse(render_report(sample))
    assert parsed.errors == []
    assert parsed.stack == []
    svgs = [a for tag, a in parsed.starts if tag == "svg"]
    assert svgs, "no chart"
    for a in svgs:
        assert a["class"] == "plot" and a["role"] == "img" and a["aria-label"]
        w, h = float(a["width"] or 0), float(a["height"] or 0)
        # html.parser lowercases attribute names
        assert w > 0 and h > 0 and a["viewbox"] == f"0 0 {a['width']} {a['height']}"


def test_number_of_charts_follows_the_data() -> None:
    classification, regression = classification_report_data(), regression_report_data()
    # ablation + 5 fields + all fields + reliability + confusion + weights
    assert (
        render_report(classification).count('<svg class="plot"') == expected_plot_count(classification) == 10
    )
    # no reliability diagram, no confusion matrix
    assert render_report(regression).count('<svg class="plot"') == expected_plot_count(regression) == 8
    classification["interpretation"]["weights"] = None
    classification["robustness"]["curves"] = [
        c for c in classification["robustness"]["curves"] if c["field"] != "notes"
    ]
    assert (
        render_report(classification).count('<svg class="plot"') == expected_plot_count(classification) == 8
    )


def test_a_field_name_with_markup_is_escaped_everywhere(sample: dict[str, Any]) -> None:
    data = renamed(renamed(sample, "vibration", NASTY), "bearing", "<i>bearing</i>")
    page = render_report(data)
    assert "<b>x</b>" not in page and "<i>bearing</i>" not in page
    assert page.count("&lt;b&gt;x&lt;/b&gt;&amp;&quot;") >= 8
    parsed = parse(page)
    assert parsed.errors == []
    # the names change text only: the same elements in the same order as with plain names
    assert [tag for tag, _ in parsed.starts] == [tag for tag, _ in parse(render_report(sample)).starts]
    labels = [a.get("aria-label") or "" for tag, a in parsed.starts if tag == "svg"]
    assert any(NASTY in label for label in labels)  # the robustness chart of that field
    assert sum(NASTY in t for t in parsed.text) >= 8  # comes back as text, not markup


def test_no_external_reference_of_any_kind(sample: dict[str, Any]) -> None:
    page = render_report(sample)
    assert not re.search(r"https?://|//[a-z0-9.-]+\.[a-z]{2,}/", page, re.IGNORECASE)
    assert "<script" not in page and "<img" not in page and "<link" not in page
    assert "url(" not in page and "@import" not in page
    targets = re.findall(r"\b(?:src|href|xlink:href)\s*=\s*[\"']?([^\"' >]*)", page, re.IGNORECASE)
    assert targets and all(t.startswith("#") for t in targets), targets


def test_classification_figures_are_formatted() -> None:
    page = render_report(classification_report_data())
    assert "accuracy <b>0.963</b>, 95 % interval 0.937 – 0.981; higher is better." in page
    assert "ECE 0.082 → <b>0.018</b>" in page
    assert '<td class="text">sound+thermal+notes+specs</td>' in page
    assert "<b>bearing (0.97)</b>" in page  # confident field prediction in the inconsistency table
    assert "Effective robustness compares with the baseline model <code>9c1e77b20a4d5f13</code> (late" in page
    assert "retrained without" in page


def test_regression_report_says_what_does_not_apply() -> None:
    page = render_report(regression_report_data())
    assert "rmse <b>41.200</b> (in target units), 95 % interval 36.800 – 46.000; lower is better." in page
    assert "Regression: no calibration" in page
    assert "Regression: no confusion matrix." in page
    assert "Effective robustness: no baseline model was given" in page
    assert '<td class="text">455.2</td>' in page  # a field's numeric prediction, no confidence
    assert "retrained without" not in page
    assert "over all rows:" in page  # weights shown, by_class is empty


@pytest.mark.parametrize(
    ("key", "section", "sentence"),
    [
        ("headline", "headline", "The headline metric is not available"),
        ("ablation", "ablation", "The ablation is not available"),
        ("robustness", "robustness", "The robustness analysis is not available"),
        ("calibration", "calibration", "Calibration is not available"),
        ("confusion_matrix", "confusion", "The confusion matrix is not available"),
        ("interpretation", "interpretation", "The interpretation is not available"),
    ],
)
def test_a_missing_section_degrades_to_a_sentence(key: str, section: str, sentence: str) -> None:
    data = classification_report_data()
    del data[key]
    page = render_report(data)
    body = page.split(f'<section id="{section}">', 1)[1].split("</section>", 1)[0]
    assert sentence in body
    assert "<svg" not in body
    assert parse(page).errors == []


def test_minimal_and_partial_data_render() -> None:
    assert parse(render_report({})).h2 == HEADINGS
    data = classification_report_data()
    for key in ("timing", "fields", "task", "data", "metrics", "model_id"):
        del data[key]
    data["interpretation"] = {
        "weights": None,
        "inconsistencies": {"threshold": 0.8, "rate": 0.0, "rows": [], "rows_compared": 120},
    }
    data["robustness"]["effective_robustness"] = None
    page = render_report(data)
    assert "The gated fusion exposes no per-field weights." in page
    assert "No inconsistent row." in page
    assert "time not recorded" in page
    assert parse(page).errors == []


def test_a_malformed_section_names_the_file_section_and_key() -> None:
    data = classification_report_data()
    del data["ablation"]["metric"]
    with pytest.raises(DataError, match=r"eval/metrics\.json: the `ablation` section .*'metric'"):
        EvaluationReport.from_json(data, where="eval/metrics.json")
    with pytest.raises(DataError, match="expected a JSON object"):
        EvaluationReport.from_json([1, 2], where="eval/metrics.json")  # type: ignore[arg-type]


def test_single_field_model_shows_dashes_for_without() -> None:
    data = classification_report_data()
    data["fields"] = data["fields"][:1]
    only = data["ablation"]["fields"]["vibration"]
    data["ablation"]["fields"] = {"vibration": {**only, "without": None, "marginal": None}}
    data["robustness"]["curves"] = [c for c in data["robustness"]["curves"] if c["field"] == "vibration"]
    row = data["interpretation"]["inconsistencies"]["rows"][0]
    row["fields"] = {"vibration": row["fields"]["vibration"]}
    page = render_report(data)
    assert '<td class="num">—</td>' in page
    assert page.count('<svg class="plot"') == expected_plot_count(data)


def test_sample_data_is_not_modified_by_rendering() -> None:
    data = classification_report_data()
    before = copy.deepcopy(data)
    render_report(data)
    assert data == before


def test_nice_ticks_cover_the_range_in_round_steps() -> None:
    assert nice_ticks(0.0, 1.0) == (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
    ticks = nice_ticks(0.81, 0.963, count=4)
    assert ticks[0] <= 0.81 and ticks[-1] >= 0.963 and len(ticks) <= 6
    assert nice_ticks(-0.4, 0.9)[0] <= -0.4
    assert nice_ticks(3.0, 3.0)[0] < 3.0 < nice_ticks(3.0, 3.0)[-1]


def test_num_formats_for_people() -> None:
    assert num(0.96349) == "0.963"
    assert num(None) == "—"
    assert num(270) == "270"
    assert num(0.00042) == "0.00042"
    assert num(float("nan")) == "nan"
    assert num("<x>") == "&lt;x&gt;"


def test_each_chart_states_what_its_families_measured(sample: dict[str, Any]) -> None:
    page = render_report(sample)
    robustness = sample["robustness"]
    curves = robustness["curves"] + robustness["all_fields"]
    notes = re.findall(r'<dl class="families">(.*?)</dl>', page)
    assert len(notes) == len({c["field"] for c in curves})  # one list under every chart
    for curve in curves:
        levels = curve["levels"]
        span = f"{levels[0]:g}–{levels[-1]:g} {curve['unit']}"
        assert f"{curve['perturbation']}: level {span}, {len(levels)} levels" in page
    assert "trapezoid" in page and "[0, 1]" in page
    assert "--perturb" not in page  # the default curves
    chosen = {**sample, "robustness": {**robustness, "plan": ["thermal:pixel_gaussian=0,0.5", "all:noise"]}}
    assert (
        "<code>--perturb thermal:pixel_gaussian=0,0.5</code>, <code>--perturb all:noise</code>"
        in render_report(chosen)
    )
