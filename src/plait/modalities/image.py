"""An image file per row (or encoded image bytes), and a small CNN encoder.

`ImageModality("photo", size=64, channels=3)` decodes with Pillow, converts to RGB (or L for
channels=1), resizes to size × size (bilinear, aspect ratio not kept) and standardises each channel
with the training mean/std → FloatTensor[C, size, size]. JPEGs are decoded at a reduced scale
(`Image.draft`), about twice as fast. Images with more than `max_pixels` pixels are absent
("too large") before any pixel is decoded, so a decompression bomb costs nothing.
"""

from __future__ import annotations

import io
import itertools
import math
import os
from collections import Counter
from collections.abc import Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any, BinaryIO, ClassVar

import numpy as np
import polars as pl
import torch
from PIL import Image, ImageOps
from torch import Tensor, nn

from plait.errors import BundleError, ConfigError
from plait.modalities.base import (
    JSONState,
    NotFittedError,
    is_empty,
    require_columns,
    resolve_media_path,
    zero_absent,
    zeros_like_batch,
)
from plait.modalities.contract import InputLimits, InputSpec, Widget
from plait.modalities.conv import group_count
from plait.modalities.media_probe import IMAGE_FORMATS, probe_image
from plait.modalities.options import optional_column, positive_int, short_error
from plait.modalities.pixel_stats import channel_stats
from plait.modalities.summary import image_stats
from plait.types import Absent, EncoderOutput

FIT_LIMIT = 256  # decodable training images used for the channel statistics
INIT_MIN_SIZE = 8  # plait init: the smallest size the field takes
INIT_MAX_SIZE = 64  # plait init: the default size; larger images are scaled down to it
GREY_MODES = {"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"}


class ImageModality:
    """One image per row → standardised FloatTensor[channels, size, size]."""

    kind: ClassVar[str] = "image"
    perturbations: ClassVar[tuple[str, ...]] = ("blur", "occlusion", "pixel_noise", "pixel_gaussian")
    noise_family: ClassVar[str] = "pixel_noise"

    def __init__(
        self,
        name: str,
        *,
        column: str | None = None,
        size: int = 64,
        channels: int = 3,
        max_pixels: int = 40_000_000,
    ) -> None:
        optional_column(name, "column", column)
        if isinstance(channels, bool) or not isinstance(channels, int) or channels not in (1, 3):
            raise ConfigError(f"fields.{name}.channels: expected 1 (greyscale) or 3 (RGB), got {channels!r}")
        self.name = name
        self.column = column if column is not None else name
        self.size = positive_int(name, "size", size, minimum=8, maximum=1024)
        self.channels = channels
        self.max_pixels = positive_int(name, "max_pixels", max_pixels)
        self._mean: Tensor | None = None  # (C,), set by fit/set_state
        self._std = torch.ones(channels)

    def perturbation_context(self) -> dict[str, Any]:
        """Per-channel mean and std of training pixels in [0, 1] (occlusion fill, pixel_gaussian)."""
        state = self.get_state()
        return {"pixel_mean": state["mean"], "pixel_std": state["std"]}

    def columns(self) -> tuple[str, ...]:
        return (self.column,)

    def input_spec(self, limits: InputLimits) -> InputSpec:
        """Image bytes (base64 or an upload), checked from the header: format, bytes and pixels —
        the server's `max_image_pixels` lowers the field's own `max_pixels`, never raises it."""
        cap = limits.max_image_pixels
        max_pixels = self.max_pixels if cap is None else min(self.max_pixels, cap)
        return InputSpec(
            roles={self.column: "media"},
            accepts=f"base64 text or data URL, or a file upload ({IMAGE_FORMATS})",
            widget=Widget("file", accept="image/*", preview="img"),
            limits={"max_pixels": max_pixels, "max_bytes": limits.max_file_bytes},
            probe=partial(
                probe_image, max_bytes=limits.max_file_bytes, max_pixels=max_pixels, size=self.size
            ),
        )

    def file_columns(self) -> tuple[str, ...]:
        """Image paths are files the field reads (fingerprinted in provenance)."""
        return (self.column,)

    # ---- decoding --------------------------------------------------------------------------

    def pixels(self, value: object, root: Path) -> np.ndarray | Absent:
        """float32 (C, size, size) in [0, 1], or why there is none."""
        if is_empty(value) or (isinstance(value, bytes | bytearray) and len(value) == 0):
            return Absent("empty")
        if isinstance(value, bytes | bytearray):
            return self._decode(io.BytesIO(value))
        if not isinstance(value, str | os.PathLike):
            return Absent("undecodable", f"expected a file path or image bytes, got {type(value).__name__}")
        path = resolve_media_path(str(value), root, self.name)
        if not path.is_file():
            return Absent("unreadable", detail=str(path))
        try:
            with path.open("rb") as fh:  # Pillow reads lazily: a huge file is never read whole
                return self._decode(fh)
        except OSError as exc:  # opening failed; decoding errors are caught in _decode
            return Absent("unreadable", f"{path}: {short_error(exc)}")

    def _decode(self, source: BinaryIO) -> np.ndarray | Absent:
        mode = "RGB" if self.channels == 3 else "L"
        try:
            with Image.open(source) as image:
                width, height = image.size
                if width * height > self.max_pixels:
                    return Absent("too large", f"{width}x{height} pixels > max_pixels={self.max_pixels}")
                if image.format == "JPEG":
                    image.draft(mode, (self.size, self.size))  # decode at 1/2, 1/4 or 1/8 scale
                image.load()  # a truncated file raises OSError here, not later
                upright = ImageOps.exif_transpose(image)
                small = upright.convert(mode).resize((self.size, self.size), Image.Resampling.BILINEAR)
        except Image.DecompressionBombError as exc:  # beyond Pillow's own limit
            return Absent("too large", short_error(exc))
        except Exception as exc:  # Pillow's decoders raise many exception types on corrupt input
            return Absent("undecodable", short_error(exc))
        pixels = np.asarray(small, dtype=np.float32) / 255.0  # (S, S) or (S, S, C)
        if pixels.ndim == 2:
            return pixels[None]  # (S, S) -> (1, S, S)
        return np.ascontiguousarray(pixels.transpose(2, 0, 1))  # (S, S, C) -> (C, S, S)

    def load(self, row: Mapping[str, Any], root: Path) -> Tensor | Absent:
        mean, std = self._stats()
        pixels = self.pixels(row.get(self.column), root)
        if isinstance(pixels, Absent):
            return pixels
        x = torch.from_numpy(pixels)
        return (x - mean[:, None, None]) / std[:, None, None]  # (C, S, S)

    # ---- fitting and state -----------------------------------------------------------------

    def fit(self, table: pl.DataFrame, root: Path) -> None:
        require_columns(table, self.name, self.columns())
        values = [v for v in table[self.column].to_list() if not is_empty(v)]

        def read(value: Any) -> np.ndarray | Absent:
            p = self.pixels(value, root)
            return p if isinstance(p, Absent) else p.reshape(self.channels, -1)  # (C, N)

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
        return {"column": self.column, "channels": self.channels, "mean": mean.tolist(), "std": std.tolist()}

    def set_state(self, state: JSONState) -> None:
        try:
            column = str(state["column"])
            channels = int(state["channels"])
            mean = [float(m) for m in state["mean"]]
            std = [float(s) for s in state["std"]]
        except (KeyError, TypeError, ValueError) as exc:
            raise BundleError(
                f"field '{self.name}': image state is malformed ({short_error(exc)}); expected keys "
                "column, channels, mean, std — re-save the bundle"
            ) from None
        if channels != self.channels:
            raise BundleError(
                f"field '{self.name}': the saved state is for {channels} channel(s) but the field is "
                f"configured with channels={self.channels}; use the config saved with the bundle"
            )
        if len(mean) != channels or len(std) != channels or not all(s > 0 and math.isfinite(s) for s in std):
            raise BundleError(
                f"field '{self.name}': image state holds {len(mean)} means and {len(std)} stds for "
                f"{channels} channel(s) (stds must be finite and > 0); re-save the bundle"
            )
        self.column = column
        self._set_stats(mean, std)

    # ---- batching and encoder --------------------------------------------------------------

    def collate(self, items: Sequence[Tensor | None]) -> tuple[Tensor, Tensor | None]:
        shape = (self.channels, self.size, self.size)
        return zeros_like_batch(items, shape, torch.float32), None  # (B, C, S, S)

    def summary_features(self, values: Tensor, mask: Tensor | None) -> Tensor:
        """For the boosting baseline: an 8 × 8 picture per channel and its mean, std, min and max."""
        return image_stats(values)  # (B, C, S, S) -> (B, C * 68)

    def build_encoder(self, dim: int) -> ImageEncoder:
        return ImageEncoder(self.channels, dim)

    # ---- plait init: a column of image paths -------------------------------------------------

    file_extensions: ClassVar[tuple[str, ...]] = (
        ".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"
    )  # fmt: skip

    @staticmethod
    def options_from_files(paths: Sequence[Path]) -> tuple[dict[str, Any], str]:
        """The images' own `size` (the median longest side, 28 for 28×28 digits; never upscaled
        past it, larger images scaled to INIT_MAX_SIZE to keep training cheap) and `channels` (1
        when every sampled image is greyscale), from the headers of `paths` (Pillow decodes no
        pixel to tell the size)."""
        sides: list[int] = []
        modes: Counter[str] = Counter()
        shapes: Counter[str] = Counter()
        for path in paths:
            try:
                with Image.open(path) as image:
                    width, height = image.size
                    modes[image.mode] += 1
            except Exception:  # Pillow raises many types on files it cannot identify
                continue
            sides.append(max(width, height))
            shapes[f"{width}×{height}"] += 1
        if not sides:
            return {}, f"none of {len(paths)} files opened as an image; size and channels at their defaults"
        native = int(np.median(sides))
        size = min(max(native, INIT_MIN_SIZE), INIT_MAX_SIZE)
        grey = set(modes) <= GREY_MODES
        channels = 1 if grey else 3
        common = ", ".join(f"{shape} ({n})" for shape, n in shapes.most_common(2))
        if native > INIT_MAX_SIZE:
            sized = f"size {size} (scaled down from {native} to keep training cheap; raise it for detail)"
        elif native < INIT_MIN_SIZE:
            sized = f"size {size} (the smallest the image field takes)"
        else:
            sized = f"size {size} (their own)"
        mode_names = ", ".join(sorted(modes))
        tone = "greyscale → channels 1" if grey else "colour → channels 3"
        return (
            {"size": size, "channels": channels},
            f"read {len(sides)} headers: {common}, median longest side {native} → {sized}; "
            f"mode {mode_names}, {tone}",
        )


class ImageEncoder(nn.Module):
    """Four 3×3 stride-2 conv blocks (GroupNorm + GELU), widths growing to `dim`; each cell of
    the final feature map is a token: size 64 → 4×4 = 16 tokens, size 32 → 2×2 = 4."""

    def __init__(self, in_channels: int, dim: int) -> None:
        super().__init__()
        self.output_dim = dim
        widths = [in_channels, max(8, dim // 8), max(8, dim // 4), max(8, dim // 2), dim]
        blocks: list[nn.Module] = []
        for c_in, c_out in itertools.pairwise(widths):
            blocks += [
                nn.Conv2d(c_in, c_out, kernel_size=3, stride=2, padding=1),
                nn.GroupNorm(group_count(c_out), c_out),
                nn.GELU(),
            ]
        self.features = nn.Sequential(*blocks)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: Tensor, present: Tensor, mask: Tensor | None = None) -> EncoderOutput:
        feature_map = self.features(x)  # (B, C, S, S) -> (B, D, S/16, S/16)
        tokens = self.proj(feature_map.flatten(2).transpose(1, 2))  # (B, D, h, w) -> (B, h*w, D)
        tokens = tokens * present.to(tokens.dtype)[:, None, None]  # nothing leaks from absent images
        pooled = zero_absent(tokens.mean(dim=1), present)  # (B, D)
        return EncoderOutput(tokens=tokens, pooled=pooled, token_mask=None)
