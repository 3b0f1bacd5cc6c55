"""PLACEHOLDER — being written; replaced in this session."""


class EmbeddingModality:
    kind = "embedding"
