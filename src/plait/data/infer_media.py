"""Media path columns for `plait init`: which kind, whether the files exist, their native format
(read from file headers only) and the folder that holds them all (data.root).

A kind claims a column of paths by its `file_extensions`, and reads the options its field gets
(an image's own size, an audio clip's own sample rate, …) from a sample of the files' headers
with its `options_from_files` (plait.modalities.contract).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from plait.modalities import MODALITIES
from plait.modalities.contract import file_extensions, options_from_files

MEDIA_SHARE = 0.8  # share of non-null values with a media extension that makes a path column
MAX_FILES_CHECKED = 200  # files whose existence and header are read, evenly spaced over the rows


@dataclass(frozen=True)
class MediaGuess:
    kind: str  # a registered kind that declares file_extensions
    why: str
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class MediaRoot:
    """The folder training resolves media paths under (data.root), and why it is that one;
    `outside`: paths that still resolve outside it (training refuses them), with an example."""

    path: Path
    why: str
    outside: int = 0  # of `checked`
    checked: int = 0
    example: str = ""


def media_kinds() -> list[tuple[str, tuple[str, ...]]]:
    """(kind, its file extensions) for every registered kind that reads files named in a column.
    A column can be claimed by one kind only: more than MEDIA_SHARE of its values must end in the
    kind's extensions, so kinds whose extensions differ never compete for it."""
    declared = ((kind, file_extensions(MODALITIES.get(kind))) for kind in MODALITIES)
    return [(kind, extensions) for kind, extensions in declared if extensions]


def guess_media(values: pl.Series, root: Path) -> MediaGuess | None:
    """A media kind when most non-empty strings end in one of its extensions, else None."""
    lowered = values.str.strip_chars().str.to_lowercase()
    for kind, extensions in media_kinds():
        hits = lowered.str.ends_with(extensions[0])
        for ext in extensions[1:]:
            hits = hits | lowered.str.ends_with(ext)
        mean = hits.mean()
        share = float(mean) if isinstance(mean, int | float) else 0.0
        if share < MEDIA_SHARE:
            continue
        files = values.filter(hits).str.strip_chars().unique(maintain_order=True).to_list()
        sample = _spread(files)
        found = [p for p in (resolve(v, root) for v in sample) if p.is_file()]
        seen = sorted({Path(v).suffix.lower() for v in sample})
        distinct = f"{len(files)} distinct files, " if len(files) < len(values) else ""
        why = (
            f"{share:.0%} of {len(values)} values are {kind} file paths ({', '.join(seen)}; "
            f"{distinct}{len(found)} of {len(sample)} checked exist)"
        )
        options, read = options_from_files(MODALITIES.get(kind), found)
        return MediaGuess(kind, why + (f"; {read}" if read else ""), options)
    return None


def resolve(value: str, root: Path) -> Path:
    """Where training looks for `value` (modalities/base.py resolve_media_path, which does not
    expand '~'), before symlinks are resolved."""
    path = Path(value)
    return path if path.is_absolute() else root / path


def _spread(values: Sequence[str]) -> list[str]:
    """At most MAX_FILES_CHECKED values, evenly spaced, so a sorted table is sampled throughout."""
    if len(values) <= MAX_FILES_CHECKED:
        return list(values)
    picks = np.linspace(0, len(values) - 1, MAX_FILES_CHECKED).round().astype(int)
    return [values[i] for i in picks]


def media_root(values: Sequence[str], base: Path) -> MediaRoot:
    """The folder to write as data.root for the media `values` (non-empty path strings).

    Training joins relative paths to data.root and refuses any path that resolves outside it. So
    with relative paths the root stays `base` (the table's folder, where init found them); with
    absolute paths only, it is `base` when they all lie under it, else their deepest common folder."""
    base = base.resolve()
    relative = [v for v in values if not Path(v).is_absolute()]
    absolute = [os.path.normpath(v) for v in values if Path(v).is_absolute()]
    if relative:
        root, why = base, "the table's folder, which relative media paths start from"
    else:
        folders = sorted({os.path.dirname(p) for p in absolute})
        try:
            common = Path(os.path.commonpath(folders)).resolve()
        except ValueError:  # paths on two drives (Windows): no folder holds them all
            common = base
        if common.is_relative_to(base):
            root, why = base, "the table's folder, which holds every media file"
        else:
            root, why = common, "the deepest folder holding every media file (the paths are absolute)"
    # Training resolves symlinks; check a sample the same way.
    sample = _spread(list(dict.fromkeys(values)))
    outside = [v for v in sample if not resolve(v, base).resolve().is_relative_to(root)]
    if outside and not relative:
        root = Path(os.path.commonpath([root, *(resolve(v, base).resolve().parent for v in outside)]))
        why += " (widened to hold the files symlinks point at)"
        outside = []
    return MediaRoot(
        path=root, why=why, outside=len(outside), checked=len(sample), example=outside[0] if outside else ""
    )
