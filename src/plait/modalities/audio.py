"""PLACEHOLDER — being written; replaced in this session."""


class AudioModality:
    kind = "audio"
