"""A few plain lines that say what an evaluation report found (for the terminal and the demo)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def report_summary(data: Mapping[str, Any]) -> list[str]:
    lines = []
    ablation = data.get("ablation") or {}
    fields = {f: v for f, v in (ablation.get("fields") or {}).items() if v.get("marginal") is not None}
    if fields:
        metric = ablation["metric"]
        top = max(fields, key=lambda f: fields[f]["marginal"])
        low = min(fields, key=lambda f: fields[f]["marginal"])
    if fields and fields[top]["marginal"] == fields[low]["marginal"]:
        lines.append(f"no single field changes the {ablation['metric']} when it is left out")
    elif fields:
        lines.append(
            f"relied on most: {top} ({metric} {ablation['all']:.3f} → "
            f"{fields[top]['without']:.3f} without it); "
            f"least: {low} (→ {fields[low]['without']:.3f})"
        )
    robustness = data.get("robustness")
    if robustness and robustness.get("relative_robustness"):
        per = {f: v for f, v in robustness["relative_robustness"].items() if f != "all"}
        every = ", ".join(
            f"{c['perturbation']} {c['relative_robustness']:.3f}" for c in robustness.get("all_fields", [])
        )
        weakest = min(per, key=lambda f: per[f]) if per else None
        fields_listed = data.get("fields") or []
        only = fields_listed[0].get("name") if len(fields_listed) == 1 else None
        parts = []
        if weakest:
            parts.append(f"{'field' if only else 'least robust field'} {weakest} {per[weakest]:.3f}")
        if every:
            parts.append(f"every field at once{f' ({only} alone)' if only else ''}: {every}")
        lines.append(f"relative robustness ({robustness['metric']} area): " + "; ".join(parts))
        effective = robustness.get("effective_robustness")
        if effective and "all" in effective.get("fields", {}):
            lines.append(
                f"effective robustness vs {effective['baseline']['fusion']}: "
                f"{effective['fields']['all']:+.3f} "
                "(all fields at once; > 0: loses less than the baseline)"
            )
    calibration = data.get("calibration")
    if calibration:
        lines.append(_calibration_line(calibration))
    found = ((data.get("interpretation") or {}).get("inconsistencies")) or {}
    if found and found.get("rows_compared", 1) == 0:
        lines.append("cross-modal inconsistencies: no row has two fields present to compare")
    elif found:
        listed = found.get("rows", [])
        line = f"cross-modal inconsistencies: {found['rate']:.1%} of rows"
        if listed:
            first = listed[0]
            says = ", ".join(f"{f} says {v['prediction']}" for f, v in list(first["fields"].items())[:3])
            line += f"; most inconsistent row {first['row']}: {says}"
        lines.append(line)
    timing = data.get("timing")
    if timing:
        lines.append(f"evaluated in {timing['seconds']:.1f} s ({timing['encoding_seconds']:.1f} s encoding)")
    return lines


def _calibration_line(calibration: Mapping[str, Any]) -> str:
    ece = calibration["ece"]
    line = f"calibration: ECE {ece['before']:.3f} → {ece['after']:.3f}"
    if not calibration.get("calibrated"):
        return line + " (the bundle has no calibration)"
    scaled = [s for s in calibration.get("subsets", []) if s["temperature"] != 1.0]
    lower = sum(1 for s in scaled if s["ece_after"] < s["ece_before"])
    return (
        line + f"; per-subset temperatures apply to {len(scaled)} of {len(calibration['subsets'])} field "
        f"subsets and lower their ECE in {lower} of {len(scaled)} (the others keep T = 1: the "
        "validation rows showed no miscalibration there, or were too few to tell)"
    )
