"""Small media files made at test time (never downloaded): a video clip written with PyAV.

    path = write_test_video(tmp_path / "clip.mp4", frames=20, fps=10, size=(32, 24))
    data = test_video_bytes(frames=8, fps=4)          # the same, as MP4 bytes (a request body)

Frame i is a flat colour that changes with i and a bright square that moves right by one square
width per frame, so frames differ and a sampled frame can be told from its neighbours. MP4, MOV,
AVI and MKV hold MPEG-4 Part 2 (`mpeg4`, in every PyAV wheel, fast to encode); WebM holds VP8.
Needs PyAV (`pip install 'plait[video]'`).
"""

from __future__ import annotations

import io
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

CODECS = {".webm": "libvpx"}  # the container's codec where it is not mpeg4
FORMATS = {".mp4": "mp4", ".mov": "mov", ".avi": "avi", ".mkv": "matroska", ".webm": "webm"}


def write_test_video(
    path: Path,
    *,
    frames: int = 8,
    fps: float = 4,
    size: int | tuple[int, int] = (32, 24),
    colour: tuple[int, int, int] | None = None,
) -> Path:
    """Write a clip of `frames` frames at `fps` frames per second, `size` = side or (width, height)
    (even numbers), to `path`; the container follows the suffix (.mp4, .mov, .avi, .mkv, .webm).
    `colour`: the background of every frame (default: a colour that changes frame to frame)."""
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise ValueError(f"write_test_video: unknown suffix '{suffix}'; use one of {', '.join(FORMATS)}")
    with Path(path).open("wb") as fh:
        _encode(fh, FORMATS[suffix], CODECS.get(suffix, "mpeg4"), frames, fps, size, colour)
    return Path(path)


def test_video_bytes(
    *, frames: int = 8, fps: float = 4, size: int | tuple[int, int] = (32, 24), suffix: str = ".mp4"
) -> bytes:
    """The clip `write_test_video` writes, as bytes."""
    buffer = io.BytesIO()
    _encode(buffer, FORMATS[suffix], CODECS.get(suffix, "mpeg4"), frames, fps, size)
    return buffer.getvalue()


test_video_bytes.__test__ = False  # type: ignore[attr-defined]  # not a test, despite its name


def _encode(
    target: Any,
    container_format: str,
    codec: str,
    frames: int,
    fps: float,
    size: Any,
    colour: tuple[int, int, int] | None = None,
) -> None:
    import av

    width, height = (size, size) if isinstance(size, int) else size
    if width % 2 or height % 2 or frames < 1 or not fps > 0:
        raise ValueError(
            f"write_test_video: expected even width and height, frames >= 1 and fps > 0; got "
            f"size={size!r}, frames={frames}, fps={fps}"
        )
    with av.open(target, mode="w", format=container_format) as container:
        stream = container.add_stream(codec, rate=Fraction(fps).limit_denominator(1000))
        if not isinstance(stream, av.VideoStream):
            raise ValueError(f"write_test_video: codec '{codec}' did not give a video stream")
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for i in range(frames):
            image = av.VideoFrame.from_ndarray(_frame(i, width, height, colour), format="rgb24")
            container.mux(stream.encode(image))
        container.mux(stream.encode(None))  # flush the encoder


def _frame(i: int, width: int, height: int, colour: tuple[int, int, int] | None = None) -> np.ndarray:
    """uint8 (height, width, 3): a flat colour (`colour`, else set by i) and a white square at
    column side·i (wrapping)."""
    pixels = np.empty((height, width, 3), dtype=np.uint8)
    pixels[...] = (
        colour if colour is not None else ((37 * i) % 256, (90 + 23 * i) % 256, (200 - 11 * i) % 256)
    )
    side = max(2, min(width, height) // 4)
    left = (side * i) % max(1, width - side)
    pixels[:side, left : left + side] = 255
    return pixels
