"""Reading one stream (a table, or a folder of image/audio files) into the cleaned stream frame of
frames.py, counting everything cleaning found: unreadable times, NaN/Inf readings, unsorted rows,
backward clock jumps (segment splits) and exact duplicate timestamps.

Row numbers in examples and notes are 0-based rows of the source (data rows of a table; files of a
folder in sorted path order), also when only some entities are read (`keep`, a shard's key group).
Notes are kept in parts (`Note`) so that the notes of shards can be merged into the whole stream's.

Every media file is held to training's data-root rule (paths.py) before anything opens it: a table
entry or a folder file (symlinks followed) that leads outside the config's folder is dropped unread
and counted as "outside data root"; the others are written as paths relative to that folder, where
they really are, so training accepts every one.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from plait.align.frames import (
    FILE,
    KEY,
    OUTSIDE,
    ROW,
    SEGMENT,
    T_US,
    TIME,
    LoadedStream,
    LoadStats,
    seconds_to_us,
)
from plait.align.paths import OUTSIDE_ROOT, real_root, resolve_in_root, root_relative
from plait.align.read import read_table, resolve_source
from plait.align.rules import KINDS, STREAM_KINDS
from plait.align.rules.kind import StreamKind
from plait.align.spec import StreamSpec
from plait.align.timestamps import parse_times
from plait.errors import ConfigError, DataError

N_EXAMPLES = 5
_RESERVED = (KEY, T_US, SEGMENT, ROW, TIME, OUTSIDE)

MAX_LISTED_OFFSETS = 5  # more per-entity offsets than this are summarised as a range


# (the entity key column, its type as stored) -> which rows to read; the folder's keys are text
KeepKeys = Callable[[pl.Expr, pl.DataType], pl.Expr]


@dataclass(frozen=True)
class Note:
    """One line of a stream's load notes, in parts: `slot` names the step that wrote it (NOTE_SLOTS);
    a counted note (an anomaly) has its row count, first rows and text, the others a fixed text."""

    slot: str
    text: str = ""  # a fixed note
    count: int = 0  # a counted note: rows concerned, the first N_EXAMPLES of them, and its words
    rows: tuple[int, ...] = ()
    what: str = ""  # may hold {s} for the plural
    example: str = ""  # after the rows: the value of the first row, a fix
    names: tuple[str, ...] = ()  # unknown_offsets: entities named by offsets_s but not in the stream

    def render(self) -> str:
        if self.slot == "unknown_offsets":
            return f"offsets_s names entities not in this stream: {', '.join(self.names)}; check the spelling"
        if not self.what:
            return self.text
        more = ", …" if self.count > N_EXAMPLES else ""
        plural = "" if self.count == 1 else "s"
        shown = ", ".join(map(str, self.rows))
        return f"{self.count} {self.what.format(s=plural)} (rows {shown}{more}){self.example}"


# the steps of cleaning in the order they write notes; a shard's notes merge slot by slot
NOTE_SLOTS = (
    "parse",
    "folder",
    "empty",
    "outside_root",
    "unreadable",
    "null_key",
    "unreadable_file",
    "offsets",
    "unknown_offsets",
    "non_finite",
    "jumps",
    "unsorted",
    "duplicates",
)
EMPTY_NOTE = "the source has no rows: every anchor will find this stream absent"


def load_stream(spec: StreamSpec, base_dir: Path) -> LoadedStream:
    """Read and clean one stream; see frames.py for the frame's columns and LoadStats for the counts."""
    return load_stream_part(spec, base_dir)[0]


def load_stream_part(
    spec: StreamSpec, base_dir: Path, keep: KeepKeys | None = None
) -> tuple[LoadedStream, tuple[Note, ...]]:
    """The stream's rows whose entity `keep` selects (all when None), cleaned, with the notes in parts.
    Cleaning works per entity, so the entities of a key group clean exactly as in the whole stream."""
    kind = STREAM_KINDS.get(spec.kind)
    source = resolve_source(spec.path, base_dir, f"stream '{spec.name}'", _config_key(spec, "path"))
    notes: tuple[str, ...] = ()
    if source.is_dir():
        raw, notes = _list_folder(spec, kind, source, base_dir)
        if keep is not None:
            raw = raw.filter(keep(pl.col(KEY), pl.String()))
        where = f"stream '{spec.name}' ({spec.path}, the `time` group of the file names)"
    else:
        raw = _read_stream_table(spec, kind, source, base_dir, keep)
        where = f"stream '{spec.name}' ({spec.path}, column '{spec.time}')"
    if kind.media is not None and kind.media.headers is not None:
        raw = kind.media.headers(raw, real_root(base_dir))
    return _clean(spec, kind, raw, where, notes)


def _config_key(spec: StreamSpec, name: str) -> str:
    return f"streams.sources.{spec.name}.{name}"


def _read_stream_table(
    spec: StreamSpec, kind: StreamKind, source: Path, base_dir: Path, keep: KeepKeys | None = None
) -> pl.DataFrame:
    media = kind.media is not None
    values = [spec.file] if media else list(spec.columns)
    for column in [] if media else values:
        if column in _RESERVED:
            raise ConfigError(
                f"{_config_key(spec, 'columns')}: column name '{column}' is reserved by the aligner; "
                "rename the column in the source"
            )
    columns = {spec.time: _config_key(spec, "time")}
    if spec.key is not None:
        columns[spec.key] = _config_key(spec, "key")
    for column in values:
        columns.setdefault(column, _config_key(spec, "file" if media else "columns"))
    text = [spec.time, *([spec.key] if spec.key is not None else []), *([spec.file] if media else [])]
    key = spec.key
    rows = None if keep is None or key is None else lambda schema: keep(pl.col(key), schema[key])
    table = read_table(source, columns, where=f"stream '{spec.name}'", text=text, row_index=ROW, keep=rows)
    frame = table.select(
        pl.col(ROW).cast(pl.Int64),
        pl.col(spec.time).alias(TIME),
        (pl.col(spec.key).cast(pl.String) if spec.key is not None else pl.lit("", pl.String)).alias(KEY),
        *([pl.col(spec.file).cast(pl.String).alias(FILE)] if media else [pl.col(c) for c in values]),
    )
    if media:
        return frame.with_columns(_root_files(frame[FILE], source.parent, real_root(base_dir)))
    return kind.typed(frame, spec)


def _root_files(files: pl.Series, table_dir: Path, root: Path) -> list[pl.Series]:
    """A table's file entries (relative to the table's folder, or absolute) → where each really is,
    relative to the resolved `root`; an entry leading outside keeps its text and is flagged."""
    inside: dict[str, str] = {}
    for entry in files.drop_nulls().unique().to_list():
        resolved = resolve_in_root(Path(entry) if Path(entry).is_absolute() else table_dir / entry, root)
        if resolved is not None:
            inside[entry] = root_relative(resolved, root)
    outside = files.is_not_null() & ~files.is_in(list(inside))
    relative = files.replace_strict(inside, default=files, return_dtype=pl.String)
    return [relative.alias(FILE), outside.alias(OUTSIDE)]


def _list_folder(
    spec: StreamSpec, kind: StreamKind, folder: Path, base_dir: Path
) -> tuple[pl.DataFrame, tuple[str, ...]]:
    regex = _folder_pattern(spec, kind)
    root = real_root(base_dir)
    files, times, keys, outside, skipped = [], [], [], [], []
    found, linked_folders = _folder_files(folder, root)
    for path, resolved in found:
        rel = path.relative_to(folder).as_posix()
        match = regex.fullmatch(rel) or regex.fullmatch(path.name)
        if match is None:
            skipped.append(rel)
            continue
        # a file leading outside keeps its own name (relative to the root) for the report
        files.append(root_relative(resolved if resolved is not None else path, root))
        outside.append(resolved is None)
        times.append(match.group("time"))
        keys.append(match.group("key") if "key" in regex.groupindex else "")
    if not files:
        examples = ", ".join(skipped[:3]) or "the folder is empty"
        raise DataError(
            f"stream '{spec.name}': no file in {folder} matches pattern {spec.pattern!r} "
            f"(files: {examples}); "
            f"fix {_config_key(spec, 'pattern')} (it must match the whole file name)"
        )
    notes: list[str] = []
    if skipped:
        notes.append(
            f"{len(skipped)} file{'' if len(skipped) == 1 else 's'} in {spec.path} ignored "
            f"(not matching the pattern), e.g. {skipped[0]}"
        )
    if linked_folders:
        notes.append(
            f"{len(linked_folders)} symlinked folder{'' if len(linked_folders) == 1 else 's'} in {spec.path} "
            f"not followed (only real folders are listed), e.g. {linked_folders[0]}"
        )
    frame = pl.DataFrame(
        {ROW: range(len(files)), TIME: times, KEY: keys, FILE: files, OUTSIDE: outside},
        schema={ROW: pl.Int64, TIME: pl.String, KEY: pl.String, FILE: pl.String, OUTSIDE: pl.Boolean},
    )
    return frame, tuple(notes)


def _folder_files(folder: Path, root: Path) -> tuple[list[tuple[Path, Path | None]], list[str]]:
    """The files under `folder` in sorted path order, each with where it really is (None when it
    leads outside `root`: never opened, not even to ask whether it is a file), and the symlinked
    folders, which are not entered: a folder is listed where it is, not where a link leads."""
    found: list[tuple[Path, Path | None]] = []
    linked: list[str] = []
    for top, dirs, names in os.walk(folder, followlinks=False):
        here = Path(top)
        linked += [(here / d).relative_to(folder).as_posix() for d in dirs if (here / d).is_symlink()]
        for name in names:
            path = here / name
            resolved = resolve_in_root(path, root)
            if resolved is None or path.is_file():  # a dangling link inside the root is no file
                found.append((path, resolved))
    found.sort(key=lambda item: item[0])
    return found, sorted(linked)


def _folder_pattern(spec: StreamSpec, kind: StreamKind) -> re.Pattern[str]:
    if kind.media is None:
        media = " and ".join(k.name for k in KINDS if k.media is not None)
        raise ConfigError(
            f"{_config_key(spec, 'path')}: '{spec.path}' is a folder; only {media} streams read "
            f"folders, a {spec.kind} stream needs a CSV/Parquet/JSONL table"
        )
    example = r"(?P<key>m\d+)_(?P<time>\d{8}T\d{6})\.png"
    if spec.pattern is None:
        raise ConfigError(
            f"{_config_key(spec, 'pattern')}: '{spec.path}' is a folder; give a regex that takes the time "
            f"(and key) from the file names, e.g. {example} with time_format: '%Y%m%dT%H%M%S'"
        )
    try:
        regex = re.compile(spec.pattern)
    except re.error as exc:
        raise ConfigError(
            f"{_config_key(spec, 'pattern')}: not a valid regex ({exc}): {spec.pattern!r}"
        ) from None
    if "time" not in regex.groupindex:
        raise ConfigError(f"{_config_key(spec, 'pattern')}: needs a named group (?P<time>…), e.g. {example}")
    if spec.key is not None and "key" not in regex.groupindex:
        raise ConfigError(
            f"{_config_key(spec, 'pattern')}: key is set but the pattern has no (?P<key>…) group; "
            f"add one (e.g. {example}) or remove {_config_key(spec, 'key')}"
        )
    return regex


def _clean(
    spec: StreamSpec, kind: StreamKind, raw: pl.DataFrame, where: str, notes: tuple[str, ...]
) -> tuple[LoadedStream, tuple[Note, ...]]:
    parsed = parse_times(raw[TIME], time_format=spec.time_format, timezone=spec.timezone, where=where)
    log = _Log(notes=[*(Note("parse", n) for n in parsed.notes), *(Note("folder", n) for n in notes)])
    if raw.height == 0:
        log.notes.append(Note("empty", EMPTY_NOTE))
    frame = raw.with_columns(parsed.t_us.alias(T_US))
    outside = 0
    if kind.media is not None:  # first: a file outside the root is that, whatever else
        frame, outside = _drop(frame, {"outside_root": pl.col(OUTSIDE)}, log, raw)
    unplaceable = {"unreadable": pl.col(T_US).is_null(), "null_key": pl.col(KEY).is_null()}
    if kind.media is not None:
        unplaceable["unreadable_file"] = pl.col(kind.media.unreadable).is_null()
    frame, unreadable = _drop(frame, unplaceable, log, raw)
    frame = _apply_offsets(frame, spec, log)
    non_finite = 0
    if kind.finite:
        finite = pl.all_horizontal(pl.col(c).is_finite().fill_null(False) for c in spec.columns)
        frame, non_finite = _drop(frame, {"non_finite": ~finite}, log, raw)
    frame, unsorted, jumps = _mark_clock(frame, spec, kind.jumps, log)
    frame, duplicates = _dedupe(frame.sort([KEY, T_US, ROW]), spec, kind.averages, log)
    values = kind.media.columns if kind.media is not None else list(dict.fromkeys(spec.columns))
    frame = frame.select(KEY, T_US, SEGMENT, *values)
    stats = LoadStats(
        rows_read=raw.height,
        rows_kept=frame.height,
        unsorted=unsorted,
        duplicates=duplicates,
        jumps=jumps,
        non_finite=non_finite,
        unreadable=unreadable,
        outside_root=outside,
        time_format=parsed.format_used,
        notes=tuple(n.render() for n in log.notes),
        examples=dict(log.examples),
    )
    return LoadedStream(frame=frame, stats=stats), tuple(log.notes)


@dataclass
class _Log:
    """What cleaning found, in the words and rows the report shows."""

    notes: list[Note] = field(default_factory=list)
    examples: dict[str, tuple[int, ...]] = field(default_factory=dict)

    def add(self, anomaly: str, rows: pl.Series, what: str, example: str = "") -> None:
        """Note "<n> row(s) <what> (rows …)"; `what` may hold {s} for the plural."""
        shown = tuple(int(r) for r in rows.head(N_EXAMPLES))
        self.examples[anomaly] = shown
        self.notes.append(Note(anomaly, count=rows.len(), rows=shown, what=what, example=example))


_DROP_TEXT = {
    "unreadable": "row{s} with an unreadable time dropped",
    "null_key": "row{s} without an entity key dropped",
    "unreadable_file": "row{s} whose file is missing or cannot be read dropped",
    "outside_root": f"row{{s}} dropped unread: file {OUTSIDE_ROOT}",
    "non_finite": "row{s} with a NaN/Inf/empty reading dropped (a gap)",
}
_DROP_FIX = {"outside_root": "; move the files under the config's folder (a symlink counts where it leads)"}


def _drop(
    frame: pl.DataFrame, reasons: dict[str, pl.Expr], log: _Log, raw: pl.DataFrame
) -> tuple[pl.DataFrame, int]:
    """Drop the rows any reason flags; note each reason with example rows. Returns (kept, dropped)."""
    flags = frame.select(pl.col(ROW), **reasons)
    dropped = pl.any_horizontal(pl.col(r) for r in reasons)
    for reason in reasons:
        rows = flags.filter(pl.col(reason))[ROW]
        if rows.len() == 0:
            continue
        shown = {"unreadable": TIME, "unreadable_file": FILE, "outside_root": FILE}.get(reason)
        first = raw.filter(pl.col(ROW) == rows[0])  # by source row: `raw` may hold some rows only
        example = f", e.g. {first[shown][0]!r}" if shown is not None else ""
        log.add(reason, rows, _DROP_TEXT[reason], example + _DROP_FIX.get(reason, ""))
    n = int(flags.select(dropped.sum()).item())
    if n > 0 and len(reasons) > 1 and "unreadable" in reasons:
        log.examples["unreadable"] = tuple(int(r) for r in flags.filter(dropped)[ROW].head(N_EXAMPLES))
    return frame.filter(~flags.select(dropped).to_series()), n


def _apply_offsets(frame: pl.DataFrame, spec: StreamSpec, log: _Log) -> pl.DataFrame:
    """true time = stream time + offset_s + offsets_s[key]."""
    if spec.offset_s == 0 and not spec.offsets_s:
        return frame
    base = seconds_to_us(spec.offset_s)
    per_key = {k: base + seconds_to_us(v) for k, v in spec.offsets_s.items()}
    shift = pl.col(KEY).replace_strict(per_key, default=base, return_dtype=pl.Int64)
    parts = [f"{spec.offset_s:+g} s"] if spec.offset_s != 0 else []
    if len(spec.offsets_s) > MAX_LISTED_OFFSETS:
        values = spec.offsets_s.values()
        parts.append(f"{len(spec.offsets_s)} entities from {min(values):+g} s to {max(values):+g} s")
    else:
        parts += [f"{k}: {v:+g} s" for k, v in sorted(spec.offsets_s.items())]
    log.notes.append(Note("offsets", f"clock offsets applied: {', '.join(parts)}"))
    unknown = sorted(set(per_key) - set(frame[KEY].unique().to_list()))
    if unknown:
        log.notes.append(Note("unknown_offsets", names=tuple(unknown)))
    return frame.with_columns(pl.col(T_US) + shift)


def _mark_clock(
    frame: pl.DataFrame, spec: StreamSpec, jumps_possible: bool, log: _Log
) -> tuple[pl.DataFrame, int, int]:
    """Backward steps in source order, per entity. Where jumps are possible (StreamKind.jumps: a
    sampled sensor stream) a step larger than jump_s is a clock jump and starts a new segment; a
    smaller one, and any backward step in a stream of events (text, images, audio recordings,
    attributes — sparse, often logged out of order), is an unsorted row: sorted, never a segment split
    that would keep lines apart. `frame` is in source order."""
    step = pl.col(T_US) - pl.col(T_US).shift(1).over(KEY)
    frame = frame.with_columns(step.alias("__step")).with_columns(
        ((pl.col("__step") < -seconds_to_us(spec.jump_s)) & jumps_possible).fill_null(False).alias("__jump")
    )
    frame = frame.with_columns(
        ((pl.col("__step") < 0) & ~pl.col("__jump")).fill_null(False).alias("__unsorted"),
        pl.col("__jump").cast(pl.Int32).cum_sum().over(KEY).alias(SEGMENT),
    )
    jumps = frame.filter(pl.col("__jump"))[ROW]
    unsorted = frame.filter(pl.col("__unsorted"))[ROW]
    if jumps.len() > 0:
        log.add(
            "jumps",
            jumps,
            f"backward clock jump{{s}} larger than jump_s={spec.jump_s:g} s, each starting a new segment",
        )
    if unsorted.len() > 0:
        log.add("unsorted", unsorted, "row{s} earlier than the row before (sorted)")
    return frame.drop("__step", "__jump", "__unsorted"), unsorted.len(), jumps.len()


def _dedupe(frame: pl.DataFrame, spec: StreamSpec, averages: bool, log: _Log) -> tuple[pl.DataFrame, int]:
    """Exact duplicate (key, t_us) rows → one, by spec.duplicates (`mean` averages the numeric value
    columns of a kind that `averages`); `frame` is sorted by (key, t_us, row)."""
    numeric = _mean_columns(frame, spec, averages)
    frame = frame.with_columns(pl.col(c).cast(pl.Float64) for c in numeric)  # one schema, duplicates or not
    same_prev = ((pl.col(KEY) == pl.col(KEY).shift(1)) & (pl.col(T_US) == pl.col(T_US).shift(1))).fill_null(
        False
    )
    same_next = ((pl.col(KEY) == pl.col(KEY).shift(-1)) & (pl.col(T_US) == pl.col(T_US).shift(-1))).fill_null(
        False
    )
    removed = frame.select(same_next if spec.duplicates == "last" else same_prev).to_series()
    rows = frame.filter(removed)[ROW].sort()
    if rows.len() == 0:
        return frame, 0
    log.add(
        "duplicates",
        rows,
        f"exact duplicate timestamp{{s}} (same key and time) resolved by '{spec.duplicates}'",
    )
    if spec.duplicates != "mean":
        return frame.filter(~removed), rows.len()
    group = (~same_prev).cum_sum().alias("__group")
    others = [c for c in frame.columns if c not in numeric and c != "__group"]
    merged = (
        frame.with_columns(group)
        .group_by("__group", maintain_order=True)
        .agg(*(pl.col(c).first() for c in others), *(pl.col(c).mean() for c in numeric))
        .select(frame.columns)
    )
    return merged, rows.len()


def _mean_columns(frame: pl.DataFrame, spec: StreamSpec, averages: bool) -> list[str]:
    if spec.duplicates != "mean" or not averages:
        return []
    return [c for c in spec.columns if frame.schema[c].is_numeric()]
