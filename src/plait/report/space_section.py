"""The report's shared-space section: retrieval in both directions of every aligned pair
(instance and label level) and zero-shot accuracy from label prompts. Shown only for a model
trained with a shared space."""

from __future__ import annotations

from typing import TYPE_CHECKING

from plait.evaluation.result import LOWER_IS_BETTER
from plait.report.sections import table, unavailable
from plait.report.svg import esc, num, signed
from plait.task import gain

if TYPE_CHECKING:
    from plait.evaluation.result import EvaluationReport
    from plait.evaluation.retrieval import RetrievalScores


def shared_space(report: EvaluationReport) -> str:
    space = report.space
    if space is None:
        return unavailable("The shared space")
    parts = [
        f"<p>Fields projected into one {space.dim}-d space (learned temperature "
        f"{num(space.temperature)}). For each query the candidates are the evaluated rows where both "
        "fields are present; the target is the same row's other field (instance) or any item of "
        "the query's class (label). Recall@K: the share of queries whose target ranks in the top "
        "K; MRR: the mean of 1 / rank.</p>"
    ]
    if not space.directions:
        parts.append('<p class="na">No aligned pair had two evaluated rows with both fields present.</p>')
    else:
        head = ["query → target", "level", "queries", "R@1", "R@5", "R@10", "MRR", "median rank"]
        rows = []
        for d in space.directions:
            levels = [("instance", d.instance)] + ([("label", d.label)] if d.label is not None else [])
            for level, scores in levels:
                rows.append([f"{esc(d.query)} → {esc(d.target)}", level, *_cells(scores)])
        parts.append(table(head, rows, text_columns=2))
    if space.zero_shot:
        head = ["field", "prompts read by", "prompt", "rows", "accuracy", "chance"]
        rows = [
            [
                esc(z.field),
                esc(z.text_field),
                f"<code>{esc(z.prompt)}</code>",
                num(z.rows),
                num(z.accuracy),
                num(z.chance),
            ]
            for z in space.zero_shot
        ]
        parts.append("<h3>Zero-shot from label prompts</h3>")
        parts.append(
            "<p>Each row is given the class whose prompt, read by the text field, lies nearest in the "
            "space; no head is used. Chance: the most frequent class's share.</p>"
        )
        parts.append(table(head, rows, text_columns=3))
    if space.imputation:
        head = ["field missing from every row", "metric", "left absent", "imputed", "gain from imputing"]
        rows = [
            [
                esc(i.field),
                esc(i.metric),
                num(i.absent),
                num(i.imputed),
                signed(gain(i.imputed, i.absent, i.metric not in LOWER_IS_BETTER)),
            ]
            for i in space.imputation
        ]
        parts.append("<h3>Imputing a missing field</h3>")
        parts.append(
            "<p>Each field removed from every evaluated row, then either left absent (the fusion "
            "ignores it) or synthesised from the row's other fields in the shared space "
            "(<code>impute: embedding</code>). Where imputing does not beat leaving the field "
            "absent, predict without it.</p>"
        )
        parts.append(table(head, rows, text_columns=2))
    return "\n".join(parts)


def _cells(scores: RetrievalScores) -> list[str]:
    recall = [num(scores.recall.get(k)) for k in (1, 5, 10)]
    return [num(scores.queries), *recall, num(scores.mrr), num(scores.median_rank, 1)]
