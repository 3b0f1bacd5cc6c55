"""Export a bundle's model for other runtimes: one ONNX graph taking each field's preprocessed
tensors and presence mask (plait.export.onnx_export), run by onnxruntime (plait.export.session)
and checked against torch on every subset of fields (plait.export.check)."""

from plait.export.deps import INSTALL, MissingExtraError
from plait.export.manifest import Manifest, read_manifest
from plait.export.onnx_export import ExportError, ExportResult, default_folder, export_onnx

__all__ = [
    "INSTALL",
    "ExportError",
    "ExportResult",
    "Manifest",
    "MissingExtraError",
    "default_folder",
    "export_onnx",
    "read_manifest",
]
