"""Modality plug-ins, one file per kind, registered here in one visible table."""

from __future__ import annotations

from plait.modalities.audio import AudioModality
from plait.modalities.base import Encoder, Modality
from plait.modalities.embedding import EmbeddingModality
from plait.modalities.image import ImageModality
from plait.modalities.tabular import TabularModality
from plait.modalities.text import TextModality
from plait.modalities.timeseries import TimeseriesModality
from plait.modalities.video import VideoModality
from plait.registry import Registry

MODALITIES: Registry[type] = Registry("modality kind")
MODALITIES.register("text", TextModality)
MODALITIES.register("image", ImageModality)
MODALITIES.register("audio", AudioModality)
MODALITIES.register("timeseries", TimeseriesModality)
MODALITIES.register("tabular", TabularModality)
MODALITIES.register("embedding", EmbeddingModality)
MODALITIES.register("video", VideoModality)

__all__ = ["MODALITIES", "Encoder", "Modality"]
