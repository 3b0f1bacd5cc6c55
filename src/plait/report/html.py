"""report.html: the evaluation report, one self-contained page rendered from an `EvaluationReport`
(inline CSS, inline SVG; no script, no external URL of any kind, so it opens offline and can be
mailed as one file). Sections in order: headline, ablation, robustness, calibration, confusion
matrix, interpretation, then a footer. Every string from the data is escaped."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from plait.report import sections
from plait.report.sections import table
from plait.report.space_section import shared_space
from plait.report.svg import esc, num

if TYPE_CHECKING:
    from plait.evaluation.result import EvaluationReport

CSS = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
body { padding: 0 1em; } h1 { font-size: 1.4em; margin-bottom: .2em; } h3 { font-size: 1.05em; }
h2 { font-size: 1.2em; border-bottom: 1px solid #ddd; padding-bottom: .2em; margin-top: 1.8em; }
.subtitle { color: #555; margin-top: 0; } .na { color: #666; font-style: italic; }
.headline { font-size: 1.2em; background: #f3f6fa; padding: .6em .9em; }
nav.toc { background: #fafafa; border: 1px solid #eee; padding: .4em .9em; }
nav.toc ol { margin: .3em 0; padding-left: 1.4em; columns: 2; }
nav.toc a { color: #0b5cad; text-decoration: none; } nav.toc a:hover { text-decoration: underline; }
.scroll { overflow-x: auto; max-width: 100%; }
table { border-collapse: collapse; margin: .8em 0; font-variant-numeric: tabular-nums; }
th, td { border-bottom: 1px solid #ddd; padding: .25em .6em; text-align: right; vertical-align: top; }
th { background: #f6f6f6; } th.text, td.text { text-align: left; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: .15em 1em; }
dl.facts dt { color: #555; } dl.facts dd { margin: 0; overflow-wrap: anywhere; }
svg.plot { display: block; max-width: 100%; height: auto; margin: .6em 0; }
.multiples { display: flex; flex-wrap: wrap; align-items: flex-start; gap: .2em 1.4em; }
.panel { width: 350px; max-width: 100%; } dl.families { font-size: 12px; margin: 0 0 .8em; }
dl.families dt { font-weight: 600; } dl.families dd { margin: 0 0 .35em; color: #444; }
svg text { font: 12px system-ui, sans-serif; fill: #222; } svg text.tick { font-size: 11px; fill: #555; }
svg text.chart-title { font-weight: 600; } svg text.small { font-size: 11px; }
svg text.value { font-size: 11px; paint-order: stroke; stroke: #fff; stroke-width: 3px; }
svg text.axis-label { fill: #444; }
svg .grid { stroke: #e6e6e6; stroke-width: 1; } svg .axis { stroke: #888; }
svg .reference { stroke: #222; stroke-width: 1.5; stroke-dasharray: 5 3; }
svg .diagonal { stroke: #777; stroke-width: 1.2; stroke-dasharray: 4 3; }
svg rect.cell { stroke: #fff; stroke-width: 1; }
footer { margin-top: 2.5em; border-top: 1px solid #ddd; padding-top: .6em; color: #666; font-size: .9em; }
code { font-size: .92em; overflow-wrap: anywhere; }
"""

Section = Callable[["EvaluationReport"], str]


def _sections(report: EvaluationReport) -> list[tuple[str, str, Section]]:
    space = [("space", "Shared space: retrieval", shared_space)] if report.space is not None else []
    return [
        ("headline", "Headline", _headline),
        ("ablation", "Which fields matter (ablation)", sections.ablation),
        ("robustness", "Robustness to missing and perturbed fields", sections.robustness),
        ("calibration", "Calibration", sections.calibration),
        ("confusion", "Confusion matrix", sections.confusion),
        ("interpretation", "Interpretation", sections.interpretation),
        *space,
    ]


def render_report(report: EvaluationReport) -> str:
    """The report page for one evaluation (what metrics.json holds, read with
    `EvaluationReport.from_json`)."""
    task = report.task
    title = "plait evaluation: " + ("? (?)" if task is None else f"{task.label} ({task.type})")
    parts = _sections(report)
    toc = "".join(f'<li><a href="#{sid}">{esc(heading)}</a></li>' for sid, heading, _ in parts)
    body = "\n".join(
        f'<section id="{sid}">\n<h2>{esc(heading)}</h2>\n{render(report)}\n</section>'
        for sid, heading, render in parts
    )
    source = "?" if report.data is None else report.data.source
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{esc(title)}</title>
<style>{CSS}</style></head>
<body>
<header><h1>{esc(title)}</h1>
<p class="subtitle">{esc(report.fusion or "?")} fusion of {_count_fields(report)}, \
evaluated on <code>{esc(source)}</code></p></header>
<nav class="toc" aria-label="contents"><b>Contents</b><ol>{toc}</ol></nav>
{body}
{_footer(report)}
</body></html>
"""


def _count_fields(report: EvaluationReport) -> str:
    n = len(report.fields)
    return "one field" if n == 1 else f"{n} fields"


def _headline(report: EvaluationReport) -> str:
    head = report.headline
    if head is None:
        return sections.unavailable("The headline metric")
    unit = " (in target units)" if report.is_regression and head.metric in {"rmse", "mae"} else ""
    line = (
        f'<p class="headline">{esc(head.metric)} <b>{num(head.value)}</b>{unit}, '
        f"{num(100 * head.level, 0)} % interval {num(head.low)} – {num(head.high)}; "
        f"{'higher' if report.higher_is_better else 'lower'} is better.</p>"
    )
    line += _boosting_line(report)
    fields = ", ".join(f"<b>{esc(f.name)}</b> ({esc(f.kind or '?')})" for f in report.fields)
    dset, task = report.data, report.task
    classes = "" if task is None else ", ".join(esc(c) for c in task.classes)
    facts = [
        ("rows", "?" if dset is None else f"{num(dset.rows)}: {esc(dset.selection)}"),
        ("data", f"<code>{esc('?' if dset is None else dset.source)}</code>"),
        ("task", "?" if task is None else f"{esc(task.type)} of <b>{esc(task.label)}</b>"),
        *([("classes", classes)] if classes else []),
        ("model id", f"<code>{esc(report.model_id or '(not saved)')}</code>"),
        ("fusion", esc(report.fusion or "?")),
        ("fields", fields or "—"),
    ]
    dl = "".join(f"<dt>{esc(k)}</dt><dd>{v}</dd>" for k, v in facts)
    metrics = report.metrics or {}
    metric_table = (
        table(list(metrics), [[num(v) for v in metrics.values()]], text_columns=0) if metrics else ""
    )
    return line + f'<dl class="facts">{dl}</dl>' + metric_table


def _boosting_line(report: EvaluationReport) -> str:
    """The simple model beside this one (`plait train --boosting`), when it was fitted."""
    boost, versus = report.boosting, report.versus_boosting
    if boost is None or versus is None:
        return ""
    gap = versus[1]
    said = "beats" if gap > 0 else ("ties with" if gap == 0 else "does not beat")
    return (
        f'<p class="boosting">Simple baseline: gradient boosting on the fields\' summary features, '
        f"same rows and split: {esc(boost.metric)} <b>{num(boost.value)}</b>. This model {said} it "
        f"({'+' if gap >= 0 else '−'}{num(abs(gap))}); one split, so a small gap may be noise "
        "(<code>plait compare --folds 5 --seeds 3</code> tells).</p>"
    )


def _footer(report: EvaluationReport) -> str:
    timing = report.timing
    took = "time not recorded"
    if timing is not None:
        took = (
            f"evaluated in {num(timing.seconds, 1)} s, of which encoding {num(timing.encoding_seconds, 1)} s"
        )
    return (
        f"<footer>plait {esc(report.plait_version or '?')} · created {esc(report.created or '?')} · "
        f"{took} · {esc(report.format)}</footer>"
    )
