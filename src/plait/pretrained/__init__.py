"""Frozen pretrained encoders (text, image, audio, or any local Hugging Face folder), shipped by
packages so nothing is downloaded, and the content-addressed embedding cache they write through."""

from __future__ import annotations

from plait.pretrained.registry import BACKBONES, is_pretrained

__all__ = ["BACKBONES", "is_pretrained"]
