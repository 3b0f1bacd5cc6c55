"""report.html: the evaluation report, one self-contained page rendered from the metrics.json dict
(inline CSS, inline SVG; no script, no external URL of any kind, so it opens offline and can be
mailed as one file). Sections in order: headline, ablation, robustness, calibration, confusion
matrix, interpretation, then a footer. Every string from the data is escaped."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from plait.report import sections
from plait.report.sections import is_regression, table
from plait.report.svg import esc, num

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

Section = Callable[[Mapping[str, Any]], str]


def _sections() -> list[tuple[str, str, Section]]:
    return [
        ("headline", "Headline", _headline),
        ("ablation", "Which fields matter (ablation)", sections.ablation),
        ("robustness", "Robustness to missing and perturbed fields", sections.robustness),
        ("calibration", "Calibration", sections.calibration),
        ("confusion", "Confusion matrix", sections.confusion),
        ("interpretation", "Interpretation", sections.interpretation),
    ]


def render_report(data: Mapping[str, Any]) -> str:
    """The report page for one evaluation: `data` is the dict written to metrics.json."""
    task = data.get("task") or {}
    title = f"plait evaluation: {task.get('label', '?')} ({task.get('type', '?')})"
    parts = _sections()
    toc = "".join(f'<li><a href="#{sid}">{esc(heading)}</a></li>' for sid, heading, _ in parts)
    body = "\n".join(
        f'<section id="{sid}">\n<h2>{esc(heading)}</h2>\n{render(data)}\n</section>'
        for sid, heading, render in parts
    )
    source = (data.get("data") or {}).get("source", "?")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{esc(title)}</title>
<style>{CSS}</style></head>
<body>
<header><h1>{esc(title)}</h1>
<p class="subtitle">{esc(data.get("fusion", "?"))} fusion of {_count_fields(data)}, \
evaluated on <code>{esc(source)}</code></p></header>
<nav class="toc" aria-label="contents"><b>Contents</b><ol>{toc}</ol></nav>
{body}
{_footer(data)}
</body></html>
"""


def _count_fields(data: Mapping[str, Any]) -> str:
    n = len(data.get("fields") or [])
    return "one field" if n == 1 else f"{n} fields"


def _headline(data: Mapping[str, Any]) -> str:
    head = data.get("headline")
    if not head:
        return sections.unavailable("The headline metric")
    metric = str(head.get("metric", "metric"))
    higher = (data.get("ablation") or {}).get("higher_is_better")
    if higher is None:
        higher = metric not in {"rmse", "mae", "mse", "loss", "log_loss", "ece"}
    level = head.get("level")
    level_text = f"{num(100 * level, 0)} %" if isinstance(level, int | float) else "?"
    unit = " (in target units)" if is_regression(data) and metric in {"rmse", "mae"} else ""
    line = (
        f'<p class="headline">{esc(metric)} <b>{num(head.get("value"))}</b>{unit}, '
        f"{level_text} interval {num(head.get('low'))} – {num(head.get('high'))}; "
        f"{'higher' if higher else 'lower'} is better.</p>"
    )
    dset = data.get("data") or {}
    fields = ", ".join(
        f"<b>{esc(f.get('name'))}</b> ({esc(f.get('kind', '?'))})" for f in data.get("fields") or []
    )
    task = data.get("task") or {}
    classes = ", ".join(esc(c) for c in task.get("classes") or [])
    facts = [
        ("rows", f"{num(dset.get('rows'))}: {esc(dset.get('selection', ''))}"),
        ("data", f"<code>{esc(dset.get('source', '?'))}</code>"),
        ("task", f"{esc(task.get('type', '?'))} of <b>{esc(task.get('label', '?'))}</b>"),
        *([("classes", classes)] if classes else []),
        ("model id", f"<code>{esc(data.get('model_id') or '(not saved)')}</code>"),
        ("fusion", esc(data.get("fusion", "?"))),
        ("fields", fields or "—"),
    ]
    dl = "".join(f"<dt>{esc(k)}</dt><dd>{v}</dd>" for k, v in facts)
    metrics = data.get("metrics") or {}
    metric_table = (
        table(list(metrics), [[num(v) for v in metrics.values()]], text_columns=0) if metrics else ""
    )
    return line + f'<dl class="facts">{dl}</dl>' + metric_table


def _footer(data: Mapping[str, Any]) -> str:
    timing = data.get("timing") or {}
    seconds, encoding = timing.get("seconds"), timing.get("encoding_seconds")
    took = f"evaluated in {num(seconds, 1)} s" if seconds is not None else "time not recorded"
    if encoding is not None:
        took += f", of which encoding {num(encoding, 1)} s"
    return (
        f"<footer>plait {esc(data.get('plait_version', '?'))} · created {esc(data.get('created', '?'))} · "
        f"{took} · {esc(data.get('format', '?'))}</footer>"
    )
