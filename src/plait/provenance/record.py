"""The provenance record a bundle carries (provenance.json): what made this model.

Same config hash + same table fingerprint + same media fingerprint + same seed (+ the package
versions recorded here) ⇒ the run can be reproduced. Versions come from package metadata, so
nothing heavy (Lightning) is imported to fill them in.
"""

from __future__ import annotations

import platform
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import polars as pl

from plait.errors import BundleError
from plait.provenance.fingerprint import FilesFingerprint, fingerprint_table, sha256_bytes

TRACKED_PACKAGES = ("torch", "lightning", "polars", "numpy", "torchmetrics", "safetensors", "tokenizers")
NOT_INSTALLED = "not installed"


def package_version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return NOT_INSTALLED


def package_versions() -> dict[str, str]:
    """{"python": "3.11.9", "torch": "2.5.1", …}; "not installed" for a missing package."""
    versions = {"python": platform.python_version()}
    versions.update({name: package_version(name) for name in TRACKED_PACKAGES})
    return versions


def platform_info() -> dict[str, str]:
    return {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "implementation": sys.implementation.name,
    }


def utc_now() -> str:
    """The current time as UTC ISO 8601, e.g. 2026-03-01T10:00:02+00:00 (whole seconds)."""
    return datetime.now(UTC).replace(microsecond=0).isoformat()


@dataclass(frozen=True)
class Provenance:
    """What went into a trained model. `media` is a FilesFingerprint as a dict (or None when the
    config has no file-backed field); `split` holds the train/val/test row counts."""

    plait_version: str
    created_at: str
    config_sha256: str
    table_sha256: str
    table_path: str
    table_rows: int
    seed: int
    split: Mapping[str, int]
    media: Mapping[str, Any] | None = None
    package_versions: Mapping[str, str] = field(default_factory=dict)
    platform: Mapping[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """Plain JSON data (dicts, strings, numbers)."""
        return {
            "plait_version": self.plait_version,
            "created_at": self.created_at,
            "config_sha256": self.config_sha256,
            "table_sha256": self.table_sha256,
            "table_path": self.table_path,
            "table_rows": self.table_rows,
            "seed": self.seed,
            "split": dict(self.split),
            "media": dict(self.media) if self.media is not None else None,
            "package_versions": dict(self.package_versions),
            "platform": dict(self.platform),
        }

    @staticmethod
    def from_json(raw: Mapping[str, Any]) -> Provenance:
        """Read `to_json` output back; unknown keys (from newer versions) are ignored."""
        required = (
            "plait_version",
            "created_at",
            "config_sha256",
            "table_sha256",
            "table_path",
            "table_rows",
        )
        absent = [key for key in (*required, "seed", "split") if key not in raw]
        if absent:
            raise BundleError(
                f"provenance.json: missing {', '.join(absent)}; expected the keys written by plait's "
                "Provenance.to_json — the file is incomplete or not a plait provenance record"
            )
        try:
            return Provenance(
                plait_version=str(raw["plait_version"]),
                created_at=str(raw["created_at"]),
                config_sha256=str(raw["config_sha256"]),
                table_sha256=str(raw["table_sha256"]),
                table_path=str(raw["table_path"]),
                table_rows=int(raw["table_rows"]),
                seed=int(raw["seed"]),
                split={str(k): int(v) for k, v in dict(raw["split"]).items()},
                media=dict(raw["media"]) if raw.get("media") is not None else None,
                package_versions={str(k): str(v) for k, v in dict(raw.get("package_versions", {})).items()},
                platform={str(k): str(v) for k, v in dict(raw.get("platform", {})).items()},
            )
        except (TypeError, ValueError) as exc:
            raise BundleError(
                f"provenance.json: a value has the wrong type ({exc}); expected to_json's output"
            ) from None


def collect_provenance(
    *,
    config_text: str,
    table: pl.DataFrame,
    table_path: Path | str,
    seed: int,
    split_sizes: Mapping[str, int],
    media: FilesFingerprint | None = None,
) -> Provenance:
    """A record for the run now: hashes of the config text and the table content, versions,
    platform and the time. `split_sizes` e.g. `Split.sizes()`."""
    return Provenance(
        plait_version=package_version("plait"),
        created_at=utc_now(),
        config_sha256=sha256_bytes(config_text),
        table_sha256=fingerprint_table(table),
        table_path=Path(table_path).as_posix(),
        table_rows=table.height,
        seed=seed,
        split={str(k): int(v) for k, v in split_sizes.items()},
        media=media.to_json() if media is not None else None,
        package_versions=package_versions(),
        platform=platform_info(),
    )
