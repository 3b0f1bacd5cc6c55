"""What a stream kind declares beyond its window rule, so that code outside align/rules/ asks the
kind instead of comparing kind names (issue 14): its options, how its table columns are typed, whether
its rows are media files, how it is cleaned, whether it can be a signal for an offset estimate, and the
field that reads its columns from the sample table. One record per kind, at the foot of
rules/<kind>.py; the table of them is STREAM_KINDS in rules/__init__.py.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from plait.align.frames import RuleContext, RuleOutput

if TYPE_CHECKING:
    from plait.align.spec import StreamSpec

Rule = Callable[[pl.DataFrame, pl.DataFrame, "StreamSpec", RuleContext], RuleOutput]
Signal = Callable[[pl.DataFrame, "StreamSpec", Path], tuple[pl.DataFrame, list[str]]]


def no_check(spec: StreamSpec, path: str) -> None:
    """No option beyond those every stream is checked for."""


def kind_field(spec: StreamSpec, table: pl.DataFrame) -> dict[str, Any]:
    """A field of the stream's kind with no option of its own."""
    return {"kind": spec.kind}


def as_read(frame: pl.DataFrame, spec: StreamSpec) -> pl.DataFrame:
    """The value columns as the table holds them."""
    return frame


@dataclass(frozen=True)
class MediaFiles:
    """Rows that are media files: a table's `file` column, or a folder of files named by `pattern`.
    Every file is held to the data-root rule before anything opens it (load.py)."""

    columns: tuple[str, ...]  # the value columns of the cleaned stream frame (frames.py)
    unreadable: str  # the column that is null when a file is missing or cannot be read
    # each file's header read into columns before cleaning; the raw frame is frames.py's (OUTSIDE rows
    # must not be opened)
    headers: Callable[[pl.DataFrame, Path], pl.DataFrame] | None = None


@dataclass(frozen=True)
class StreamKind:
    name: str
    align: Rule  # the window rule: stream frame + anchors -> one row per anchor (frames.py)
    check: Callable[[StreamSpec, str], None] = no_check  # the options it needs; ConfigError at `path`
    field_spec: Callable[[StreamSpec, pl.DataFrame], dict[str, Any]] = kind_field  # reads its columns
    typed: Callable[[pl.DataFrame, StreamSpec], pl.DataFrame] = as_read  # a table source's value columns
    media: MediaFiles | None = None  # its rows are media files (None: the values are in the table)
    signal: Signal | None = None  # the frame and columns an offset is estimated from (None: not a signal)
    interpolates: bool = False  # `impute: interpolate` applies
    finite: bool = False  # a NaN/Inf/empty value is a gap: the row is dropped and counted
    jumps: bool = False  # a backward step over jump_s is a clock jump (a new segment), not an unsorted row
    averages: bool = False  # `duplicates: mean` averages its numeric value columns
    writes_media: bool = False  # its rule may write new files under the media dir
