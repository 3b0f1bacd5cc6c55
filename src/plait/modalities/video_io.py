"""Reading video with PyAV for the video kind: the container formats opened, the header, and the
decoded frames. PyAV (the optional extra `plait[video]`) is imported only when a video is read.

Only MP4/MOV, Matroska/WebM and AVI are opened, recognised by their first bytes and handed to that
one demuxer: FFmpeg's own format guessing would also open playlists (HLS) and concat lists, which
name other files or URLs.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, BinaryIO

from plait.errors import ConfigError
from plait.modalities.options import short_error
from plait.types import Absent

if TYPE_CHECKING:
    from types import ModuleType

    import av.container
    import av.video

FORMATS = "MP4, WebM, AVI, MOV, MKV"
INSTALL = "pip install 'plait[video]'"


def require_av() -> ModuleType:
    """The PyAV module, or a ConfigError saying how to install it."""
    try:
        import av
    except ImportError:
        raise ConfigError(
            f"video fields read files with PyAV, which is not installed; install it with {INSTALL}"
        ) from None
    return av


def demuxer_for(head: bytes) -> str | None:
    """The FFmpeg demuxer for a file starting with `head` (16 bytes): mov, matroska or avi."""
    if head[4:8] in (b"ftyp", b"moov", b"mdat", b"wide", b"free", b"skip"):
        return "mov"  # ISO base media: MP4, MOV, 3GP
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "matroska"  # EBML: MKV, WebM
    if head.startswith(b"RIFF") and head[8:12] == b"AVI ":
        return "avi"
    return None


@dataclass(frozen=True)
class VideoHeader:
    """What a container's header says of its first video stream."""

    width: int
    height: int
    rate_hz: float  # frames per second (the stream's average rate, 30 when it gives none)
    seconds: float | None  # None when the container does not say (a live-recorded WebM)


def read_header(source: BinaryIO) -> VideoHeader | Absent:
    """The header of the video in `source`, opened without reading its frames (FFmpeg may decode
    a frame or two when the header leaves a codec parameter open). Absent: "wrong content" for
    another format or no video stream, "undecodable" for a broken header."""
    head = source.read(16)
    source.seek(0)
    demuxer = demuxer_for(head)
    if demuxer is None:
        return Absent("wrong content", f"expected video ({FORMATS}), got bytes of another format")
    av = require_av()
    try:
        with av.open(source, format=demuxer) as container:
            if not container.streams.video:
                return Absent("wrong content", "the file holds no video stream")
            stream = container.streams.video[0]
            rate = stream.average_rate or stream.guessed_rate or stream.base_rate
            seconds = container.duration / 1e6 if container.duration else None
            if seconds is None and stream.duration and stream.time_base:
                seconds = float(stream.duration * stream.time_base)
            width, height = stream.codec_context.width, stream.codec_context.height
    except Exception as exc:  # FFmpeg reports broken headers with many error types
        return Absent("undecodable", short_error(exc))
    if width <= 0 or height <= 0:
        return Absent("undecodable", f"the header gives a {width}x{height} frame size")
    return VideoHeader(width, height, float(rate) if rate else 30.0, seconds)


def decoded_frames(
    container: av.container.InputContainer, stream: av.video.VideoStream, errors: list[str]
) -> Iterator[tuple[float, Any]]:
    """(time in seconds, VideoFrame) in presentation order; a packet that fails to decode adds its
    error to `errors` and yields nothing, a demuxing error ends the clip there."""
    rate = float(stream.average_rate or 30)
    index = 0
    packets = container.demux(stream)
    while True:
        try:
            packet = next(packets)
        except StopIteration:
            return
        except Exception as exc:  # the rest of the file cannot be read: keep what was decoded
            errors.append(short_error(exc))
            return
        try:
            frames = packet.decode()
        except Exception as exc:  # one broken packet costs its frame, not the clip
            errors.append(short_error(exc))
            continue
        for frame in frames:
            yield (frame.time if frame.time is not None else index / rate), frame
            index += 1
