"""Writing an estimated clock offset into the YAML config (`plait align --estimate-offset A B --write`)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import yaml

from plait.errors import ConfigError
from plait.registry import unknown_name_message


def write_offset(config_path: Path, stream: str, offset_s: float, key: str | None = None) -> None:
    """Set `streams.sources.<stream>.offset_s` (or `….offsets_s.<key>`, which adds to offset_s) in
    the YAML config; a streams file whose top level is `sources:` works too. The rest of the file is
    kept, but it is rewritten by yaml.safe_dump: comments and formatting are lost. The value is
    rounded to the microsecond, the resolution of time in plait."""
    path = Path(config_path)
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    sources = _sources_section(doc, path)
    if stream not in sources:
        raise ConfigError(f"{path}: {unknown_name_message('stream', stream, [str(s) for s in sources])}")
    spec = sources[stream]
    if not isinstance(spec, dict):
        raise ConfigError(f"{path}: streams.sources.{stream}: expected a mapping, got {spec!r}")
    value = round(float(offset_s), 6)
    if key is None:
        spec["offset_s"] = value
    else:
        per_key = spec.setdefault("offsets_s", {})
        if not isinstance(per_key, dict):
            raise ConfigError(
                f"{path}: streams.sources.{stream}.offsets_s: expected a mapping, got {per_key!r}"
            )
        per_key[key] = value
    text = yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(tmp, path)  # atomic: a crash never leaves half a config


def _sources_section(doc: Any, path: Path) -> dict[str, Any]:
    if isinstance(doc, dict) and isinstance(doc.get("streams"), dict):
        doc = doc["streams"]
    sources = doc.get("sources") if isinstance(doc, dict) else None
    if not isinstance(sources, dict):
        raise ConfigError(
            f"{path}: no `streams.sources` mapping to write the offset into; is this a plait config?"
        )
    return sources
