"""Merging what the shards of a sharded alignment found into what one pass would have found:
a stream's load counts and notes from its key groups, rule details and status counts from the
shards. Counts add up; example rows are the first N of all parts' first N; a note a part writes
about the whole stream (its time format, clock offsets) must be the same in every part, or the
merge refuses and names the setting that makes it so."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from plait.align.frames import LoadStats
from plait.align.load import EMPTY_NOTE, N_EXAMPLES, NOTE_SLOTS, Note
from plait.errors import AlignmentError

_COUNTED = (
    "outside_root",
    "unreadable",
    "null_key",
    "unreadable_file",
    "non_finite",
    "jumps",
    "unsorted",
    "duplicates",
)
_UNPLACEABLE = ("unreadable", "null_key", "unreadable_file")  # one drop step: "unreadable" lists them all


@dataclass(frozen=True)
class LoadPart:
    """One key group's cleaning of one stream."""

    stats: LoadStats
    notes: tuple[Note, ...]


def merge_load(stream: str, parts: Sequence[LoadPart]) -> LoadStats:
    read = [p for p in parts if p.stats.rows_read > 0] or list(parts[:1])
    formats = sorted({p.stats.time_format for p in read})
    parse = {tuple(n.text for n in p.notes if n.slot == "parse") for p in read}
    if len(formats) > 1 or len(parse) > 1:
        found = "; ".join(formats + [" / ".join(t) for t in sorted(parse) if t])
        raise AlignmentError(
            f"stream '{stream}': its entity groups read the times differently ({found}), so the sharded "
            f"run cannot say how the whole column was read; set streams.sources.{stream}.time_format "
            "(e.g. epoch_ms or iso) and timezone explicitly, or align without shards"
        )
    notes = _merge_notes(parts, read)
    total = sum(p.stats.rows_read for p in parts)
    return LoadStats(
        rows_read=total,
        rows_kept=sum(p.stats.rows_kept for p in parts),
        unsorted=sum(p.stats.unsorted for p in parts),
        duplicates=sum(p.stats.duplicates for p in parts),
        jumps=sum(p.stats.jumps for p in parts),
        non_finite=sum(p.stats.non_finite for p in parts),
        unreadable=sum(p.stats.unreadable for p in parts),
        outside_root=sum(p.stats.outside_root for p in parts),
        time_format=formats[0] if formats else "",
        notes=tuple(n.render() for n in notes),
        examples=_merge_examples(parts, notes),
    )


def _merge_notes(parts: Sequence[LoadPart], read: Sequence[LoadPart]) -> list[Note]:
    out: list[Note] = []
    total = sum(p.stats.rows_read for p in parts)
    for slot in NOTE_SLOTS:
        if slot == "parse":
            out += [n for n in read[0].notes if n.slot == slot] if read else []
        elif slot in ("folder", "offsets"):  # about the whole source: the same in every part
            out += [n for n in parts[0].notes if n.slot == slot]
        elif slot == "empty":
            out += [Note("empty", EMPTY_NOTE)] if total == 0 else []
        elif slot == "unknown_offsets":
            sets = [set(next((n.names for n in p.notes if n.slot == slot), ())) for p in parts]
            unknown = sorted(set.intersection(*sets)) if sets else []
            out += [Note(slot, names=tuple(unknown))] if unknown else []
        else:
            found = [n for p in parts for n in p.notes if n.slot == slot]
            if found:
                out.append(_merge_counted(found))
    return out


def _merge_counted(found: list[Note]) -> Note:
    first = min(found, key=lambda n: n.rows[0])  # its example is the value of the first row overall
    rows = tuple(sorted(r for n in found for r in n.rows)[:N_EXAMPLES])
    return Note(
        first.slot, count=sum(n.count for n in found), rows=rows, what=first.what, example=first.example
    )


def _merge_examples(parts: Sequence[LoadPart], notes: list[Note]) -> dict[str, tuple[int, ...]]:
    """Anomaly → first rows, keyed in the order one pass writes them: "unreadable" lists every row of
    the drop step it belongs to, and comes first there only when a time itself was unreadable."""
    counted = {n.slot for n in notes if n.slot in _COUNTED}
    order = [s for s in _COUNTED if s in counted]
    if any(s in counted for s in _UNPLACEABLE) and "unreadable" not in counted:
        at = max(order.index(s) for s in _UNPLACEABLE if s in counted) + 1
        order.insert(at, "unreadable")
    examples: dict[str, tuple[int, ...]] = {}
    for slot in order:
        rows = sorted(r for p in parts for r in p.stats.examples.get(slot, ()))
        examples[slot] = tuple(rows[:N_EXAMPLES])
    return examples


def add_counts(parts: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Key-wise sums, keys in first-seen order."""
    out: dict[str, Any] = {}
    for part in parts:
        for key, value in part.items():
            out[key] = out.get(key, 0) + value
    return out


def subtract_counts(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value - b.get(key, 0) for key, value in a.items()}
