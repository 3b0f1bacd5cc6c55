"""A video file per row (or encoded video bytes) → sampled frames, and a per-frame CNN encoder.

`VideoModality("clip", fps=4, frames=16, size=32)` opens the file with PyAV (the optional extra
`plait[video]`, imported only here and only when a video field is built), reads at most the first
`max_seconds`, keeps the first decoded frame at or after each multiple of 1/fps (by timestamp, so a
frame is never repeated or made up), at most `frames` of them, resizes each to size × size (area
averaging; aspect ratio not kept) in RGB or grey, and standardises each channel with the training
mean/std → FloatTensor[T, C, size, size]. `collate` pads T and returns the frame mask.

Only MP4/MOV, Matroska/WebM and AVI are opened, recognised by their first bytes and handed to that
one demuxer: FFmpeg's own format guessing would also open playlists (HLS) and concat lists, which
name other files or URLs. A packet that fails to decode costs its frame, which is skipped and
counted (`failed_frames`, `clips_with_failed_frames`); a clip with no decodable frame is absent.
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, ClassVar

import numpy as np
import polars as pl
import torch
from torch import Tensor, nn

from plait.errors import BundleError, ConfigError
from plait.modalities.base import (
    JSONState,
    NotFittedError,
    is_empty,
    masked_mean,
    require_columns,
    resolve_media_path,
    zero_absent,
)
from plait.modalities.contract import InputLimits, InputSpec, Probe, Widget
from plait.modalities.image import ImageEncoder
from plait.modalities.options import optional_column, positive_int, short_error
from plait.modalities.pixel_stats import channel_stats
from plait.modalities.summary import clip_stats
from plait.modalities.video_io import (
    FORMATS,
    VideoHeader,
    decoded_frames,
    demuxer_for,
    read_header,
    require_av,
)
from plait.types import Absent, EncoderOutput

if TYPE_CHECKING:
    pass

FIT_LIMIT = 32  # decodable training clips used for the channel statistics
MAX_VALUES = 1 << 24  # frames × channels × size² one row may hold (64 MB of float32)


def _number(field: str, key: str, value: object, maximum: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= maximum:
        raise ConfigError(f"fields.{field}.{key}: expected a number in (0, {maximum:g}], got {value!r}")
    return float(value)


class VideoModality:
    """One clip per row → standardised FloatTensor[T, channels, size, size], T ≤ frames."""

    kind: ClassVar[str] = "video"
    perturbations: ClassVar[tuple[str, ...]] = ("frame_drop", "frame_noise")
    noise_family: ClassVar[str] = "frame_noise"
    file_extensions: ClassVar[tuple[str, ...]] = (".mp4", ".avi", ".mov", ".mkv", ".webm")

    def __init__(
        self,
        name: str,
        *,
        column: str | None = None,
        fps: float = 4.0,
        frames: int = 16,
        size: int = 32,
        channels: int = 3,
        max_seconds: float = 10.0,
    ) -> None:
        require_av()  # fail when the field is built, not at the first clip
        optional_column(name, "column", column)
        if isinstance(channels, bool) or not isinstance(channels, int) or channels not in (1, 3):
            raise ConfigError(f"fields.{name}.channels: expected 1 (greyscale) or 3 (RGB), got {channels!r}")
        self.name = name
        self.column = column if column is not None else name
        self.fps = _number(name, "fps", fps, maximum=120.0)
        self.frames = positive_int(name, "frames", frames, maximum=512)
        self.size = positive_int(name, "size", size, minimum=8, maximum=256)
        self.channels = channels
        self.max_seconds = _number(name, "max_seconds", max_seconds, maximum=3600.0)
        per_row = self.frames * channels * self.size**2
        if per_row > MAX_VALUES:
            raise ConfigError(
                f"fields.{name}: frames={self.frames} × channels={channels} × size²={self.size**2} is "
                f"{per_row} values per row, over {MAX_VALUES}; lower frames or size"
            )
        self.failed_frames = 0  # frames lost to packets that failed to decode, in clips still used
        self.clips_with_failed_frames = 0
        self._mean: Tensor | None = None  # (C,), set by fit/set_state
        self._std = torch.ones(channels)

    def columns(self) -> tuple[str, ...]:
        return (self.column,)

    def file_columns(self) -> tuple[str, ...]:
        """Video paths are files the field reads (fingerprinted in provenance)."""
        return (self.column,)

    def perturbation_context(self) -> dict[str, Any]:
        """Per-channel mean and std of training pixels in [0, 1]."""
        state = self.get_state()
        return {"pixel_mean": state["mean"], "pixel_std": state["std"]}

    # ---- the HTTP contract -----------------------------------------------------------------

    def input_spec(self, limits: InputLimits) -> InputSpec:
        def probe(data: bytes) -> Probe | Absent | None:
            return self.probe(data, limits)

        return InputSpec(
            roles={self.column: "media"},
            accepts=f"base64 text or data URL, or a file upload ({FORMATS})",
            widget=Widget("file", accept="video/*", preview="video"),
            limits={"max_seconds": limits.max_video_seconds, "max_bytes": limits.max_file_bytes},
            probe=probe,
        )

    def probe(self, data: bytes, limits: InputLimits) -> Probe | Absent | None:
        """The cost of decoding `data`, from its header: every frame up to the last one sampled is
        decoded at full size, so pixels = width × height × those frames; seconds = what is read."""
        if len(data) == 0:
            return None
        if len(data) > limits.max_file_bytes:
            return Absent("too large", f"{len(data)} bytes > max_bytes={limits.max_file_bytes}")
        header = read_header(io.BytesIO(data))
        if isinstance(header, Absent):
            return header
        if header.seconds is not None and header.seconds > limits.max_video_seconds:
            return Absent("too long", f"{header.seconds:.1f} s > max_seconds={limits.max_video_seconds:g}")
        read_s = min(header.seconds or math.inf, self.max_seconds, self.frames / self.fps)
        decoded = max(1, math.ceil(read_s * header.rate_hz))
        return Probe(pixels=decoded * header.width * header.height, seconds=read_s)

    @staticmethod
    def options_from_files(paths: Sequence[Path]) -> tuple[dict[str, Any], str]:
        """fps no faster than the slowest clip; frames enough to cover the median clip (≤ 64)."""
        headers = []
        for path in paths[:8]:
            try:
                with Path(path).open("rb") as fh:
                    header = read_header(fh)
            except OSError:
                continue
            if isinstance(header, VideoHeader):
                headers.append(header)
        if not headers:
            return {}, f"none of {min(len(paths), 8)} files opened as video; fps and frames at defaults"
        rates = sorted(h.rate_hz for h in headers)
        lengths = sorted(h.seconds for h in headers if h.seconds is not None)
        fps = float(min(4, max(1, math.floor(rates[0]))))
        median = lengths[len(lengths) // 2] if lengths else 4.0
        frames = min(64, max(1, math.ceil(median * fps)))
        span = f", {lengths[0]:.1f}–{lengths[-1]:.1f} s long" if lengths else ""
        return {"fps": fps, "frames": frames}, (
            f"read {len(headers)} video headers ({rates[0]:g}–{rates[-1]:g} frames/s{span}): "
            f"sampling {fps:g} frames per second, up to {frames} frames (the median clip)"
        )

    # ---- decoding --------------------------------------------------------------------------

    def _pixels(self, value: object, root: Path) -> np.ndarray | Absent:
        """float32 (T, C, size, size) in [0, 1], or why there is none."""
        if is_empty(value):
            return Absent("empty")
        if isinstance(value, bytes | bytearray):
            return self._read(io.BytesIO(value))
        if not isinstance(value, str | os.PathLike):
            return Absent("undecodable", f"expected a file path or video bytes, got {type(value).__name__}")
        path = resolve_media_path(str(value), root, self.name)
        if not path.is_file():
            return Absent("unreadable", detail=str(path))
        try:
            if path.stat().st_size == 0:
                return Absent("empty", f"{path} is 0 bytes")
            with path.open("rb") as fh:  # a Python file: FFmpeg sees no path it could treat as a URL
                return self._read(fh)
        except OSError as exc:
            return Absent("unreadable", f"{path}: {short_error(exc)}")

    def _read(self, source: BinaryIO) -> np.ndarray | Absent:
        demuxer = demuxer_for(source.read(16))
        source.seek(0)
        if demuxer is None:
            return Absent("undecodable", f"not a video file of a known format ({FORMATS})")
        av = require_av()
        errors: list[str] = []
        try:
            with av.open(source, format=demuxer) as container:
                if not container.streams.video:
                    return Absent("undecodable", "the file holds no video stream")
                kept = self._sample(decoded_frames(container, container.streams.video[0], errors))
        except Exception as exc:  # FFmpeg reports corrupt input with many error types
            return Absent("undecodable", short_error(exc))
        if not kept:
            first = f" (first: {errors[0]})" if errors else ""
            return Absent("undecodable", f"no frame decoded; {len(errors)} packet(s) failed{first}")
        if errors:
            self.failed_frames += len(errors)
            self.clips_with_failed_frames += 1
        return np.stack(kept).astype(np.float32) / 255.0  # (T, C, S, S)

    def _sample(self, frames: Iterator[tuple[float, Any]]) -> list[np.ndarray]:
        """uint8 (C, S, S) of the first frame at or after each multiple of 1/fps."""
        pixel_format = "rgb24" if self.channels == 3 else "gray"
        kept: list[np.ndarray] = []
        start: float | None = None
        due = 0.0  # the next sampling time, in seconds from the first frame
        for time_s, frame in frames:
            start = time_s if start is None else start
            t = time_s - start
            if t >= self.max_seconds:
                break
            if t < due - 1e-6:
                continue
            pixels = frame.to_ndarray(
                width=self.size, height=self.size, format=pixel_format, interpolation="AREA"
            )  # (S, S, 3) or (S, S)
            kept.append(pixels.transpose(2, 0, 1) if pixels.ndim == 3 else pixels[None])
            if len(kept) == self.frames:
                break
            due = (math.floor(t * self.fps + 1e-6) + 1) / self.fps  # the next grid time after t
        return kept

    def load(self, row: Mapping[str, Any], root: Path) -> Tensor | Absent:
        mean, std = self._stats()
        pixels = self._pixels(row.get(self.column), root)
        if isinstance(pixels, Absent):
            return pixels
        x = torch.from_numpy(pixels)
        return (x - mean[:, None, None]) / std[:, None, None]  # (T, C, S, S)

    # ---- fitting and state -----------------------------------------------------------------

    def fit(self, table: pl.DataFrame, root: Path) -> None:
        require_columns(table, self.name, self.columns())
        values = [v for v in table[self.column].to_list() if not is_empty(v)]

        def read(value: Any) -> np.ndarray | Absent:  # (T, C, S, S) -> (C, T·S·S)
            p = self._pixels(value, root)
            return p if isinstance(p, Absent) else p.transpose(1, 0, 2, 3).reshape(self.channels, -1)

        mean, std = channel_stats(values, read, self.channels, FIT_LIMIT)
        self._set_stats(mean, std)

    def _set_stats(self, mean: list[float], std: list[float]) -> None:
        self._mean = torch.tensor(mean, dtype=torch.float32)
        self._std = torch.tensor(std, dtype=torch.float32)

    def _stats(self) -> tuple[Tensor, Tensor]:
        if self._mean is None:
            raise NotFittedError.for_field(self.name, self.kind)
        return self._mean, self._std

    def get_state(self) -> JSONState:
        mean, std = self._stats()
        return {
            "column": self.column,
            "channels": self.channels,
            "fps": self.fps,
            "frames": self.frames,
            "size": self.size,
            "max_seconds": self.max_seconds,
            "mean": mean.tolist(),
            "std": std.tolist(),
        }

    def set_state(self, state: JSONState) -> None:
        """The saved sampling (fps, frames, size, max_seconds) wins: it is what the model saw."""
        try:
            column, channels = str(state["column"]), int(state["channels"])
            fps, frames, max_seconds = float(state["fps"]), int(state["frames"]), float(state["max_seconds"])
            size = int(state["size"])
            mean = [float(m) for m in state["mean"]]
            std = [float(s) for s in state["std"]]
        except (KeyError, TypeError, ValueError) as exc:
            raise BundleError(
                f"field '{self.name}': video state is malformed ({short_error(exc)}); expected keys "
                "column, channels, fps, frames, size, max_seconds, mean, std — re-save the bundle"
            ) from None
        if channels != self.channels:
            raise BundleError(
                f"field '{self.name}': the saved state is for {channels} channel(s) but the field is "
                f"configured with channels={self.channels}; use the config saved with the bundle"
            )
        usable = all(s > 0 and math.isfinite(s) for s in std) and all(math.isfinite(m) for m in mean)
        if len(mean) != channels or len(std) != channels or not usable:
            raise BundleError(
                f"field '{self.name}': video state holds {len(mean)} means and {len(std)} stds for "
                f"{channels} channel(s) (finite, stds > 0); re-save the bundle"
            )
        if not (fps > 0 and max_seconds > 0 and frames >= 1 and size >= 8):
            raise BundleError(
                f"field '{self.name}': video state fps={fps}, frames={frames}, size={size}, "
                f"max_seconds={max_seconds} is not usable; re-save the bundle"
            )
        self.column, self.fps, self.frames, self.size, self.max_seconds = (
            column,
            fps,
            frames,
            size,
            max_seconds,
        )
        self._set_stats(mean, std)

    # ---- batching and encoder --------------------------------------------------------------

    def collate(self, items: Sequence[Tensor | None]) -> tuple[Tensor, Tensor | None]:
        """values [B, T_max, C, S, S] zero-padded; mask [B, T_max] True for real frames."""
        longest = max((item.shape[0] for item in items if item is not None), default=1)
        values = torch.zeros(len(items), longest, self.channels, self.size, self.size)
        mask = torch.zeros(len(items), longest, dtype=torch.bool)
        for i, item in enumerate(items):
            if item is not None:
                values[i, : item.shape[0]] = item
                mask[i, : item.shape[0]] = True
        return values, mask

    def summary_features(self, values: Tensor, mask: Tensor | None) -> Tensor:
        """For the boosting baseline: a 4 × 4 picture per channel and its statistics, averaged over
        the clip's frames, and how much they change from frame to frame."""
        return clip_stats(values, mask)  # (B, F, C, S, S) -> (B, 2 * C * 20)

    def build_encoder(self, dim: int) -> VideoEncoder:
        return VideoEncoder(self.channels, dim)


class VideoEncoder(nn.Module):
    """Every real frame through one ImageEncoder (weights shared across frames) → one token per
    frame; pooled = the mean over real frames, zero where the clip is absent. Padded frames and
    the frames of absent clips never reach the CNN."""

    def __init__(self, in_channels: int, dim: int) -> None:
        super().__init__()
        self.output_dim = dim
        self.frame = ImageEncoder(in_channels, dim)

    def forward(self, x: Tensor, present: Tensor, mask: Tensor | None = None) -> EncoderOutput:
        b, t = x.shape[:2]
        steps = torch.ones(b, t, dtype=torch.bool, device=x.device) if mask is None else mask.bool()
        steps = steps & present.bool()[:, None]  # (B, T)
        real = x[steps]  # (B, T, C, S, S) -> (N, C, S, S), N real frames
        tokens = x.new_zeros(b, t, self.output_dim)
        if real.shape[0] > 0:
            every = torch.ones(real.shape[0], dtype=torch.bool, device=x.device)
            tokens[steps] = self.frame(real, every).pooled.to(tokens.dtype)  # (N, D) -> (B, T, D)
        pooled = zero_absent(masked_mean(tokens, steps), present)  # (B, D)
        return EncoderOutput(tokens=tokens, pooled=pooled, token_mask=steps)
