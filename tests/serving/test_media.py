"""Client media values: base64 and data URLs; magic-byte sniffing and the limits the image and audio
modalities' probes read from the header."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
import soundfile as sf
from PIL import Image

from plait.modalities.audio import AudioModality
from plait.modalities.contract import InputLimits, Probe
from plait.modalities.image import ImageModality
from plait.modalities.media_probe import probe_audio, probe_image, sniff
from plait.serving.media import URL_ABSENT, decode_base64
from plait.types import Absent


def _png(width: int = 4, height: int = 3) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height)).save(out, format="PNG")
    return out.getvalue()


def _wav(seconds: float) -> bytes:
    out = io.BytesIO()
    sf.write(out, np.zeros(int(8000 * seconds), dtype=np.float32), 8000, format="WAV")
    return out.getvalue()


def test_base64_plain_data_url_and_urlsafe_decode_to_the_same_bytes() -> None:
    data = bytes(range(256))
    plain = base64.b64encode(data).decode()
    assert decode_base64(plain) == data
    assert decode_base64(f"data:application/octet-stream;base64,{plain}") == data
    assert decode_base64(base64.urlsafe_b64encode(data).decode().rstrip("=")) == data
    assert decode_base64(" \n" + plain[:40] + "\n" + plain[40:]) == data  # line breaks are allowed


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("https://example.com/a.png", "url not fetched"),
        ("data:image/png,abc", "undecodable"),
        ("@@@", "undecodable"),
    ],
)
def test_bad_values_become_absent_with_a_reason(text: str, reason: str) -> None:
    out = decode_base64(text)
    assert isinstance(out, Absent) and out.reason == reason
    assert decode_base64("http://x") is URL_ABSENT


def test_sniff_reads_magic_bytes_not_names() -> None:
    assert sniff(_png()) == "png" and sniff(_wav(0.1)) == "wav"
    assert sniff(b"\xff\xd8\xff\xe0rest") == "jpeg" and sniff(b"fLaC....") == "flac"
    assert sniff(b"just text") is None


def test_probes_check_limits_and_content_from_the_header() -> None:
    assert probe_image(_png(), max_bytes=10_000, max_pixels=100) == Probe(pixels=12)
    too_big = probe_image(_png(20, 20), max_bytes=10_000, max_pixels=100)
    assert isinstance(too_big, Absent) and too_big.reason == "too large" and "20x20" in too_big.detail
    wrong = probe_image(_wav(0.1), max_bytes=100_000, max_pixels=100)
    assert isinstance(wrong, Absent) and wrong.reason == "wrong content" and "WAV" in wrong.detail
    long = probe_audio(_wav(2.0), max_bytes=100_000, max_seconds=1.0)
    assert isinstance(long, Absent) and long.reason == "too long"
    assert probe_audio(b"", max_bytes=10, max_seconds=1.0) is None
    heavy = probe_audio(_wav(0.1), max_bytes=10, max_seconds=1.0)
    assert isinstance(heavy, Absent) and heavy.reason == "too large"
    assert probe_audio(_wav(2.0), max_bytes=100_000, max_seconds=5.0, read_s=0.5) == Probe(seconds=0.5)


def test_the_modalities_build_their_probes_from_the_server_limits() -> None:
    limits = InputLimits(max_file_bytes=100_000, max_image_pixels=100, max_audio_seconds=1.0)
    image = ImageModality("photo", max_pixels=50).input_spec(limits)
    assert image.roles == {"photo": "media"} and image.limits == {"max_pixels": 50, "max_bytes": 100_000}
    assert image.probe is not None and isinstance(image.probe(_png(8, 8)), Absent)  # 64 > its own 50
    assert image.widget.control == "file" and image.widget.preview == "img"
    audio = AudioModality("sound", offset_column="start_s", max_seconds=0.05).input_spec(limits)
    assert audio.roles == {"sound": "media", "start_s": "number"} and audio.main_columns == ("sound",)
    assert audio.probe is not None and audio.probe(_wav(0.5)) == Probe(seconds=0.05)  # what it reads
    too_long = audio.probe(_wav(2.0))
    assert isinstance(too_long, Absent) and too_long.reason == "too long"
