"""PLACEHOLDER — being written; replaced in this session."""


class AttentionFusion:
    decision_level = False
