"""compare.html: one self-contained page (inline CSS, inline SVG; no script, no external URL) with a
bar chart of the task metric per model and the ranked table. Every text is escaped."""

from __future__ import annotations

from html import escape

from plait.compare.result import RETRAINED, Comparison
from plait.compare.table import GAP_LEGEND, LEGEND, gap_rows, headers, table_rows

BAR_H = 22  # px per bar, gap included
LABEL_W = 190
PLOT_W = 430
VALUE_W = 80
TOP = 8

CSS = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }
body { padding: 0 1em; }
h1 { font-size: 1.4em; } .verdict { font-size: 1.1em; background: #f3f6fa; padding: .6em .9em; }
table { border-collapse: collapse; margin: 1em 0; font-variant-numeric: tabular-nums; }
th, td { border-bottom: 1px solid #ddd; padding: .25em .6em; text-align: right; }
th.text, td.text { text-align: left; } tr.best-unimodal { background: #fdf3e3; }
tr.failed { color: #999; } .fusion { fill: #3b6fb6; } .unimodal { fill: #d98c2b; }
.baseline { fill: #6b6b6b; } .retrained { fill: #8aa36b; }
svg text { font: 12px system-ui, sans-serif; fill: #222; } .small { color: #666; font-size: .9em; }
"""


def render_html(comparison: Comparison, date: str, *, version: str) -> str:
    direction = "higher" if comparison.higher_is_better else "lower"
    split = ", ".join(f"{k} {v}" for k, v in comparison.split_sizes.items())
    warned = [(r.name, w) for r in comparison.ranked() for w in r.warnings]
    warnings = (
        "<h2>Balance warnings</h2><ul>"
        + "".join(f"<li><b>{escape(n)}</b>: {escape(w)}</li>" for n, w in warned)
        + "</ul>"
        if warned
        else ""
    )
    title = f"Fusion comparison: {comparison.task.label} ({comparison.task.type})"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>
<style>{CSS}</style></head>
<body>
<h1>{escape(title)}</h1>
<p class="verdict">{escape(comparison.verdict())}</p>
<h2>{escape(comparison.metric_name)} on {comparison.held_out_rows} {escape(comparison.held_out)} rows \
({direction} is better)</h2>
{bar_chart(comparison)}
{_table(comparison)}
<p class="small">{escape(LEGEND)}</p>
{_gap_table(comparison)}
{warnings}
<p class="small">Split: {escape(split)} (seed {comparison.seed}); table {escape(comparison.source)}.
Latency on {escape(comparison.latency_device)}. Total {comparison.seconds:.1f} s.
plait {escape(version)}, {escape(date)}.</p>
</body></html>
"""


def bar_chart(comparison: Comparison) -> str:
    """Horizontal bars, best first: one `rect.bar` per successful row, coloured by kind."""
    rows = [r for r in comparison.ranked() if r.ok]
    values = [float(r.metric) for r in rows if r.metric is not None]
    top = 1.0 if comparison.task.is_classification else max([*values, 0.0]) or 1.0
    height = TOP + BAR_H * len(rows) + 30
    width = LABEL_W + PLOT_W + VALUE_W
    parts = [
        f'<svg role="img" aria-label="{escape(comparison.metric_name)} per model" '
        f'width="{width}" height="{height}" viewBox="0 0 {width} {height}">'
    ]
    for i, (row, value) in enumerate(zip(rows, values, strict=True)):
        y = TOP + i * BAR_H
        w = max(PLOT_W * min(value / top, 1.0), 1.0)
        label = escape(row.name)
        parts.append(
            f'<text x="{LABEL_W - 6}" y="{y + 15}" text-anchor="end">{label}</text>'
            f'<rect class="bar {row.kind}" x="{LABEL_W}" y="{y + 3}" width="{w:.1f}" height="{BAR_H - 6}">'
            f"<title>{label} ({escape(row.kind)}): {value:.4f}</title></rect>"
            f'<text x="{LABEL_W + w + 4:.1f}" y="{y + 15}">{value:.4f}</text>'
        )
    y = TOP + BAR_H * len(rows) + 12
    keys = {"fusion": "fusion (all fields)", "unimodal": "unimodal baseline", "baseline": "boosting baseline"}
    if any(r.kind == RETRAINED for r in rows):
        keys[RETRAINED] = "retrained without a field"
    for j, (kind, name) in enumerate(keys.items()):
        x = LABEL_W + j * 150
        parts.append(
            f'<rect class="key {kind}" x="{x}" y="{y}" width="12" height="12"></rect>'
            f'<text x="{x + 17}" y="{y + 11}">{name}</text>'
        )
    parts.append("</svg>")
    return "\n".join(parts)


def _table(comparison: Comparison) -> str:
    names = headers(comparison)
    text_columns = {"model", "kind", "fields", "notes"}
    head = "".join(f'<th class="{"text" if h in text_columns else "num"}">{escape(h)}</th>' for h in names)
    body = []
    for entry in table_rows(comparison):
        css = "best-unimodal" if entry.best_unimodal else ("failed" if not entry.row.ok else "")
        cells = "".join(
            f'<td class="{"text" if h in text_columns else "num"}">{escape(c)}</td>'
            for h, c in zip(names, entry.cells, strict=True)
        )
        body.append(f'<tr class="{css}">{cells}</tr>')
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _gap_table(comparison: Comparison) -> str:
    """The retrain gap per fusion and field (nothing when no reference model was trained)."""
    names, rows = gap_rows(comparison)
    if not rows:
        return ""
    head = "".join(f'<th class="{"text" if i == 0 else "num"}">{escape(h)}</th>' for i, h in enumerate(names))
    body = "".join(
        "<tr>"
        + "".join(f'<td class="{"text" if i == 0 else "num"}">{escape(c)}</td>' for i, c in enumerate(row))
        + "</tr>"
        for row in rows
    )
    return (
        f'<h2>Retrain gap per field</h2><table class="retrain-gap"><thead><tr>{head}</tr></thead>'
        f'<tbody>{body}</tbody></table><p class="small">{escape(GAP_LEGEND)}</p>'
    )
