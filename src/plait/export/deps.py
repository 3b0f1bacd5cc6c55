"""The optional ONNX libraries (`pip install 'plait[onnx]'`), imported where they are needed."""

from __future__ import annotations

import importlib
from types import ModuleType

from plait.errors import PlaitError

INSTALL = "pip install 'plait[onnx]'"


class MissingExtraError(PlaitError, ImportError):
    """An optional library plait needs for this command is not installed."""


def _require(module: str, what: str) -> ModuleType:
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtraError(
            f"{what} needs the '{module}' package ({exc}); install it with {INSTALL}"
        ) from None


def require_onnx() -> ModuleType:
    """The `onnx` package (writing and quantising graphs)."""
    _require("onnxscript", "ONNX export")  # torch.onnx's exporter is built on it
    return _require("onnx", "ONNX export")


def require_onnxruntime() -> ModuleType:
    """The `onnxruntime` package (running graphs)."""
    return _require("onnxruntime", "running an ONNX export")
