"""Fusion strategies, one file each, registered here in one visible table."""

from __future__ import annotations

from plait.fusion.attention import AttentionFusion
from plait.fusion.base import Fusion
from plait.fusion.concat import ConcatFusion
from plait.fusion.cross_attention import CrossAttentionFusion
from plait.fusion.gated import GatedFusion
from plait.fusion.hierarchical import HierarchicalFusion
from plait.fusion.late import LateFusion
from plait.fusion.low_rank_tensor import LowRankTensorFusion
from plait.fusion.set_fusion import SetFusion
from plait.fusion.stacking import StackingFusion
from plait.fusion.tensor import TensorFusion
from plait.registry import Registry

FUSIONS: Registry[type] = Registry("fusion")
FUSIONS.register("concat", ConcatFusion)
FUSIONS.register("late", LateFusion)
FUSIONS.register("attention", AttentionFusion)
FUSIONS.register("gated", GatedFusion)
FUSIONS.register("tensor", TensorFusion)
FUSIONS.register("low_rank_tensor", LowRankTensorFusion)
FUSIONS.register("cross_attention", CrossAttentionFusion)
FUSIONS.register("set", SetFusion)
FUSIONS.register("hierarchical", HierarchicalFusion)
FUSIONS.register("stacking", StackingFusion)

__all__ = ["FUSIONS", "Fusion"]
