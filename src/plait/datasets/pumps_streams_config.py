"""The plait config of the demo's raw streams: how `plait align` reads each one and which table-path
fields read the aligned columns."""

from __future__ import annotations

from typing import Any

from plait.datasets import pumps_signals as sig
from plait.datasets.pumps import DEMO_MODEL, DEMO_TRAIN, LABEL
from plait.task import CLASSIFICATION

VIB_RATE_HZ = 200  # the vibration sensor's nominal rate
NUMERIC = ("power_kw", "age_years", "rated_rpm")
CATEGORICAL = ("pump_model", "site")


def pumps_streams_config(thermal_offsets_s: dict[str, float], *, seed: int = 0) -> dict[str, Any]:
    """The plait config for the streams: align them, then train the demo's model on the samples."""
    numeric, categorical = ([f"machines_{c}" for c in cols] for cols in (NUMERIC, CATEGORICAL))
    sources = {
        "vibration": {"kind": "timeseries", "path": "vibration.parquet", "time_format": "epoch_ms",
                      "key": "machine", "columns": ["ax", "ay", "az"], "window_s": 1.28,
                      "rate_hz": float(VIB_RATE_HZ), "tolerance_s": 0.01, "impute": "interpolate",
                      "max_gap_s": 0.05, "duplicates": "mean"},
        "sound": {"kind": "audio", "path": "audio_index.csv", "time": "start", "key": "machine",
                  "file": "file", "duration_s": 1.0, "tolerance_s": 0.05},
        "thermal": {"kind": "image", "path": "thermal", "key": "machine",
                    "pattern": r"(?P<key>m\d+)_(?P<time>\d{8}T\d{6})\.png", "time_format": "%Y%m%dT%H%M%S",
                    "timezone": "UTC", "offsets_s": dict(thermal_offsets_s), "mode": "nearest",
                    "tolerance_s": 3.0},
        "note": {"kind": "text", "path": "log.csv", "key": "machine", "columns": ["text"],
                 "window_s": 3600.0},
        "machines": {"kind": "tabular", "path": "machines.csv", "key": "machine",
                     "columns": [*CATEGORICAL, *NUMERIC], "tolerance_s": 0.0},
    }  # fmt: skip
    fields = {
        "vibration": {"kind": "timeseries", "channels": 3, "max_length": sig.VIBRATION_STEPS},
        "sound": {"kind": "audio", "offset_column": "sound__offset_s", "duration_column": "sound__duration_s",
                  "sample_rate": sig.SOUND_RATE_HZ, "max_seconds": 1.0, "n_mels": 32, "n_fft": 256,
                  "hop_length": 128},
        "thermal": {"kind": "image", "size": sig.THERMAL_SIZE},
        "note": {"kind": "text", "max_tokens": 32, "vocab_size": 500},
        "machines": {"kind": "tabular", "numeric": numeric, "categorical": categorical},
    }  # fmt: skip
    return {
        "task": {"label": LABEL, "type": CLASSIFICATION},
        "streams": {
            "anchors": {"path": "events.csv", "time": "time", "key": "machine", "label": LABEL},
            "sources": sources,
            "output": "samples.parquet",
        },
        "fields": fields,
        "model": {"fusion": "gated", **DEMO_MODEL},
        "train": {**DEMO_TRAIN, "seed": seed},
        "output": "bundle",
    }  # fmt: skip
