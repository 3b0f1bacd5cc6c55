"""report.sections: the body of each evaluation-report section (ablation, robustness, calibration,
confusion matrix, interpretation) from the metrics.json dict. Each function takes the whole dict,
reads its own key with `.get` and returns HTML; a missing or null key gives a sentence, never an error.
Every text from the data is escaped here (`esc`, `num`) or in the chart functions."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from plait.report.charts import Bins, Box, box_plot, confusion_heatmap, reliability_diagram
from plait.report.svg import Series, bar_chart, esc, line_chart, num
from plait.task import REGRESSION


def table(head: Sequence[str], rows: Sequence[Sequence[str]], *, text_columns: int = 1) -> str:
    """A table whose first `text_columns` columns are left-aligned text; `head` is escaped here,
    `rows` hold cells that are already HTML (escaped by the caller)."""

    def css(i: int) -> str:
        return "text" if i < text_columns else "num"

    th = "".join(f'<th class="{css(i)}">{esc(h)}</th>' for i, h in enumerate(head))
    body = "".join(
        "<tr>" + "".join(f'<td class="{css(i)}">{c}</td>' for i, c in enumerate(row)) + "</tr>"
        for row in rows
    )
    return f'<div class="scroll"><table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table></div>'


def unavailable(what: str) -> str:
    return f'<p class="na">{esc(what)} is not available in this report.</p>'


def is_regression(data: Mapping[str, Any]) -> bool:
    return (data.get("task") or {}).get("type") == REGRESSION


def kinds(data: Mapping[str, Any]) -> dict[str, str]:
    return {str(f.get("name")): str(f.get("kind", "")) for f in data.get("fields") or []}


def value_text(value: object) -> str:
    """A prediction or target as HTML: a class name escaped, a number to 4 significant digits."""
    if isinstance(value, float):
        return f"{value:.4g}"
    return num(value)


def ablation(data: Mapping[str, Any]) -> str:
    ab = data.get("ablation")
    if not ab or not ab.get("fields"):
        return unavailable("The ablation")
    metric, fields, kind = str(ab.get("metric", "metric")), ab["fields"], kinds(data)
    direction = "higher" if ab.get("higher_is_better", True) else "lower"
    names = list(fields)
    chart = bar_chart(
        names,
        [
            ("field alone", [fields[n].get("alone") for n in names]),
            ("all fields but this one", [fields[n].get("without") for n in names]),
        ],
        label=f"{metric} of each field alone and of all fields but it, against all fields",
        reference=ab.get("all"),
        reference_label="all fields",
    )
    retrained = any(fields[n].get("retrained_without") is not None for n in names)
    head = ["field", "kind", "alone", "without", "marginal", *(["retrained without"] if retrained else [])]
    rows = [
        [
            esc(n),
            esc(kind.get(n, "")),
            num(f.get("alone")),
            num(f.get("without")),
            num(f.get("marginal")),
            *([num(f.get("retrained_without"))] if retrained else []),
        ]
        for n, f in fields.items()
    ]
    single = (
        f"<p>The model has one field, {esc(names[0])}: <i>alone</i> is the model itself and there is "
        "nothing to remove, so <i>without</i> and <i>marginal</i> are empty.</p>"
        if len(names) == 1
        else ""
    )
    return (
        f"<p>{esc(metric)} with every field: <b>{num(ab.get('all'))}</b> ({direction} is better). "
        "<i>alone</i>: only this field given to the model; <i>without</i>: this field removed at test "
        "time; <i>marginal</i>: what the field adds over the others (positive helps)"
        + ("; <i>retrained without</i>: a model trained without the field" if retrained else "")
        + ".</p>"
        + single
        + chart
        + table(head, rows, text_columns=2)
    )


def _severity_series(curves: Sequence[Mapping[str, Any]]) -> list[Series]:
    """One series per family, its levels divided by its largest level (families differ in units)."""
    series = []
    for c in curves:
        levels = [float(x) for x in c.get("levels") or []]
        top = max(levels, default=1.0) or 1.0
        name = f"{c.get('perturbation', '?')}: 0–{top:g} {c.get('unit', '')}".strip()
        series.append(Series(name, tuple(x / top for x in levels), tuple(c.get("values") or [])))
    return series


def robustness(data: Mapping[str, Any]) -> str:
    rob = data.get("robustness")
    if not rob or not (rob.get("curves") or rob.get("all_fields")):
        return unavailable("The robustness analysis")
    metric, kind = str(rob.get("metric", "metric")), kinds(data)
    curves, all_fields = list(rob.get("curves") or []), list(rob.get("all_fields") or [])
    values = [v for c in [*curves, *all_fields] for v in c.get("values") or [] if v is not None]
    domain = (min(values, default=0.0), max(values, default=1.0))
    order = list(kind) + [str(c.get("field")) for c in curves if str(c.get("field")) not in kind]
    groups = [(f, [c for c in curves if c.get("field") == f]) for f in dict.fromkeys(order)]
    if all_fields:
        groups.append(("all", all_fields))
    charts = [
        '<div class="panel">'
        + line_chart(
            _severity_series(group),
            label=f"{metric} as {'every field' if f == 'all' else f} is perturbed, per perturbation family",
            title="all fields at once" if f == "all" else f"{f} ({kind.get(f, '?')})",
            x_label="severity (share of the family's largest level)",
            y_label=metric,
            y_domain=domain,
        )
        + _family_notes(group)
        + "</div>"
        for f, group in groups
        if group
    ]
    chosen = rob.get("plan")
    plan = (
        " The curves were chosen with <code>--perturb "
        + "</code>, <code>--perturb ".join(esc(c) for c in chosen)
        + "</code>."
        if chosen
        else ""
    )
    return (
        f"<p>{esc(metric)} as each field is perturbed (seed {num(rob.get('seed'))}), one chart per field "
        "and one with every field perturbed at once; all charts share the vertical scale. "
        "Levels run from 0 (clean) to the family's largest level; under each chart, what each family "
        f"does, the unit and range of its level, and its relative robustness.{plan}</p>"
        + (f"<p>Note: {esc(rob['note'])}.</p>" if rob.get("note") else "")
        + f'<div class="multiples">{"".join(charts)}</div>'
        + _robustness_table(rob, curves, all_fields, kind)
    )


def _family_notes(curves: Sequence[Mapping[str, Any]]) -> str:
    """Per curve: its family, the levels it ran (range, unit, count), its definition and its area."""
    items = []
    for c in curves:
        levels = [float(x) for x in c.get("levels") or []]
        span = f"{levels[0]:g}–{levels[-1]:g}" if levels else "?"
        unit = f" {esc(c.get('unit'))}" if c.get("unit") else ""
        items.append(
            f"<dt>{esc(c.get('perturbation', '?'))}: level {span}{unit}, {len(levels)} levels</dt>"
            f"<dd>{esc(c.get('description') or '')} (relative robustness "
            f"{num(c.get('relative_robustness'))})</dd>"
        )
    return f'<dl class="families">{"".join(items)}</dl>'


def _robustness_table(
    rob: Mapping[str, Any], curves: list[Any], all_fields: list[Any], kind: Mapping[str, str]
) -> str:
    relative = rob.get("relative_robustness") or {}
    effective = rob.get("effective_robustness")
    eff_fields = (effective or {}).get("fields") or {}
    head = [
        "field",
        "kind",
        "per family",
        "relative robustness",
        *(["effective robustness"] if effective else []),
    ]
    rows = []
    for field in dict.fromkeys([*kind, *relative]):
        own = all_fields if field == "all" else [c for c in curves if c.get("field") == field]
        families = ", ".join(f"{esc(c.get('perturbation'))} {num(c.get('relative_robustness'))}" for c in own)
        rows.append(
            [
                esc(field),
                esc("every field" if field == "all" else kind.get(field, "")),
                families or "—",
                num(relative.get(field)),
                *([num(eff_fields.get(field))] if effective else []),
            ]
        )
    note = (
        "<p>Relative robustness (MultiBench): the area under the metric-vs-level curve by the trapezoid "
        "rule, each curve's levels scaled to [0, 1] (level ÷ its largest level); 1.0 means a perfect "
        "score at every level, and a flat curve scores its clean metric. A field's figure is the mean "
        "over its perturbation families; <i>all</i> is the mean over the all-fields curves.</p>"
    )
    if effective:
        base = effective.get("baseline") or {}
        note += (
            f"<p>Effective robustness compares with the baseline model <code>{esc(base.get('model_id', '?'))}"
            f"</code> ({esc(base.get('fusion', '?'))} fusion): the mean over levels of this model's drop "
            "from its clean metric minus the baseline's drop; positive means it loses less than the "
            "baseline.</p>"
        )
    else:
        note += (
            "<p>Effective robustness: no baseline model was given "
            "(<code>plait evaluate … --baseline LATE_FUSION_BUNDLE</code>).</p>"
        )
    return table(head, rows, text_columns=3) + note


def _bins(name: str, curve: Mapping[str, Any]) -> Bins:
    return Bins(
        name=name,
        edges=tuple(curve.get("edges") or ()),
        confidence=tuple(curve.get("confidence") or ()),
        accuracy=tuple(curve.get("accuracy") or ()),
        count=tuple(curve.get("count") or ()),
    )


def calibration(data: Mapping[str, Any]) -> str:
    cal = data.get("calibration")
    if cal is None:
        if is_regression(data):
            return '<p class="na">Regression: no calibration (it applies to class probabilities).</p>'
        return unavailable("Calibration")
    ece, mce = cal.get("ece") or {}, cal.get("mce") or {}
    reliability = cal.get("reliability") or {}
    curves = [
        _bins(f"{k} temperature scaling", reliability[k]) for k in ("before", "after") if k in reliability
    ]
    chart = reliability_diagram(curves, label="reliability diagram before and after temperature scaling")
    rows = [
        [
            esc(s.get("key")),
            esc(", ".join(str(f) for f in s.get("fields") or [])),
            num(s.get("rows")),
            num(s.get("temperature"), 2),
            f"{num(s.get('ece_before'))} → {num(s.get('ece_after'))}",
        ]
        for s in cal.get("subsets") or []
    ]
    return (
        f'<p class="figures">ECE {num(ece.get("before"))} → <b>{num(ece.get("after"))}</b>; '
        f"MCE {num(mce.get('before'))} → <b>{num(mce.get('after'))}</b> (before → after temperature "
        "scaling; lower is better).</p>"
        + (chart if curves else "")
        + "<p>Each subset groups the rows by the fields present and has its own temperature.</p>"
        + table(
            ["subset", "fields present", "rows", "temperature", "ECE before → after"], rows, text_columns=2
        )
    )


def confusion(data: Mapping[str, Any]) -> str:
    matrix = data.get("confusion_matrix")
    if matrix is None:
        if is_regression(data):
            return '<p class="na">Regression: no confusion matrix.</p>'
        return unavailable("The confusion matrix")
    classes = [str(c) for c in (data.get("task") or {}).get("classes") or []]
    return (
        "<p>Rows are true classes, columns predicted classes; shade is the share of the row.</p>"
        + confusion_heatmap(classes, matrix, label="confusion matrix, counts of true by predicted class")
    )


def _boxes(stats: Mapping[str, Any], order: Sequence[str]) -> list[Box]:
    """One box per field with rows; a field (or class) with none has null statistics: no box."""
    keys = ("q25", "median", "q75", "mean")
    return [
        Box(f, s["q25"], s["median"], s["q75"], s["mean"], int(s.get("n", 0)))
        for f in order
        if (s := stats.get(f)) is not None
        and int(s.get("n", 0)) > 0
        and all(s.get(k) is not None for k in keys)
    ]


def interpretation(data: Mapping[str, Any]) -> str:
    interp = data.get("interpretation")
    if not interp:
        return unavailable("The interpretation")
    weights = interp.get("weights")
    if weights is None:
        part = f"<p>The {esc(data.get('fusion', '?'))} fusion exposes no per-field weights.</p>"
    else:
        part = _weights(weights)
    return part + _inconsistencies(data, interp.get("inconsistencies"))


def _weights(weights: Mapping[str, Any]) -> str:
    order = list(weights.get("field_order") or weights.get("overall") or [])
    groups = [("all rows", _boxes(weights.get("overall") or {}, order))]
    groups += [(str(c), _boxes(s, order)) for c, s in (weights.get("by_class") or {}).items()]
    groups = [(name, boxes) for name, boxes in groups if boxes]  # a class absent from these rows
    if not groups:
        return "<p>No row has a field present: no weights to show.</p>"
    per_class = " and per class" if len(groups) > 1 else ""
    return (
        "<h3>Per-field fusion weights</h3><p>How much weight the fusion gives each field, over all "
        f"rows{per_class}: box from the 25th to the 75th percentile, line at the median, dot at the "
        "mean.</p>"
        + box_plot(groups, label=f"fusion weight per field, over all rows{per_class}", y_label="weight")
    )


def _inconsistencies(data: Mapping[str, Any], inc: Mapping[str, Any] | None) -> str:
    title = "<h3>Cross-modal inconsistencies</h3>"
    if not inc:
        return title + unavailable("The inconsistency analysis")
    if inc.get("rows_compared", 1) == 0:
        why = "the model has one field" if len(kinds(data)) == 1 else "no row has two fields present"
        return (
            title + f"<p>Nothing to compare: {why}, and an inconsistency needs two fields that disagree.</p>"
        )
    threshold = inc.get("threshold")
    rule = (
        f"two fields, each at least {num(threshold, 2)} confident, predict different classes"
        if not is_regression(data)
        else f"the fields' predictions disagree beyond the threshold {num(threshold, 2)}"
    )
    bold = "" if is_regression(data) else "; bold: a field at least as confident as the threshold"
    text = f"<p>Rate: <b>{num(inc.get('rate'))}</b> of the rows, where {rule}. Most inconsistent first{bold}."
    text += "</p>"
    rows = inc.get("rows") or []
    if not rows:
        return title + text + "<p>No inconsistent row.</p>"
    names = list(dict.fromkeys([*kinds(data), *(f for r in rows for f in r.get("fields") or {})]))
    body = [
        [
            esc(r.get("row", "—")),
            value_text(r.get("target")),
            value_text(r.get("prediction")),
            *(_field_cell((r.get("fields") or {}).get(f), threshold) for f in names),
            num(r.get("score")),
        ]
        for r in rows
    ]
    head = ["row", "target", "fused prediction", *names, "score"]
    return title + text + table(head, body, text_columns=3 + len(names))


def _field_cell(entry: Mapping[str, Any] | None, threshold: object) -> str:
    if not entry:
        return "—"
    prediction, confidence = value_text(entry.get("prediction")), entry.get("confidence")
    if confidence is None:
        return prediction
    confident = isinstance(threshold, int | float) and confidence >= threshold
    cell = f"{prediction} ({num(confidence, 2)})"
    return f"<b>{cell}</b>" if confident else cell
