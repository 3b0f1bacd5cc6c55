"""report.charts: the evaluation report's special-purpose SVG charts: the reliability diagram, the
confusion-matrix heatmap and the box plot of per-field fusion weights. Pure functions built on
`report.svg`; every text is escaped there or here."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from plait.report.svg import LEGEND_ROW, Scale, color, esc, legend, nice_ticks, num, root, x_axis, y_axis


@dataclass(frozen=True)
class Bins:
    """One reliability curve: n_bins + 1 edges and, per bin, mean confidence, accuracy and row count."""

    name: str
    edges: tuple[float, ...]
    confidence: tuple[float, ...]
    accuracy: tuple[float, ...]
    count: tuple[int, ...]


def reliability_diagram(curves: Sequence[Bins], *, label: str) -> str:
    """Accuracy per confidence bin as bars (one per curve, side by side within the bin) against the
    diagonal of perfect calibration; under it a thin histogram of the rows per bin. Empty bins draw
    nothing; every bar's hover title gives the bin, its rows, mean confidence and accuracy."""
    left, size, right, top, hist_h = 46, 300, 14, 14, 44
    sx = Scale(0.0, 1.0, left, left + size)
    sy = Scale(0.0, 1.0, top + size, top)
    ticks = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
    hist_top = top + size + 30
    most = max([n for c in curves for n in c.count] + [1])
    body = [
        y_axis(sy, ticks, left, left + size),
        x_axis(sx, ticks, top + size, top),
        f'<line class="diagonal" x1="{sx(0):.1f}" y1="{sy(0):.1f}" x2="{sx(1):.1f}" y2="{sy(1):.1f}">'
        "<title>perfect calibration: accuracy equals confidence</title></line>",
        f'<text class="axis-label" transform="translate(11 {top + size / 2:.1f}) rotate(-90)" '
        'text-anchor="middle">accuracy</text>',
        f'<text class="axis-label" x="{left - 4}" y="{hist_top + hist_h / 2 + 4:.1f}" text-anchor="end">'
        f"rows</text>",
        f'<text class="tick" x="{left + size + 2}" y="{hist_top + 8}">{most}</text>',
        f'<line class="axis" x1="{left}" x2="{left + size}" y1="{hist_top + hist_h}" '
        f'y2="{hist_top + hist_h}"></line>',
        f'<text class="axis-label" x="{left + size / 2}" y="{hist_top + hist_h + 16}" '
        'text-anchor="middle">confidence (top-class probability)</text>',
    ]
    k = max(len(curves), 1)
    for i, curve in enumerate(curves):
        for b, n in enumerate(curve.count):
            if n <= 0:
                continue
            lo, hi = curve.edges[b], curve.edges[b + 1]
            slot = (sx(hi) - sx(lo)) / k
            x, w = sx(lo) + i * slot + 0.5, max(slot - 1.0, 0.5)
            tip = (
                f"<title>{esc(curve.name)}, confidence [{num(lo, 2)}, {num(hi, 2)}): {n} rows, "
                f"mean confidence {num(curve.confidence[b])}, accuracy {num(curve.accuracy[b])}</title>"
            )
            y, h = sy(curve.accuracy[b]), n / most * hist_h
            body.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{sy(0) - y:.1f}" '
                f'fill="{color(i)}" fill-opacity="0.75">{tip}</rect>'
                f'<rect x="{x:.1f}" y="{hist_top + hist_h - h:.1f}" width="{w:.1f}" height="{h:.1f}" '
                f'fill="{color(i)}" fill-opacity="0.5">{tip}</rect>'
            )
    legend_y = hist_top + hist_h + 26
    body.append(legend([c.name for c in curves], left, legend_y, kind="box"))
    height = legend_y + LEGEND_ROW * len(curves) + 4
    return root(left + size + right + 20, height, label, body)


def confusion_heatmap(classes: Sequence[str], counts: Sequence[Sequence[int]], *, label: str) -> str:
    """Rows are true classes, columns predicted ones; a cell's shade is its share of the row (so
    a class's recall reads down the diagonal whatever its size) and its count is printed in it."""
    n = len(classes)
    cell = 60 if n <= 8 else max(22, 480 // max(n, 1))
    left, top, right = 150, 96, 70
    width, height = left + cell * n + right, top + cell * n + 36
    body = [
        f'<text class="axis-label" x="{left + cell * n / 2:.1f}" y="14" text-anchor="middle">'
        "predicted</text>",
        f'<text class="axis-label" x="{left + cell * n + 8}" y="{top - 8}">rows</text>',
        f'<text class="axis-label" x="{left - 8}" y="{top - 8}" text-anchor="end">true ↓</text>',
    ]
    for j, name in enumerate(classes):
        x = left + j * cell + cell / 2
        shown = name if len(name) <= 16 else name[:15] + "…"
        body.append(
            f'<text transform="translate({x:.1f} {top - 6}) rotate(-35)">{esc(shown)}'
            f"<title>{esc(name)}</title></text>"
        )
    for i, name in enumerate(classes):
        row = counts[i] if i < len(counts) else []
        total = sum(row)
        y = top + i * cell
        shown = name if len(name) <= 20 else name[:19] + "…"
        body.append(
            f'<text x="{left - 6}" y="{y + cell / 2 + 4:.1f}" text-anchor="end">{esc(shown)}'
            f"<title>{esc(name)}</title></text>"
            f'<text class="tick" x="{left + cell * n + 8}" y="{y + cell / 2 + 4:.1f}">{total}</text>'
        )
        for j, value in enumerate(row):
            share = value / total if total else 0.0
            ink = "#fff" if share > 0.55 else "#222"
            body.append(
                f'<rect class="cell" x="{left + j * cell}" y="{y}" width="{cell}" height="{cell}" '
                f'fill="#0072B2" fill-opacity="{0.04 + 0.96 * share:.3f}">'
                f"<title>true {esc(name)}, predicted {esc(classes[j])}: {value} rows "
                f"({num(100 * share, 1)} % of the row)</title></rect>"
                f'<text x="{left + j * cell + cell / 2:.1f}" y="{y + cell / 2 + 4:.1f}" '
                f'text-anchor="middle" fill="{ink}" style="fill:{ink}">{value}</text>'
            )
    return root(width, height, label, body)


@dataclass(frozen=True)
class Box:
    """One distribution summarised by its quartiles and mean over n rows."""

    name: str
    q25: float
    median: float
    q75: float
    mean: float
    n: int


def box_plot(groups: Sequence[tuple[str, Sequence[Box]]], *, label: str, y_label: str) -> str:
    """Vertical boxes (q25 to q75, a line at the median, a dot at the mean), one per item in each
    group, coloured by the item's position (the legend, right of the plot, names the items of the
    first group)."""
    left, right, top, bottom = 50, 14, 12, 40
    box_w, gap, group_gap = 16, 5, 26
    per_group = max((len(boxes) for _, boxes in groups), default=1)
    group_w = per_group * (box_w + gap) - gap
    plot_w = max(len(groups) * (group_w + group_gap), 240)
    plot_h = 220
    highs = [max(b.q75, b.mean) for _, boxes in groups for b in boxes] or [1.0]
    ticks = nice_ticks(0.0, max(highs), count=4)
    sy = Scale(ticks[0], ticks[-1], top + plot_h, top)
    body = [
        y_axis(sy, ticks, left, left + plot_w),
        f'<text class="axis-label" transform="translate(12 {top + plot_h / 2:.1f}) rotate(-90)" '
        f'text-anchor="middle">{esc(y_label)}</text>',
    ]
    for g, (group, boxes) in enumerate(groups):
        x0 = left + group_gap / 2 + g * (group_w + group_gap)
        shown = group if len(group) <= 18 else group[:17] + "…"
        body.append(
            f'<text x="{x0 + group_w / 2:.1f}" y="{top + plot_h + 18}" text-anchor="middle">{esc(shown)}'
            f"<title>{esc(group)}</title></text>"
        )
        for i, b in enumerate(boxes):
            x = x0 + i * (box_w + gap)
            body.append(_box(b, x, box_w, sy, i, group))
    names = [b.name for b in groups[0][1]] if groups else []
    body.append(legend(names, left + plot_w + 6, top, kind="box"))
    legend_w = 40 + 7 * max((len(n) for n in names), default=0)
    height = max(top + plot_h + bottom - 10, top + LEGEND_ROW * len(names) + 4)
    return root(left + plot_w + right + legend_w, height, label, body)


def _box(b: Box, x: float, w: float, sy: Scale, i: int, group: str) -> str:
    y75, y25, ymed = sy(b.q75), sy(b.q25), sy(b.median)
    tip = (
        f"<title>{esc(group)}, {esc(b.name)}: q25 {num(b.q25)}, median {num(b.median)}, "
        f"q75 {num(b.q75)}, mean {num(b.mean)} over {b.n} rows</title>"
    )
    return (
        f'<g><rect x="{x:.1f}" y="{y75:.1f}" width="{w}" height="{max(y25 - y75, 1):.1f}" '
        f'fill="{color(i)}" fill-opacity="0.35" stroke="{color(i)}" stroke-width="1.5">{tip}</rect>'
        f'<line x1="{x:.1f}" x2="{x + w:.1f}" y1="{ymed:.1f}" y2="{ymed:.1f}" stroke="{color(i)}" '
        f'stroke-width="2.5"></line>'
        f'<circle cx="{x + w / 2:.1f}" cy="{sy(b.mean):.1f}" r="3" fill="#fff" stroke="#222">'
        f"{tip}</circle></g>"
    )
