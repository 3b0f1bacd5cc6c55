"""Client media values: base64 and data URLs, magic-byte sniffing, limits read from the header."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
import soundfile as sf
from PIL import Image

from plait.serving.media import URL_ABSENT, check_media, decode_base64, sniff
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


def test_check_media_limits_and_wrong_content() -> None:
    assert check_media(_png(), "image", max_bytes=10_000, limit=100) is not None
    too_big = check_media(_png(20, 20), "image", max_bytes=10_000, limit=100)
    assert isinstance(too_big, Absent) and too_big.reason == "too large" and "20x20" in too_big.detail
    wrong = check_media(_wav(0.1), "image", max_bytes=100_000, limit=100)
    assert isinstance(wrong, Absent) and wrong.reason == "wrong content" and "WAV" in wrong.detail
    long = check_media(_wav(2.0), "audio", max_bytes=100_000, limit=1.0)
    assert isinstance(long, Absent) and long.reason == "too long"
    assert check_media(b"", "audio", max_bytes=10, limit=1.0) is None
    heavy = check_media(_wav(0.1), "audio", max_bytes=10, limit=1.0)
    assert isinstance(heavy, Absent) and heavy.reason == "too large"
