"""Media bytes checked from their header alone, for the image and audio modalities' `InputSpec.probe`:
the format sniffed by magic bytes, then the size, pixel and duration limits. Nothing is decoded,
and every failure is an `Absent` with a reason (the field is predicted without), never an exception.

    >>> probe = functools.partial(probe_image, max_bytes=10_000_000, max_pixels=16_000_000, size=64)
    >>> probe(png_bytes)
    Probe(pixels=12000, seconds=0.0)
"""

from __future__ import annotations

import io
import math
import warnings

from plait.modalities.contract import Probe
from plait.modalities.options import short_error
from plait.types import Absent

IMAGE_FORMATS = "PNG, JPEG, GIF, BMP or WebP"
AUDIO_FORMATS = "WAV, FLAC, OGG or MP3"
_IMAGE = ("png", "jpeg", "gif", "bmp", "webp")
_AUDIO = ("wav", "flac", "ogg", "mp3")


def sniff(data: bytes) -> str | None:
    """The media format of `data` by its magic bytes ("png", "wav", …), or None."""
    head = data[:16]
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "gif"
    if head.startswith(b"BM") and len(data) >= 26:
        return "bmp"
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "webp"
    if head.startswith((b"RIFF", b"RF64")) and head[8:12] == b"WAVE":
        return "wav"
    if head.startswith(b"fLaC"):
        return "flac"
    if head.startswith(b"OggS"):
        return "ogg"
    if head.startswith(b"ID3") or (len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        return "mp3"
    return None


def probe_image(data: bytes, *, max_bytes: int, max_pixels: int, size: int = 0) -> Probe | Absent | None:
    """The pixels `data` decodes to when it is an acceptable image, else why not; None when empty.
    `size`: the side the image is resized to — a JPEG is drafted towards it (decoded at 1/2, 1/4 or
    1/8 scale), as the image modality asks Pillow to, so it counts the pixels it decodes to."""
    refused = _refusal(data, max_bytes, _IMAGE, f"image ({IMAGE_FORMATS})")
    if refused is not None or not data:
        return refused
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:  # reads the header only
                width, height = image.size
                if width * height <= max_pixels and size > 0 and image.format == "JPEG":
                    image.draft("RGB", (size, size))  # sets the scale only; decodes nothing
                decoded = image.size[0] * image.size[1]
    except Image.DecompressionBombError as exc:
        return Absent("too large", short_error(exc))
    except Exception as exc:  # Pillow raises many types on corrupt headers
        return Absent("undecodable", short_error(exc))
    if width * height > max_pixels:
        return Absent("too large", f"{width}x{height} pixels > max_pixels={max_pixels}")
    return Probe(pixels=decoded)


def probe_audio(
    data: bytes, *, max_bytes: int, max_seconds: float, read_s: float = math.inf
) -> Probe | Absent | None:
    """The seconds of `data` the model reads (at most `read_s`) when it is acceptable audio of at
    most `max_seconds`, else why not; None when empty."""
    refused = _refusal(data, max_bytes, _AUDIO, f"audio ({AUDIO_FORMATS})")
    if refused is not None or not data:
        return refused
    import soundfile as sf

    try:
        info = sf.info(io.BytesIO(data))
        seconds = info.frames / info.samplerate
    except Exception as exc:  # libsndfile reports corrupt or unknown files with varied errors
        reason = getattr(exc, "error_string", None)
        return Absent("undecodable", reason if isinstance(reason, str) else short_error(exc))
    if seconds > max_seconds:
        return Absent("too long", f"{seconds:.1f} s > max_seconds={max_seconds:g}")
    return Probe(seconds=min(seconds, read_s))


def _refusal(data: bytes, max_bytes: int, formats: tuple[str, ...], expected: str) -> Absent | None:
    """Why `data` is refused before its header is read (too many bytes, another format), or None."""
    if not data:
        return None
    if len(data) > max_bytes:
        return Absent("too large", f"{len(data)} bytes > max_bytes={max_bytes}")
    found = sniff(data)
    if found not in formats:
        what = "bytes of no known media format" if found is None else f"{found.upper()} bytes"
        return Absent("wrong content", f"expected {expected}, got {what}")
    return None
