"""Media values from a client: base64 (or a base64 data URL) to bytes, the format sniffed by magic
bytes, and the size, pixel and duration limits checked from the header alone. Every failure is an
`Absent` with a reason (the field is predicted without), never an exception; a URL is never fetched."""

from __future__ import annotations

import base64
import binascii
import io
import math
import re
import warnings
from dataclasses import dataclass

from plait.modalities.options import short_error
from plait.types import Absent

URL_ABSENT = Absent(
    "url not fetched", "URLs are not fetched; send the bytes (base64) or use /v1/predict/upload"
)
IMAGE_FORMATS = "PNG, JPEG, GIF, BMP or WebP"
AUDIO_FORMATS = "WAV, FLAC, OGG or MP3"
_DATA_URL = re.compile(r"^data:(?P<type>[^,;]*)(?P<params>(;[^,;]*)*),", re.IGNORECASE)


def decode_base64(text: str) -> bytes | Absent:
    """Bytes of base64 text or a base64 data URL; a URL or anything else fails with a reason."""
    value = text.strip()
    if value[:8].lower().startswith(("http://", "https://")):
        return URL_ABSENT
    match = _DATA_URL.match(value)
    if match is not None:
        if "base64" not in match.group("params").lower():
            return Absent("undecodable", "a data URL must be base64 (data:image/png;base64,…)")
        value = value[match.end() :]
    elif value[:5].lower() == "data:":
        return Absent("undecodable", "malformed data URL; expected data:<type>;base64,<data>")
    compact = "".join(value.split())
    try:
        if "-" in compact or "_" in compact:
            return base64.urlsafe_b64decode(compact + "=" * (-len(compact) % 4))
        return base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError) as exc:
        return Absent("undecodable", f"not valid base64 ({exc})")


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


_IMAGE = ("png", "jpeg", "gif", "bmp", "webp")
_AUDIO = ("wav", "flac", "ogg", "mp3")


@dataclass(frozen=True)
class Probe:
    """What decoding one media value will cost, read from its header: `pixels` an image decodes to
    (a JPEG decodes at a reduced scale, as the image modality asks Pillow to), or `seconds` of audio
    (at most the `read_s` the model reads of it)."""

    pixels: int = 0
    seconds: float = 0.0


def check_media(data: bytes, kind: str, *, max_bytes: int, limit: float) -> bytes | Absent | None:
    """`data` when it is acceptable `kind` media ("image" or "audio"), else why not; None when empty.
    `limit`: the most pixels of an image, or the most seconds of audio."""
    checked = probe_media(data, kind, max_bytes=max_bytes, limit=limit)
    return checked if checked is None or isinstance(checked, Absent) else data


def probe_media(
    data: bytes, kind: str, *, max_bytes: int, limit: float, size: int = 0, read_s: float = math.inf
) -> Probe | Absent | None:
    """`check_media`, returning the value's decoding cost (`Probe`) when it is acceptable.
    `size`: the side an image is resized to (a JPEG is drafted towards it); `read_s`: the most
    seconds of audio the model reads."""
    if len(data) == 0:
        return None
    if len(data) > max_bytes:
        return Absent("too large", f"{len(data)} bytes > max_bytes={max_bytes}")
    found = sniff(data)
    wanted, formats = (_IMAGE, IMAGE_FORMATS) if kind == "image" else (_AUDIO, AUDIO_FORMATS)
    if found not in wanted:
        what = "bytes of no known media format" if found is None else f"{found.upper()} bytes"
        return Absent("wrong content", f"expected {kind} ({formats}), got {what}")
    if kind == "image":
        return _check_pixels(data, int(limit), size)
    return _check_seconds(data, limit, read_s)


def _check_pixels(data: bytes, max_pixels: int, size: int) -> Probe | Absent:
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


def _check_seconds(data: bytes, max_seconds: float, read_s: float) -> Probe | Absent:
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
