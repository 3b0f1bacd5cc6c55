"""Stream kinds, one file per kind (its window rule and its StreamKind record), registered here in
one visible table; code outside align/rules/ asks a stream's record instead of comparing kind names."""

from __future__ import annotations

from plait.align.rules.audio import AUDIO
from plait.align.rules.image import IMAGE
from plait.align.rules.kind import StreamKind
from plait.align.rules.tabular import TABULAR
from plait.align.rules.text import TEXT
from plait.align.rules.timeseries import TIMESERIES
from plait.registry import Registry

KINDS = (TIMESERIES, IMAGE, AUDIO, TEXT, TABULAR)  # in the order messages list them

STREAM_KINDS: Registry[StreamKind] = Registry("stream kind")
for _kind in KINDS:
    STREAM_KINDS.register(_kind.name, _kind)

__all__ = ["KINDS", "STREAM_KINDS", "StreamKind"]
