"""`manifest.json` of an ONNX export: which bundle it came from and what the graph takes and gives.

The serving runtime reads the input names and dtypes from it (never from guesses about the bundle)
and refuses an export whose `model_id` is not the bundle's: weights retrained since the export would
otherwise be served under the new bundle's id.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from plait.errors import BundleError
from plait.export.graph import FieldInput

MANIFEST = "manifest.json"
FORMAT = "plait-onnx"
FORMAT_VERSION = 1
FP32_FILE = "model.onnx"
INT8_FILE = "model.int8.onnx"


@dataclass(frozen=True)
class GraphFile:
    name: str  # file name in the export folder
    sha256: str
    size_bytes: int

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "sha256": self.sha256, "size_bytes": self.size_bytes}


@dataclass(frozen=True)
class Manifest:
    model_id: str  # the bundle's content id: an export serves only the bundle it was made from
    fields: tuple[FieldInput, ...]  # in the graph's input order
    outputs: tuple[str, ...]  # output, [weights], <field>.pooled…
    opset: int
    files: tuple[GraphFile, ...]  # model.onnx, and model.int8.onnx with --int8
    provenance: Mapping[str, Any] = field(default_factory=dict)  # the bundle's, summarised
    versions: Mapping[str, str] = field(default_factory=dict)  # torch, onnx, onnxruntime, plait
    # Per subset of fields ("+"-joined, "(none)" for the empty set): the largest |torch - graph| of
    # the output on the export-time check batch, for "fp32" and (with --int8) "int8".
    check: Mapping[str, Mapping[str, float]] = field(default_factory=dict)

    @property
    def with_weights(self) -> bool:
        return "weights" in self.outputs

    def file(self, int8: bool) -> GraphFile:
        name = INT8_FILE if int8 else FP32_FILE
        for one in self.files:
            if one.name == name:
                return one
        hint = "export with --int8" if int8 else "export again"
        raise BundleError(f"this ONNX export has no {name}; {hint} (`plait export BUNDLE --format onnx`)")

    def require_model(self, model_id: str, folder: Path) -> None:
        """Refuse an export made from another bundle (or from this one before it was retrained)."""
        if self.model_id != model_id:
            raise BundleError(
                f"the ONNX export at {folder} was made from model {self.model_id}, but the bundle is "
                f"model {model_id}; export it again (`plait export BUNDLE --format onnx`)"
            )

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "model_id": self.model_id,
            "opset": self.opset,
            "inputs": [_input_json(spec) for spec in self.fields],
            "outputs": list(self.outputs),
            "files": [f.to_json() for f in self.files],
            "provenance": dict(self.provenance),
            "versions": dict(self.versions),
            "check": {k: dict(v) for k, v in self.check.items()},
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Manifest:
        if data.get("format") != FORMAT or data.get("format_version") != FORMAT_VERSION:
            raise BundleError(
                f"not a plait ONNX manifest of version {FORMAT_VERSION} (format {data.get('format')!r}, "
                f"version {data.get('format_version')!r}); export the bundle again with this plait"
            )
        return cls(
            model_id=str(data["model_id"]),
            fields=tuple(_input_from_json(one) for one in data["inputs"]),
            outputs=tuple(data["outputs"]),
            opset=int(data["opset"]),
            files=tuple(GraphFile(f["name"], f["sha256"], int(f["size_bytes"])) for f in data["files"]),
            provenance=dict(data.get("provenance", {})),
            versions=dict(data.get("versions", {})),
            check={k: dict(v) for k, v in data.get("check", {}).items()},
        )


def read_manifest(folder: Path) -> Manifest:
    path = folder / MANIFEST
    if not path.is_file():
        raise BundleError(
            f"no ONNX export at {folder} ({MANIFEST} not found); write one with "
            "`plait export BUNDLE --format onnx`"
        )
    try:
        return Manifest.from_json(json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, KeyError, TypeError) as exc:
        raise BundleError(f"{path}: not a readable ONNX manifest ({exc}); export the bundle again") from None


def _input_json(spec: FieldInput) -> dict[str, Any]:
    """One field's inputs, with each axis named when it varies ("batch", "<field>.len<axis>")."""
    values = [
        "batch",
        *(f"{spec.field}.len{a}" if a in spec.values_axes else n for a, n in _axes(spec.shape)),
    ]
    out: dict[str, Any] = {
        "field": spec.field,
        "names": list(spec.names),
        "dtype": spec.dtype,
        "shape": values,
        "values_axes": list(spec.values_axes),
        "has_mask": spec.has_mask,
        "mask_axes": list(spec.mask_axes),
    }
    return out


def _axes(shape: tuple[int, ...]) -> list[tuple[int, int]]:
    return [(axis, n) for axis, n in enumerate(shape) if axis > 0]


def _input_from_json(data: Mapping[str, Any]) -> FieldInput:
    shape = tuple(1 if isinstance(n, str) else int(n) for n in data["shape"])
    return FieldInput(
        field=str(data["field"]),
        dtype=str(data["dtype"]),
        shape=shape,
        has_mask=bool(data["has_mask"]),
        values_axes=tuple(int(a) for a in data["values_axes"]),
        mask_axes=tuple(int(a) for a in data["mask_axes"]),
    )
