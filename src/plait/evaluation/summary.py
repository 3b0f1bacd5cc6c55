"""A few plain lines that say what an evaluation report found (for the terminal and the demo)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from plait.task import gain

if TYPE_CHECKING:
    from plait.evaluation.result import Calibration, EvaluationReport
    from plait.evaluation.space import SpaceEvaluation


def report_summary(report: EvaluationReport) -> list[str]:
    lines = []
    ablation = report.ablation
    fields = {} if ablation is None else {f: a for f, a in ablation.fields.items() if a.marginal is not None}
    if ablation is not None and fields:
        top = max(fields, key=lambda f: fields[f].marginal or 0.0)
        low = min(fields, key=lambda f: fields[f].marginal or 0.0)
        if fields[top].marginal == fields[low].marginal:
            lines.append(f"no single field changes the {ablation.metric} when it is left out")
        else:
            lines.append(
                f"relied on most: {top} ({ablation.metric} {ablation.all:.3f} → "
                f"{fields[top].without:.3f} without it); "
                f"least: {low} (→ {fields[low].without:.3f})"
            )
    robustness = report.robustness
    if robustness is not None and robustness.relative_robustness:
        per = {f: v for f, v in robustness.relative_robustness.items() if f != "all"}
        every = ", ".join(f"{c.perturbation} {c.relative_robustness:.3f}" for c in robustness.all_fields)
        weakest = min(per, key=lambda f: per[f]) if per else None
        only = report.fields[0].name if len(report.fields) == 1 else None
        parts = []
        if weakest:
            parts.append(f"{'field' if only else 'least robust field'} {weakest} {per[weakest]:.3f}")
        if every:
            parts.append(f"every field at once{f' ({only} alone)' if only else ''}: {every}")
        lines.append(f"relative robustness ({robustness.metric} area): " + "; ".join(parts))
        effective = robustness.effective
        if effective is not None and "all" in effective.fields:
            lines.append(
                f"effective robustness vs {effective.baseline_fusion}: {effective.fields['all']:+.3f} "
                "(all fields at once; > 0: loses less than the baseline)"
            )
    if report.calibration is not None:
        lines.append(_calibration_line(report.calibration))
    found = None if report.interpretation is None else report.interpretation.inconsistencies
    if found is not None and found.compared == 0:
        lines.append("cross-modal inconsistencies: no row has two fields present to compare")
    elif found is not None:
        line = f"cross-modal inconsistencies: {found.rate:.1%} of rows"
        if found.rows:
            first = found.rows[0]
            says = ", ".join(f"{f} says {v.prediction}" for f, v in list(first.fields.items())[:3])
            line += f"; most inconsistent row {first.row}: {says}"
        lines.append(line)
    boost, versus = report.boosting, report.versus_boosting
    if boost is not None and versus is not None:
        mine, gap = versus
        lines.append(
            f"boosting baseline on summary features: {boost.metric} {boost.value:.3f} "
            f"(this model {mine:.3f}, {gap:+.3f}; one split)"
        )
    if report.space is not None:
        lines.extend(space_lines(report.space))
    if report.timing is not None:
        timing = report.timing
        lines.append(f"evaluated in {timing.seconds:.1f} s ({timing.encoding_seconds:.1f} s encoding)")
    return lines


def _calibration_line(calibration: Calibration) -> str:
    line = f"calibration: ECE {calibration.ece_before:.3f} → {calibration.ece_after:.3f}"
    if not calibration.calibrated:
        return line + " (the bundle has no calibration)"
    scaled = [s for s in calibration.subsets if s.temperature != 1.0]
    lower = sum(1 for s in scaled if s.ece_after < s.ece_before)
    return (
        line + f"; per-subset temperatures apply to {len(scaled)} of {len(calibration.subsets)} field "
        f"subsets and lower their ECE in {lower} of {len(scaled)} (the others keep T = 1: the "
        "validation rows showed no miscalibration there, or were too few to tell)"
    )


def space_lines(space: SpaceEvaluation) -> list[str]:
    """The shared space in a few lines: each retrieval direction, zero-shot, imputation."""
    from plait.evaluation.result import LOWER_IS_BETTER  # torch: not when `plait --help` imports this

    lines = []
    for d in space.directions:
        s = d.instance
        recall = f"R@1 {s.recall.get(1, 0.0):.3f}, R@10 {s.recall.get(10, 0.0):.3f}"
        line = (
            f"retrieval {d.query} → {d.target}: {recall}, MRR {s.mrr:.3f}, "
            f"median rank {s.median_rank:g} of {s.candidates}"
        )
        if d.label is not None:
            line += f"; same class R@1 {d.label.recall.get(1, 0.0):.3f}"
        lines.append(line)
    for z in space.zero_shot:
        lines.append(
            f"zero-shot {z.field} from {z.text_field} prompts: accuracy {z.accuracy:.3f} "
            f"(chance {z.chance:.3f})"
        )
    for i in space.imputation:
        change = gain(i.imputed, i.absent, i.metric not in LOWER_IS_BETTER)
        lines.append(
            f"without {i.field}: {i.metric} {i.absent:.3f} left absent, {i.imputed:.3f} imputed "
            f"({change:+.3f}; > 0: imputing helps)"
        )
    return lines
