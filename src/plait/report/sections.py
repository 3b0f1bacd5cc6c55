"""report.sections: the body of each evaluation-report section (ablation, robustness, calibration,
confusion matrix, interpretation) from an `EvaluationReport`. Each function takes the whole report,
reads its own section and returns HTML; a section that is None gives a sentence, never an error.
Every text from the data is escaped here (`esc`, `num`) or in the chart functions."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from plait.report.charts import Bins, Box, box_plot, confusion_heatmap, reliability_diagram
from plait.report.svg import Series, bar_chart, esc, line_chart, num, signed

if TYPE_CHECKING:
    from plait.evaluation.calibration import ReliabilityCurve
    from plait.evaluation.interpret import FieldPrediction, Inconsistencies, WeightDistribution, WeightStats
    from plait.evaluation.result import EvaluationReport, Robustness
    from plait.evaluation.robustness import Curve


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


def value_text(value: object) -> str:
    """A prediction or target as HTML: a class name escaped, a number to 4 significant digits."""
    if isinstance(value, float):
        return f"{value:.4g}"
    return num(value)


def ablation(report: EvaluationReport) -> str:
    ab = report.ablation
    if ab is None or not ab.fields:
        return unavailable("The ablation")
    fields, kind = ab.fields, report.kinds
    direction = "higher" if ab.higher_is_better else "lower"
    names = list(fields)
    chart = bar_chart(
        names,
        [
            ("field alone", [fields[n].alone for n in names]),
            ("all fields but this one", [fields[n].without for n in names]),
        ],
        label=f"{ab.metric} of each field alone and of all fields but it, against all fields",
        reference=ab.all,
        reference_label="all fields",
    )
    retrained = any(f.retrained_without is not None for f in fields.values())
    boosting = {} if report.boosting is None else report.boosting.retrained_without
    head = [
        "field",
        "kind",
        "alone",
        "without",
        "marginal",
        *(["retrained without", "retrain gap"] if retrained else []),
        *(["boosting retrained without"] if boosting else []),
    ]
    rows = [
        [
            esc(n),
            esc(kind.get(n, "")),
            num(f.alone),
            num(f.without),
            num(f.marginal),
            *([num(f.retrained_without), signed(f.retrain_gap(ab.higher_is_better))] if retrained else []),
            *([num(boosting.get(n))] if boosting else []),
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
        f"<p>{esc(ab.metric)} with every field: <b>{num(ab.all)}</b> ({direction} is better). "
        "<i>alone</i>: only this field given to the model; <i>without</i>: this field removed at test "
        "time; <i>marginal</i>: what the field adds over the others (positive helps)"
        + (
            "; <i>retrained without</i>: a model trained without the field; <i>retrain gap</i>: that "
            "model's figure minus this model's with the field absent (positive: a missing field costs "
            "this model more than retraining would; ≤ 0 is the target)"
            if retrained
            else ""
        )
        + (
            "; <i>boosting retrained without</i>: the boosting baseline trained without the field "
            "(what this model with the field absent is read against)"
            if boosting
            else ""
        )
        + ".</p>"
        + single
        + chart
        + table(head, rows, text_columns=2)
    )


def _severity_series(curves: Sequence[Curve]) -> list[Series]:
    """One series per family, its levels divided by its largest level (families differ in units)."""
    series = []
    for c in curves:
        top = max(c.levels, default=1.0) or 1.0
        name = f"{c.perturbation}: 0–{top:g} {c.unit}".strip()
        series.append(Series(name, tuple(x / top for x in c.levels), tuple(c.values)))
    return series


def robustness(report: EvaluationReport) -> str:
    rob = report.robustness
    if rob is None or not (rob.curves or rob.all_fields):
        return unavailable("The robustness analysis")
    kind = report.kinds
    curves, all_fields = list(rob.curves), list(rob.all_fields)
    values = [v for c in [*curves, *all_fields] for v in c.values]
    domain = (min(values, default=0.0), max(values, default=1.0))
    order = list(kind) + [c.field for c in curves if c.field not in kind]
    groups = [(f, [c for c in curves if c.field == f]) for f in dict.fromkeys(order)]
    if all_fields:
        groups.append(("all", all_fields))
    charts = [
        '<div class="panel">'
        + line_chart(
            _severity_series(group),
            label=f"{rob.metric} as {'every field' if f == 'all' else f} is perturbed, "
            "per perturbation family",
            title="all fields at once" if f == "all" else f"{f} ({kind.get(f, '?')})",
            x_label="severity (share of the family's largest level)",
            y_label=rob.metric,
            y_domain=domain,
        )
        + _family_notes(group)
        + "</div>"
        for f, group in groups
        if group
    ]
    plan = (
        " The curves were chosen with <code>--perturb "
        + "</code>, <code>--perturb ".join(esc(c) for c in rob.plan)
        + "</code>."
        if rob.plan
        else ""
    )
    return (
        f"<p>{esc(rob.metric)} as each field is perturbed (seed {num(rob.seed)}), one chart per field "
        "and one with every field perturbed at once; all charts share the vertical scale. "
        "Levels run from 0 (clean) to the family's largest level; under each chart, what each family "
        f"does, the unit and range of its level, and its relative robustness.{plan}</p>"
        + (f"<p>Note: {esc(rob.note)}.</p>" if rob.note else "")
        + f'<div class="multiples">{"".join(charts)}</div>'
        + _robustness_table(rob, kind)
    )


def _family_notes(curves: Sequence[Curve]) -> str:
    """Per curve: its family, the levels it ran (range, unit, count), its definition and its area."""
    items = []
    for c in curves:
        span = f"{c.levels[0]:g}–{c.levels[-1]:g}" if c.levels else "?"
        unit = f" {esc(c.unit)}" if c.unit else ""
        items.append(
            f"<dt>{esc(c.perturbation)}: level {span}{unit}, {len(c.levels)} levels</dt>"
            f"<dd>{esc(c.description)} (relative robustness {num(c.relative_robustness)})</dd>"
        )
    return f'<dl class="families">{"".join(items)}</dl>'


def _robustness_table(rob: Robustness, kind: Mapping[str, str]) -> str:
    effective = rob.effective
    head = [
        "field",
        "kind",
        "per family",
        "relative robustness",
        *(["effective robustness"] if effective else []),
    ]
    rows = []
    for field in dict.fromkeys([*kind, *rob.relative_robustness]):
        own = rob.all_fields if field == "all" else tuple(c for c in rob.curves if c.field == field)
        families = ", ".join(f"{esc(c.perturbation)} {num(c.relative_robustness)}" for c in own)
        rows.append(
            [
                esc(field),
                esc("every field" if field == "all" else kind.get(field, "")),
                families or "—",
                num(rob.relative_robustness.get(field)),
                *([num(effective.fields.get(field))] if effective else []),
            ]
        )
    note = (
        "<p>Relative robustness (MultiBench): the area under the metric-vs-level curve by the trapezoid "
        "rule, each curve's levels scaled to [0, 1] (level ÷ its largest level); 1.0 means a perfect "
        "score at every level, and a flat curve scores its clean metric. A field's figure is the mean "
        "over its perturbation families; <i>all</i> is the mean over the all-fields curves.</p>"
    )
    if effective:
        note += (
            f"<p>Effective robustness compares with the baseline model <code>"
            f"{esc(effective.baseline_model_id or '?')}</code> ({esc(effective.baseline_fusion)} fusion): "
            "the mean over levels of this model's drop from its clean metric minus the baseline's drop; "
            "positive means it loses less than the baseline.</p>"
        )
    else:
        note += (
            "<p>Effective robustness: no baseline model was given "
            "(<code>plait evaluate … --baseline LATE_FUSION_BUNDLE</code>).</p>"
        )
    return table(head, rows, text_columns=3) + note


def _bins(name: str, curve: ReliabilityCurve) -> Bins:
    return Bins(
        name=name, edges=curve.edges, confidence=curve.confidence, accuracy=curve.accuracy, count=curve.count
    )


def calibration(report: EvaluationReport) -> str:
    cal = report.calibration
    if cal is None:
        if report.is_regression:
            return '<p class="na">Regression: no calibration (it applies to class probabilities).</p>'
        return unavailable("Calibration")
    curves = [
        _bins(f"{name} temperature scaling", curve)
        for name, curve in (("before", cal.reliability_before), ("after", cal.reliability_after))
        if curve is not None
    ]
    chart = reliability_diagram(curves, label="reliability diagram before and after temperature scaling")
    rows = [
        [
            esc(s.key),
            esc(", ".join(s.fields)),
            num(s.rows),
            num(s.temperature, 2),
            f"{num(s.ece_before)} → {num(s.ece_after)}",
        ]
        for s in cal.subsets
    ]
    return (
        f'<p class="figures">ECE {num(cal.ece_before)} → <b>{num(cal.ece_after)}</b>; '
        f"MCE {num(cal.mce_before)} → <b>{num(cal.mce_after)}</b> (before → after temperature "
        "scaling; lower is better).</p>"
        + (chart if curves else "")
        + "<p>Each subset groups the rows by the fields present and has its own temperature.</p>"
        + table(
            ["subset", "fields present", "rows", "temperature", "ECE before → after"], rows, text_columns=2
        )
    )


def confusion(report: EvaluationReport) -> str:
    matrix = report.confusion_matrix
    if matrix is None:
        if report.is_regression:
            return '<p class="na">Regression: no confusion matrix.</p>'
        return unavailable("The confusion matrix")
    classes = [] if report.task is None else list(report.task.classes)
    return (
        "<p>Rows are true classes, columns predicted classes; shade is the share of the row.</p>"
        + confusion_heatmap(classes, matrix, label="confusion matrix, counts of true by predicted class")
    )


def _boxes(stats: Mapping[str, WeightStats], order: Sequence[str]) -> list[Box]:
    """One box per field with rows; a field (or class) with none has null statistics: no box."""
    return [
        Box(f, s.q25, s.median, s.q75, s.mean, s.n)
        for f in order
        if (s := stats.get(f)) is not None
        and s.n > 0
        and s.q25 is not None
        and s.median is not None
        and s.q75 is not None
        and s.mean is not None
    ]


def interpretation(report: EvaluationReport) -> str:
    interp = report.interpretation
    if interp is None:
        return unavailable("The interpretation")
    if interp.weights is None:
        part = f"<p>The {esc(report.fusion or '?')} fusion exposes no per-field weights.</p>"
    else:
        part = _weights(interp.weights)
    return part + _inconsistencies(report, interp.inconsistencies)


def _weights(weights: WeightDistribution) -> str:
    order = list(weights.field_order or weights.overall)
    groups = [("all rows", _boxes(weights.overall, order))]
    groups += [(str(c), _boxes(s, order)) for c, s in weights.by_class.items()]
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


def _inconsistencies(report: EvaluationReport, inc: Inconsistencies) -> str:
    title = "<h3>Cross-modal inconsistencies</h3>"
    if inc.compared == 0:
        why = "the model has one field" if len(report.fields) == 1 else "no row has two fields present"
        return (
            title + f"<p>Nothing to compare: {why}, and an inconsistency needs two fields that disagree.</p>"
        )
    regression = report.is_regression
    rule = (
        f"two fields, each at least {num(inc.threshold, 2)} confident, predict different classes"
        if not regression
        else f"the fields' predictions disagree beyond the threshold {num(inc.threshold, 2)}"
    )
    bold = "" if regression else "; bold: a field at least as confident as the threshold"
    text = f"<p>Rate: <b>{num(inc.rate)}</b> of the rows, where {rule}. Most inconsistent first{bold}."
    text += "</p>"
    if not inc.rows:
        return title + text + "<p>No inconsistent row.</p>"
    names = list(dict.fromkeys([*report.kinds, *(f for r in inc.rows for f in r.fields)]))
    body = [
        [
            esc(r.row),
            value_text(r.target),
            value_text(r.prediction),
            *(_field_cell(r.fields.get(f), inc.threshold) for f in names),
            num(r.score),
        ]
        for r in inc.rows
    ]
    head = ["row", "target", "fused prediction", *names, "score"]
    return title + text + table(head, body, text_columns=3 + len(names))


def _field_cell(entry: FieldPrediction | None, threshold: float) -> str:
    if entry is None:
        return "—"
    prediction = value_text(entry.prediction)
    if entry.confidence is None:
        return prediction
    cell = f"{prediction} ({num(entry.confidence, 2)})"
    return f"<b>{cell}</b>" if entry.confidence >= threshold else cell
