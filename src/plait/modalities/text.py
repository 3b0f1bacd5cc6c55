"""PLACEHOLDER — being written; replaced in this session."""


class TextModality:
    kind = "text"
