"""PLACEHOLDER — being written; replaced in this session."""


class TabularModality:
    kind = "tabular"
