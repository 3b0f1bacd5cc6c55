"""Media values from a client: base64 (or a base64 data URL) to bytes. A URL is never fetched and a
failure is an `Absent` with a reason (the field is predicted without), never an exception. What the
bytes may be (format, size, pixels, seconds) is the modality's to say: its `InputSpec.probe` checks
them from their header (plait.modalities.media_probe for images and audio)."""

from __future__ import annotations

import base64
import binascii
import re

from plait.modalities.contract import Probe
from plait.types import Absent

__all__ = ["URL_ABSENT", "Probe", "decode_base64"]

URL_ABSENT = Absent(
    "url not fetched", "URLs are not fetched; send the bytes (base64) or use /v1/predict/upload"
)
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
