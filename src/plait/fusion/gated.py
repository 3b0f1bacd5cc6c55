"""PLACEHOLDER — being written; replaced in this session."""


class GatedFusion:
    decision_level = False
