"""The files a table references through its fields, for the bundle's provenance fingerprint.

Which columns name files is the modality's to say (`file_columns()`), so a new kind that reads files
is fingerprinted without code here knowing its name.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from plait.modalities.base import Modality
from plait.modalities.contract import file_columns


def media_paths(df: pl.DataFrame, modalities: dict[str, Modality], root: Path) -> list[Path]:
    """Every file the table references through a media field (for the provenance fingerprint)."""
    paths: list[Path] = []
    for modality in modalities.values():
        for column in file_columns(modality):  # the modality says which columns name files
            series = df[column]
            if series.dtype != pl.Utf8:
                continue
            for value in series.drop_nulls().to_list():
                if value.strip():
                    candidate = (root / value).resolve()
                    if candidate.is_relative_to(root.resolve()):
                        paths.append(candidate)
    return paths
