"""PLACEHOLDER — being written; replaced in this session."""


class ConcatFusion:
    decision_level = False
