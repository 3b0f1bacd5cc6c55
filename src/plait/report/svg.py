"""report.svg: dependency-free SVG building blocks for the evaluation report (scales, ticks, axes,
legends) and the two general charts: horizontal bars and lines.

Every function is pure and returns markup; every text that reaches the markup passes through `esc`.
Each chart's root is `<svg class="plot" role="img" aria-label=...>` with explicit width, height and
viewBox, so CSS `max-width: 100%; height: auto` scales it down on a narrow screen. Series differ by
colour (Okabe-Ito, safe for colour-blind readers) and by dash pattern, so a grey print still reads.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from html import escape

PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#999999")
DASHES = ("", "6 3", "2 3", "9 3 2 3", "1 2", "12 4", "4 2 1 2", "3 6")
LEGEND_ROW = 16  # px per legend line


def esc(value: object) -> str:
    """The text of any value, safe in element content and in quoted attributes."""
    return escape(str(value), quote=True)


def signed(value: float | None, digits: int = 3) -> str:
    """A difference for people: always with its sign; None is an em dash."""
    return "—" if value is None else f"{value:+.{digits}f}"


def num(value: object, digits: int = 3) -> str:
    """A number for people: `digits` decimals; tiny non-zero values keep 2 significant digits;
    None is an em dash; ints and other values are shown as they are (escaped)."""
    if value is None:
        return "—"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return esc(value)
    if isinstance(value, int):
        return f"{value:,}"
    if not math.isfinite(value):
        return esc(value)
    if value != 0 and abs(value) < 10 ** (-digits):
        return f"{value:.2g}"
    return f"{value:,.{digits}f}"


def color(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


def dash(i: int) -> str:
    pattern = DASHES[i % len(DASHES)]
    return f' stroke-dasharray="{pattern}"' if pattern else ""


def root(width: float, height: float, label: str, body: Iterable[str]) -> str:
    """The chart's outer `<svg>`; `label` is its accessible name and its hover title."""
    w, h = round(width), round(height)
    return (
        f'<svg class="plot" role="img" aria-label="{esc(label)}" width="{w}" height="{h}" '
        f'viewBox="0 0 {w} {h}"><title>{esc(label)}</title>' + "".join(body) + "</svg>"
    )


@dataclass(frozen=True)
class Scale:
    """Linear map from the data interval [lo, hi] to the pixel interval [a, b] (b < a for y)."""

    lo: float
    hi: float
    a: float
    b: float

    def __call__(self, value: float) -> float:
        span = self.hi - self.lo or 1.0
        return self.a + (value - self.lo) / span * (self.b - self.a)


def nice_ticks(lo: float, hi: float, count: int = 5) -> tuple[float, ...]:
    """Round tick values covering [lo, hi] in about `count` steps of 1, 2, 2.5 or 5 × 10^k."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return (0.0, 1.0)
    if hi <= lo:
        lo, hi = lo - 0.5, hi + 0.5
    raw = (hi - lo) / max(count, 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    first = math.floor(lo / step + 1e-9) * step
    ticks = []
    value = first
    while value < hi + step * 0.999:
        ticks.append(round(value, 10))
        value += step
    return tuple(ticks)


def tick_text(value: float, ticks: Sequence[float]) -> str:
    """A tick label with just enough decimals for its neighbours to differ."""
    step = abs(ticks[1] - ticks[0]) if len(ticks) > 1 else 1.0
    decimals = next((d for d in range(6) if abs(round(step, d) - step) < 1e-9), 6)
    return f"{value:.{decimals}f}"


def y_axis(scale: Scale, ticks: Sequence[float], x0: float, x1: float) -> str:
    """Horizontal grid lines across [x0, x1] with labels on the left of x0."""
    parts = []
    for t in ticks:
        y = scale(t)
        parts.append(
            f'<line class="grid" x1="{x0:.1f}" x2="{x1:.1f}" y1="{y:.1f}" y2="{y:.1f}"></line>'
            f'<text class="tick" x="{x0 - 4:.1f}" y="{y + 4:.1f}" text-anchor="end">'
            f"{tick_text(t, ticks)}</text>"
        )
    return "".join(parts)


def x_axis(scale: Scale, ticks: Sequence[float], y0: float, y1: float) -> str:
    """Vertical grid lines across [y1, y0] with labels under y0."""
    parts = []
    for t in ticks:
        x = scale(t)
        parts.append(
            f'<line class="grid" x1="{x:.1f}" x2="{x:.1f}" y1="{y1:.1f}" y2="{y0:.1f}"></line>'
            f'<text class="tick" x="{x:.1f}" y="{y0 + 14:.1f}" text-anchor="middle">'
            f"{tick_text(t, ticks)}</text>"
        )
    return "".join(parts)


def legend(
    names: Sequence[str], x: float, y: float, *, kind: str = "line", max_chars: int = 60, css: str = ""
) -> str:
    """One line per series from (x, y) down: a swatch (line with dash, or box) and the name."""
    parts = []
    for i, name in enumerate(names):
        top = y + i * LEGEND_ROW
        if kind == "line":
            swatch = (
                f'<line x1="{x:.1f}" x2="{x + 24:.1f}" y1="{top + 6:.1f}" y2="{top + 6:.1f}" '
                f'stroke="{color(i)}" stroke-width="2"{dash(i)}></line>'
            )
        else:
            swatch = f'<rect x="{x + 6:.1f}" y="{top:.1f}" width="12" height="12" fill="{color(i)}"></rect>'
        shown = name if len(name) <= max_chars else name[: max_chars - 1] + "…"
        parts.append(
            f'<g>{swatch}<text class="legend {css}" x="{x + 30:.1f}" y="{top + 10:.1f}">{esc(shown)}</text>'
            f"<title>{esc(name)}</title></g>"
        )
    return "".join(parts)


def bar_chart(
    labels: Sequence[str],
    series: Sequence[tuple[str, Sequence[float | None]]],
    *,
    label: str,
    reference: float | None = None,
    reference_label: str = "",
) -> str:
    """Horizontal bars: one group per label, one bar per series (None: no bar, value shown as —),
    and an optional dashed vertical reference line (e.g. the all-fields metric)."""
    left, plot_w, right, top = 170, 500, 64, 26
    bar_h, group_gap = 14, 10
    group_h = bar_h * len(series) + group_gap
    values = [v for _, vs in series for v in vs if v is not None and math.isfinite(v)]
    extent = [*values, 0.0, *([reference] if reference is not None else [])]
    ticks = nice_ticks(min(extent), max(extent))
    scale = Scale(ticks[0], ticks[-1], left, left + plot_w)
    plot_h = group_h * len(labels)
    height = top + plot_h + 22 + LEGEND_ROW * (len(series) + (reference is not None)) + 6
    body = [top_axis(scale, ticks, top, top + plot_h)]
    if reference is not None:  # under the bars, so the value labels' white halo covers it
        x = scale(reference)
        body.append(
            f'<line class="reference" x1="{x:.1f}" x2="{x:.1f}" y1="{top - 4}" y2="{top + plot_h:.1f}">'
            f"<title>{esc(reference_label)}: {num(reference)}</title></line>"
        )
    zero = scale(0.0)
    for g, name in enumerate(labels):
        y0 = top + g * group_h + group_gap / 2
        shown = name if len(name) <= 26 else name[:25] + "…"
        body.append(
            f'<text x="{left - 6}" y="{y0 + bar_h * len(series) / 2 + 4:.1f}" text-anchor="end">'
            f"{esc(shown)}<title>{esc(name)}</title></text>"
        )
        for s, (series_name, vs) in enumerate(series):
            value, y = vs[g], y0 + s * bar_h
            if value is None or not math.isfinite(value):
                body.append(f'<text class="value" x="{zero + 4:.1f}" y="{y + 11:.1f}">—</text>')
                continue
            x, end = sorted((zero, scale(value)))
            body.append(
                f'<rect x="{x:.1f}" y="{y + 1:.1f}" width="{max(end - x, 1):.1f}" height="{bar_h - 2}" '
                f'fill="{color(s)}"><title>{esc(name)}, {esc(series_name)}: {num(value)}</title></rect>'
                f'<text class="value" x="{max(end, zero) + 4:.1f}" y="{y + 11:.1f}">{num(value)}</text>'
            )
    legend_y = top + plot_h + 24
    body.append(legend([n for n, _ in series], left, legend_y, kind="box"))
    if reference is not None:
        y = legend_y + LEGEND_ROW * len(series)
        body.append(
            f'<line class="reference" x1="{left}" x2="{left + 24}" y1="{y + 6}" y2="{y + 6}"></line>'
            f'<text x="{left + 30}" y="{y + 10}">{esc(reference_label)} ({num(reference)})</text>'
        )
    return root(left + plot_w + right, height, label, body)


def top_axis(scale: Scale, ticks: Sequence[float], y_top: float, y_bottom: float) -> str:
    """The value axis of a horizontal bar chart: grid lines down the plot, labels above it."""
    parts = []
    for t in ticks:
        x = scale(t)
        parts.append(
            f'<line class="grid" x1="{x:.1f}" x2="{x:.1f}" y1="{y_top:.1f}" y2="{y_bottom:.1f}"></line>'
            f'<text class="tick" x="{x:.1f}" y="{y_top - 8:.1f}" text-anchor="middle">'
            f"{tick_text(t, ticks)}</text>"
        )
    return "".join(parts)


@dataclass(frozen=True)
class Series:
    """One line: its legend name and its points (a None y breaks the line)."""

    name: str
    x: tuple[float, ...]
    y: tuple[float | None, ...]


def line_chart(
    series: Sequence[Series],
    *,
    label: str,
    title: str,
    x_label: str,
    y_label: str,
    y_domain: tuple[float, float] | None = None,
    width: int = 350,
    height: int = 230,
) -> str:
    """Several lines on shared axes, a point marker (with a hover title) at every value, the title
    on top and the legend under the plot, one series per line."""
    left, right, top, bottom = 46, 16, 26, 38
    xs = [x for s in series for x in s.x] or [0.0, 1.0]
    ys = [y for s in series for y in s.y if y is not None and math.isfinite(y)] or [0.0, 1.0]
    x_ticks = nice_ticks(min(xs), max(xs))
    y_ticks = nice_ticks(*(y_domain or (min(ys), max(ys))), count=4)
    sx = Scale(x_ticks[0], x_ticks[-1], left, width - right)
    sy = Scale(y_ticks[0], y_ticks[-1], height - bottom, top)
    body = [
        f'<text class="chart-title" x="{left}" y="16">{esc(title)}</text>',
        y_axis(sy, y_ticks, left, width - right),
        x_axis(sx, x_ticks, height - bottom, top),
        f'<text class="axis-label" x="{(left + width - right) / 2:.1f}" y="{height - 6}" '
        f'text-anchor="middle">{esc(x_label)}</text>',
        f'<text class="axis-label" transform="translate(11 {(top + height - bottom) / 2:.1f}) rotate(-90)" '
        f'text-anchor="middle">{esc(y_label)}</text>',
    ]
    for i, s in enumerate(series):
        body.append(_polyline(s, sx, sy, i))
    body.append(
        legend([s.name for s in series], left, height + 2, max_chars=(width - left - 30) // 6, css="small")
    )
    return root(width, height + LEGEND_ROW * len(series) + 6, label, body)


def _polyline(s: Series, sx: Scale, sy: Scale, i: int) -> str:
    runs: list[list[str]] = [[]]
    marks = []
    for x, y in zip(s.x, s.y, strict=True):
        if y is None or not math.isfinite(y):
            runs.append([])
            continue
        px, py = sx(x), sy(y)
        runs[-1].append(f"{px:.1f},{py:.1f}")
        marks.append(
            f'<circle cx="{px:.1f}" cy="{py:.1f}" r="2.5" fill="{color(i)}">'
            f"<title>{esc(s.name)} at {num(x)}: {num(y)}</title></circle>"
        )
    lines = "".join(
        f'<polyline points="{" ".join(run)}" fill="none" stroke="{color(i)}" stroke-width="2"{dash(i)}>'
        "</polyline>"
        for run in runs
        if len(run) > 1
    )
    return f"<g>{lines}{''.join(marks)}</g>"
