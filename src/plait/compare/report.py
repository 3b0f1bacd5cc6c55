"""Write a comparison out: compare.json (everything), compare.md (the ranked table and the verdict)
and compare.html (the same, self-contained, with a bar chart)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from plait import __version__
from plait.compare.html import render_html
from plait.compare.result import Comparison
from plait.compare.retrain_gap import comparison_gaps
from plait.compare.table import GAP_LEGEND, LEGEND, gap_rows, headers, table_rows
from plait.provenance.record import utc_now


@dataclass(frozen=True)
class ReportPaths:
    json: Path
    markdown: Path
    html: Path


def write_reports(comparison: Comparison, out_dir: Path | str) -> ReportPaths:
    """Write compare.json, compare.md and compare.html into `out_dir` (created if needed)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    date = utc_now()
    paths = ReportPaths(json=out / "compare.json", markdown=out / "compare.md", html=out / "compare.html")
    paths.json.write_text(json.dumps(report_json(comparison, date), indent=2) + "\n")
    paths.markdown.write_text(render_markdown(comparison, date))
    paths.html.write_text(render_html(comparison, date, version=__version__))
    return paths


def report_json(comparison: Comparison, date: str) -> dict[str, Any]:
    gaps = comparison_gaps(comparison.rows, comparison.fields, comparison.higher_is_better)
    return {"plait_version": __version__, "date": date, **comparison.to_json(), "retrain_gap": gaps}


def render_markdown(comparison: Comparison, date: str) -> str:
    names = headers(comparison)
    direction = "higher" if comparison.higher_is_better else "lower"
    lines = [
        f"# Fusion comparison: {comparison.task.label} ({comparison.task.type})",
        "",
        f"{comparison.verdict()}",
        "",
        f"Ranked by {comparison.metric_name} on {comparison.held_out_rows} {comparison.held_out} rows "
        f"({direction} is better). " + LEGEND,
        "",
        "| " + " | ".join(names) + " |",
        "|" + "|".join("---:" if _numeric(h) else "---" for h in names) + "|",
    ]
    for entry in table_rows(comparison):
        lines.append("| " + " | ".join(_md_cell(c) for c in entry.cells) + " |")
    gap_names, gaps = gap_rows(comparison)
    if gaps:
        lines += ["", "## Retrain gap per field", "", GAP_LEGEND, ""]
        lines += ["| " + " | ".join(gap_names) + " |", "|---|" + "---:|" * (len(gap_names) - 1)]
        lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in gaps]
    warned = [r for r in comparison.ranked() if r.warnings]
    if warned:
        lines += ["", "## Balance warnings", ""]
        lines += [f"- **{r.name}**: {_md_cell(w)}" for r in warned for w in r.warnings]
    split = ", ".join(f"{k} {v}" for k, v in comparison.split_sizes.items())
    lines += [
        "",
        f"Split: {split} (seed {comparison.seed}); table {comparison.source}. Latency on "
        f"{comparison.latency_device}. Total {comparison.seconds:.1f} s. plait {__version__}, {date}.",
        "",
    ]
    return "\n".join(lines)


def _numeric(header: str) -> bool:
    return header not in ("model", "kind", "fields", "notes")


def _md_cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")
