"""PLACEHOLDER — being written; replaced in this session."""


class ImageModality:
    kind = "image"
