"""PLACEHOLDER — being written; replaced in this session."""


class LateFusion:
    decision_level = False
