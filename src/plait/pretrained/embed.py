"""`plait train --embed-weights`: copy the pretrained encoders' files into the bundle, so it loads
on a machine without the weight packages (their code packages are still needed). Without it a
bundle records only each encoder's name, version and sha256 (preprocessing.json), and loading
checks the installed weights against that hash."""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from plait.pretrained.weights import PackagedFile

WEIGHTS_FOLDER = "weights"


def embed_weights(bundle: Path, modalities: Mapping[str, Any]) -> list[str]:
    """Copy each pretrained field's packaged weight folder into BUNDLE/weights/DISTRIBUTION/;
    returns a line per field saying what was copied (or why not)."""
    lines: list[str] = []
    for name, modality in modalities.items():
        backbone = getattr(modality, "backbone", None)
        if backbone is None:
            continue
        packaged: PackagedFile | None = getattr(backbone, "packaged", None)
        if packaged is None:
            lines.append(
                f"{name}: {backbone.identity.name} is a folder of yours, not embedded; ship it beside the "
                "bundle at the same path"
            )
            continue
        source = packaged.folder() / Path(packaged.relative).parent
        target = bundle / WEIGHTS_FOLDER / packaged.distribution / Path(packaged.relative).parent
        if not (target / Path(packaged.relative).name).is_file():
            shutil.copytree(source, target, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__"))
        size = sum(p.stat().st_size for p in target.rglob("*") if p.is_file())
        lines.append(
            f"{name}: {backbone.identity.name} weights copied into {target} ({size / 2**20:.0f} MiB)"
        )
    return lines
