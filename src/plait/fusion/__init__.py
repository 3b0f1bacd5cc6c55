"""Fusion strategies, one file each, registered here in one visible table."""

from __future__ import annotations

from plait.fusion.attention import AttentionFusion
from plait.fusion.base import Fusion
from plait.fusion.concat import ConcatFusion
from plait.fusion.gated import GatedFusion
from plait.fusion.late import LateFusion
from plait.registry import Registry

FUSIONS: Registry[type] = Registry("fusion")
FUSIONS.register("concat", ConcatFusion)
FUSIONS.register("late", LateFusion)
FUSIONS.register("attention", AttentionFusion)
FUSIONS.register("gated", GatedFusion)

__all__ = ["FUSIONS", "Fusion"]
