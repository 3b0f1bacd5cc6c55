"""plait: weave text, images, audio, sensor streams and tables into one model you can trust and serve.

The curated public API; everything else is internal and may change. Names are imported on first
use so that `plait --help` and light tools do not pay for importing torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "Absent": "plait.types",
    "Batch": "plait.types",
    "EncoderOutput": "plait.types",
    "FusionOutput": "plait.types",
    "ModelOutput": "plait.types",
    "BundleError": "plait.errors",
    "ConfigError": "plait.errors",
    "DataError": "plait.errors",
    "ModelNotFoundError": "plait.errors",
    "PlaitError": "plait.errors",
    "UnknownNameError": "plait.errors",
    "Config": "plait.config",
    "load_config": "plait.config",
    "TrainedModel": "plait.bundle",
    "load_bundle": "plait.bundle",
    "save_bundle": "plait.bundle",
    "Prediction": "plait.predictor",
    "Predictor": "plait.predictor",
}

__all__ = [
    "Absent",
    "Batch",
    "BundleError",
    "Config",
    "ConfigError",
    "DataError",
    "EncoderOutput",
    "FusionOutput",
    "ModelNotFoundError",
    "ModelOutput",
    "PlaitError",
    "Prediction",
    "Predictor",
    "TrainedModel",
    "UnknownNameError",
    "__version__",
    "load_bundle",
    "load_config",
    "save_bundle",
]

if TYPE_CHECKING:
    from plait.bundle import TrainedModel, load_bundle, save_bundle
    from plait.config import Config, load_config
    from plait.errors import (
        BundleError,
        ConfigError,
        DataError,
        ModelNotFoundError,
        PlaitError,
        UnknownNameError,
    )
    from plait.predictor import Prediction, Predictor
    from plait.types import Absent, Batch, EncoderOutput, FusionOutput, ModelOutput


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'plait' has no attribute '{name}'")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
