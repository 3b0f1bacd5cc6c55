"""A multichannel sensor sequence per row, encoded by the masked 1-D conv encoder in conv.py.

`TimeseriesModality("vibration", channels=3, max_length=512)` reads, per row, either an array in
the table (list of lists [T][C], a flat list [T] meaning C = 1, a numpy array, or the same as JSON
text such as "[[0.1, 2], [0.3, 1]]") or a path to a per-row file under the media root (.npy;
.csv with one column per channel and an optional header; .parquet, one numeric column per channel).
Longer sequences keep their first `max_length` steps.

Missing readings are never filled in: `load` returns FloatTensor[T, C] (standardised) with NaN
where a reading is NaN or infinite, and `collate` turns NaN into 0 and builds the step mask.
A step counts as real when AT LEAST ONE of its channels is finite; its non-finite channels are 0
(= the training mean after standardisation) in the values. We keep such steps because sensor
streams often drop one channel at a time, and dropping the whole step would discard the readings
that did arrive; a step with no finite channel is masked out.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import polars as pl
import torch
from torch import Tensor

from plait.errors import BundleError, ConfigError, DataError
from plait.modalities.base import JSONState, NotFittedError, is_empty, require_columns, resolve_media_path
from plait.modalities.contract import InputLimits, InputSpec, Widget
from plait.modalities.conv import MaskedConv1dEncoder
from plait.modalities.multiscale import MultiScaleSeriesEncoder
from plait.modalities.options import choice, optional_column, positive_int, short_error
from plait.modalities.summary import series_stats
from plait.types import Absent

FIT_LIMIT = 1024  # training values used for the channel statistics
FILE_TYPES = (".npy", ".csv", ".parquet")
ENCODERS = ("conv1d", "multiscale")  # the first is the default; see build_encoder
LEGACY_ENCODER = "conv1d"  # what a bundle saved before the encoder option was built with


def _read_csv(path: Path) -> np.ndarray:
    """One column per channel; the first line is a header when any of its cells is not a number."""
    with path.open("r", encoding="utf-8", errors="replace") as fh:
        first = fh.readline()
    header = False
    for cell in first.strip().split(","):
        try:
            float(cell) if cell.strip() else None
        except ValueError:
            header = True
    return np.genfromtxt(path, delimiter=",", skip_header=int(header), dtype=np.float64, ndmin=2)


def read_series_file(path: Path) -> np.ndarray:
    """float64 array of a per-row file; raises on any decoding problem (the caller reports it)."""
    suffix = path.suffix.lower()
    if suffix == ".npy":
        return np.asarray(np.load(path, allow_pickle=False), dtype=np.float64)
    if suffix == ".csv":
        return _read_csv(path)
    return pl.read_parquet(path).to_numpy().astype(np.float64)


class TimeseriesModality:
    """One sequence per row → standardised FloatTensor[T, C] (NaN = missing reading)."""

    kind: ClassVar[str] = "timeseries"
    perturbations: ClassVar[tuple[str, ...]] = ("gaussian_noise", "time_shift", "sample_dropout")
    noise_family: ClassVar[str] = "gaussian_noise"

    def __init__(
        self,
        name: str,
        *,
        column: str | None = None,
        channels: int | None = None,
        max_length: int = 1024,
        encoder: str = ENCODERS[0],
    ) -> None:
        optional_column(name, "column", column)
        self.name = name
        self.encoder = choice(name, "encoder", encoder, ENCODERS)
        self.column = column if column is not None else name
        self.channels = None if channels is None else positive_int(name, "channels", channels, maximum=4096)
        self.max_length = positive_int(name, "max_length", max_length, maximum=1_000_000)
        self._mean: np.ndarray | None = None  # (C,) float64, set by fit/set_state
        self._std = np.ones(0)

    def columns(self) -> tuple[str, ...]:
        return (self.column,)

    def input_spec(self, limits: InputLimits) -> InputSpec:
        """A JSON array [T] or [T][C] of numbers (or JSON text of one); never a file path."""
        return InputSpec(
            roles={self.column: "array"},
            accepts="a JSON array [T] or [T][C] of numbers",
            widget=Widget("json", hint="a JSON array of numbers, e.g. [[0.1, 0.2, 0.3], …]"),
        )

    def file_columns(self) -> tuple[str, ...]:
        """A path to a per-row .npy/.csv/.parquet file is a file the field reads (provenance)."""
        return (self.column,)

    # ---- reading ---------------------------------------------------------------------------

    def _raw(self, value: object, root: Path) -> np.ndarray | Absent:
        """float64 (T, C) with NaN for non-finite readings, before the channel check."""
        if is_empty(value):
            return Absent("empty")
        try:
            if isinstance(value, str) and value.lstrip().startswith("["):
                array = np.asarray(json.loads(value), dtype=np.float64)  # JSON text from a CSV table
            elif isinstance(value, str):
                path = resolve_media_path(value, root, self.name)
                if not path.is_file():
                    return Absent("unreadable", detail=str(path))
                if path.suffix.lower() not in FILE_TYPES:
                    return Absent(
                        "undecodable", f"unsupported file type '{path.suffix}'; use .npy, .csv or .parquet"
                    )
                array = read_series_file(path)
            else:
                array = np.asarray(value, dtype=np.float64)
        except DataError:
            raise
        except OSError as exc:
            return Absent("unreadable", short_error(exc))
        except Exception as exc:  # numpy/polars raise many types on malformed files or cells
            return Absent("undecodable", short_error(exc))
        return self._shape(array)

    def _shape(self, array: np.ndarray) -> np.ndarray | Absent:
        if array.ndim == 1:
            array = array[:, None]  # (T,) -> (T, 1)
        if array.ndim != 2 or array.shape[1] == 0:
            return Absent("wrong shape", f"expected [T] or [T, C] values, got shape {array.shape}")
        if array.shape[0] == 0:
            return Absent("empty")
        array = array[: self.max_length].copy()
        array[~np.isfinite(array)] = np.nan
        if not np.isfinite(array).any():
            return Absent("non-finite", f"none of the {array.shape[0]} steps has a finite reading")
        return array

    def load(self, row: Mapping[str, Any], root: Path) -> Tensor | Absent:
        mean, std = self._stats()
        array = self._raw(row.get(self.column), root)
        if isinstance(array, Absent):
            return array
        if array.shape[1] != mean.shape[0]:
            return Absent("wrong shape", f"expected {mean.shape[0]} channels, got {array.shape[1]}")
        with np.errstate(over="ignore", invalid="ignore"):  # absurd readings overflow: handled below
            scaled = ((array - mean) / std).astype(np.float32)  # (T, C)
        scaled[~np.isfinite(scaled)] = np.nan  # float32 overflow of absurd readings is missing too
        return torch.from_numpy(scaled)

    # ---- fitting and state -----------------------------------------------------------------

    def fit(self, table: pl.DataFrame, root: Path) -> None:
        require_columns(table, self.name, self.columns())
        values = [v for v in table[self.column].to_list() if not is_empty(v)]
        channels = self.channels if self.channels is not None else self._first_channel_count(values, root)
        if channels is None:
            raise DataError(
                f"field '{self.name}': column '{self.column}' has no decodable sequence in the "
                f"{table.height} training rows to take the channel count from; fix the values or "
                f"set fields.{self.name}.channels"
            )
        total, squares, counts = np.zeros(channels), np.zeros(channels), np.zeros(channels)
        used = 0
        # A seeded permutation: a deterministic sample that does not depend on the row order.
        for index in np.random.default_rng(0).permutation(len(values)).tolist():
            if used >= FIT_LIMIT:
                break
            array = self._raw(values[index], root)
            if isinstance(array, Absent) or array.shape[1] != channels:
                continue
            finite = np.isfinite(array)
            clean = np.where(finite, array, 0.0)  # (T, C)
            total += clean.sum(axis=0)
            squares += np.square(clean).sum(axis=0)
            counts += finite.sum(axis=0)
            used += 1
        self._set_stats(*self._finish(total, squares, counts))

    def _first_channel_count(self, values: list[Any], root: Path) -> int | None:
        """The channel count of the first decodable training value in table order."""
        for value in values:
            array = self._raw(value, root)
            if not isinstance(array, Absent):
                return int(array.shape[1])
        return None

    @staticmethod
    def _finish(total: np.ndarray, squares: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        safe = np.maximum(counts, 1.0)
        mean = total / safe
        std = np.sqrt(np.maximum(squares / safe - mean**2, 0.0))
        # A channel never observed, or constant, is centred but not scaled.
        std = np.where((counts > 0) & (std > 1e-8), std, 1.0)
        return np.where(counts > 0, mean, 0.0), std

    def _set_stats(self, mean: np.ndarray, std: np.ndarray) -> None:
        self._mean = np.asarray(mean, dtype=np.float64)
        self._std = np.asarray(std, dtype=np.float64)

    def _stats(self) -> tuple[np.ndarray, np.ndarray]:
        if self._mean is None:
            raise NotFittedError.for_field(self.name, self.kind)
        return self._mean, self._std

    def get_state(self) -> JSONState:
        mean, std = self._stats()
        return {
            "column": self.column,
            "channels": int(mean.shape[0]),
            "mean": mean.tolist(),
            "std": std.tolist(),
            "encoder": self.encoder,
        }

    def set_state(self, state: JSONState) -> None:
        try:
            channels = int(state["channels"])
            mean = [float(m) for m in state["mean"]]
            std = [float(s) for s in state["std"]]
            column = str(state["column"])
            encoder = choice(self.name, "encoder", state.get("encoder", LEGACY_ENCODER), ENCODERS)
        except (KeyError, TypeError, ValueError, ConfigError) as exc:
            raise BundleError(
                f"field '{self.name}': timeseries state is malformed ({short_error(exc)}); expected keys "
                "column, channels, mean, std — re-save the bundle"
            ) from None
        if len(mean) != channels or len(std) != channels or not all(s > 0 for s in std):
            raise BundleError(
                f"field '{self.name}': timeseries state says {channels} channels but holds {len(mean)} "
                f"means and {len(std)} stds (all stds must be > 0); re-save the bundle"
            )
        if self.channels is not None and self.channels != channels:
            raise BundleError(
                f"field '{self.name}': the saved state has {channels} channels but the field is "
                f"configured with channels={self.channels}; use the config saved with the bundle"
            )
        self.column = column
        self.encoder = encoder  # the encoder the saved weights belong to
        self._set_stats(np.array(mean), np.array(std))

    # ---- batching and encoder --------------------------------------------------------------

    def collate(self, items: Sequence[Tensor | None]) -> tuple[Tensor, Tensor | None]:
        """values [B, T_max, C] (0 where missing), mask [B, T_max] (True = step with a reading)."""
        channels = self._stats()[0].shape[0]
        longest = max((item.shape[0] for item in items if item is not None), default=1)
        values = torch.zeros(len(items), longest, channels)
        mask = torch.zeros(len(items), longest, dtype=torch.bool)
        for i, item in enumerate(items):
            if item is None:
                continue
            finite = torch.isfinite(item)  # (T, C)
            values[i, : item.shape[0]] = torch.where(finite, item, torch.zeros_like(item))
            mask[i, : item.shape[0]] = finite.any(dim=1)
        return values, mask

    def strides(self) -> tuple[int, ...]:
        """Downsample long series so the token count stays modest (≤ max_length / 4)."""
        if self.max_length >= 256:
            return (2, 2, 1)
        if self.max_length >= 64:
            return (2, 1, 1)
        return (1, 1, 1)

    def summary_features(self, values: Tensor, mask: Tensor | None) -> Tensor:
        """For the boosting baseline: per channel statistics, quantiles and band energies."""
        return series_stats(values, mask)  # (B, T, C) -> (B, C * SERIES_STATS)

    def build_encoder(self, dim: int) -> MultiScaleSeriesEncoder | MaskedConv1dEncoder:
        """`conv1d` (default): three masked k=3 conv blocks; `multiscale`: a statistics token
        beside a multi-scale conv stem over per-row centred channels (opt-in: not better than
        conv1d on the data measured here, see bench/RESULTS.md "Encoders")."""
        channels = self._stats()[0].shape[0] if self.channels is None else self.channels
        if self.encoder == "multiscale":
            return MultiScaleSeriesEncoder(channels, dim, strides=self.strides())
        return MaskedConv1dEncoder(channels, dim, strides=self.strides(), channels_last=True)

    # ---- plait init: a column of series files ------------------------------------------------

    file_extensions: ClassVar[tuple[str, ...]] = FILE_TYPES
