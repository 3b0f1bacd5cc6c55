"""Public test doubles and contract checks for plug-in authors: `check_fusion`, `check_encoder`,
`check_modality` (with its `ModalitySample`)."""

from plait.testing.conformance import check_encoder, check_fusion
from plait.testing.modality_check import ModalitySample, check_modality

__all__ = ["ModalitySample", "check_encoder", "check_fusion", "check_modality"]
