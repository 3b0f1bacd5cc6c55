"""PLACEHOLDER — being written; replaced in this session."""


class TimeseriesModality:
    kind = "timeseries"
