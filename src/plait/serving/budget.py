"""Decode budgets: no client holds the model process longer than its share.

Decoding media is the client's cost, and it grows with pixels, not bytes (a flat-colour 6300x6300
PNG is 116 KB and takes ~1.2 s to decode). Two budgets bound it:

- per request (`RequestBudget`, in the HTTP process, before anything is decoded): the pixels the
  request's images decode to and the seconds of audio it asks for, read from the media headers.
  Values are charged in request order; one that does not fit in what is left is marked
  `Absent(OVER_BUDGET, …)` and never reaches the model process.
- per batch (`DecodeClock`, in the model process): the wall time one batch spends decoding. Records
  are decoded cheapest first (`decode_costs`); a record whose images would take the batch past its
  budget (at the seconds per pixel measured so far), or that comes after the budget is spent, has
  its media skipped. An honest record with a small image is decoded before a hostile one with a
  near-limit image, and the batch ends near its budget (past it by one record's misestimate).

A value over a budget is reported `skipped` with the reason (the record is predicted without it) and
never counts against the field's circuit breaker.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from typing import Any

from plait.modalities.contract import InputLimits, MediaProbe, Probe
from plait.serving.loader import OVER_BUDGET
from plait.types import Absent

__all__ = [
    "BATCH_REASON",
    "COST_LIMITS",
    "OVER_BUDGET",
    "REQUEST_REASON",
    "DecodeClock",
    "RequestBudget",
    "decode_costs",
]
REQUEST_REASON = "request over its decode budget"
BATCH_REASON = "batch over its decode budget"
# The limits a batch's cost estimate probes with: every value the modality itself would decode is
# costed, whatever a server accepts (an image over the field's own max_pixels is refused by `load`
# from its header, decoding nothing, so it costs nothing).
COST_LIMITS = InputLimits(
    max_file_bytes=2**62, max_audio_seconds=math.inf, max_image_pixels=None, max_video_seconds=math.inf
)


class RequestBudget:
    """What one request may still decode: `charge(probe)` takes a value's cost from it, or says why
    the value does not fit (then nothing is taken)."""

    def __init__(self, max_pixels: int, max_audio_s: float) -> None:
        self.max_pixels = max_pixels
        self.max_audio_s = max_audio_s
        self.pixels = 0
        self.seconds = 0.0

    def charge(self, probe: Probe) -> Absent | None:
        if self.pixels + probe.pixels > self.max_pixels:
            return Absent(
                OVER_BUDGET,
                f"{REQUEST_REASON}: this image decodes to {probe.pixels} pixels and the request's "
                f"images before it to {self.pixels}, over max_request_pixels={self.max_pixels}; send "
                "fewer or smaller images per request (a video counts every frame it decodes)",
            )
        if self.seconds + probe.seconds > self.max_audio_s:
            return Absent(
                OVER_BUDGET,
                f"{REQUEST_REASON}: this clip is {probe.seconds:.1f} s and the request's clips before "
                f"it {self.seconds:.1f} s, over max_request_audio_s={self.max_audio_s:g}; send fewer "
                "clips per request",
            )
        self.pixels += probe.pixels
        self.seconds += probe.seconds
        return None


class DecodeClock:
    """The wall time each batch spends decoding, against `budget_s` (None: no budget), and the
    seconds a decoded pixel costs on this machine (learnt from the images decoded so far), so a
    record whose images would take the batch past its budget is skipped before it is started.

    `start()` at each batch; before each record, `skip(pixels)` says why its media are not decoded
    (or None); after it, `observe(pixels, seconds)`. The batch's first record with images is always
    decoded (the per-image pixel limit bounds it), so no image is too large for every batch."""

    SECONDS_PER_PIXEL = 40e-9  # a first guess: PNG decoding measured 20-40 ns a pixel on 2 shared cores
    LEARN_FROM_PIXELS = 100_000  # smaller images cost mostly overhead: they teach nothing about pixels

    def __init__(self, budget_s: float | None) -> None:
        self.budget_s = budget_s
        self.seconds_per_pixel = self.SECONDS_PER_PIXEL
        self._started = 0.0
        self._decoded_images = False

    def start(self) -> None:
        self._started = time.perf_counter()
        self._decoded_images = False

    def skip(self, pixels: int) -> Absent | None:
        if self.budget_s is None:
            return None
        elapsed = time.perf_counter() - self._started
        if elapsed >= self.budget_s:
            return self._over(f"the batch spent {elapsed:.2f} s decoding")
        expected = pixels * self.seconds_per_pixel
        if pixels and self._decoded_images and elapsed + expected > self.budget_s:
            return self._over(
                f"this record's images ({pixels} pixels, ~{expected:.2f} s) would take the batch past it "
                f"({elapsed:.2f} s spent)"
            )
        return None

    def observe(self, pixels: int, seconds: float) -> None:
        if pixels:
            self._decoded_images = True
        if pixels >= self.LEARN_FROM_PIXELS:
            self.seconds_per_pixel = 0.7 * self.seconds_per_pixel + 0.3 * seconds / pixels

    def _over(self, why: str) -> Absent:
        return Absent(
            OVER_BUDGET,
            f"{BATCH_REASON} (max_batch_decode_s={self.budget_s:g}): {why}; the server is busy with "
            "large media, retry or send smaller ones",
        )


def decode_costs(
    records: Sequence[Mapping[str, Any]], media: Mapping[str, MediaProbe]
) -> list[tuple[int, int]]:
    """(pixels, bytes of pixel-less media) each record's media decode to, read from their headers.
    `media`: media column -> its field's probe (under `COST_LIMITS`). Audio costs ~10 ms a clip
    whatever its length, so the bytes of media without pixels only break ties."""

    def cost(record: Mapping[str, Any]) -> tuple[int, int]:
        pixels = other = 0
        for column, probe in media.items():
            value = record.get(column)
            if not isinstance(value, bytes | bytearray) or not value:
                continue
            found = probe(bytes(value))
            if not isinstance(found, Probe):
                continue
            if found.pixels:
                pixels += found.pixels
            else:
                other += len(value)
        return pixels, other

    return [cost(record) for record in records]
