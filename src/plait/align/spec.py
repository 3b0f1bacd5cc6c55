"""The `streams:` section of the config: what each stream is, where it lives, and how it is cut
into samples around anchors. Frozen records; parsed with key-path errors like the rest of the config.

Time inside the alignment code is always Int64 microseconds since the Unix epoch, UTC (`t_us`):
exact, sortable, and what polars' `join_asof` matches fastest.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import MISSING, dataclass, field, fields, replace
from typing import Any

from plait.align.rules import STREAM_KINDS
from plait.errors import ConfigError
from plait.registry import suggest, unknown_name_message

TIME_FORMATS = ("auto", "iso", "epoch_s", "epoch_ms", "epoch_us")  # or a strftime pattern containing '%'
IMPUTE = ("none", "hold", "interpolate")
DUPLICATES = ("first", "last", "mean")
IMAGE_MODES = ("nearest", "before")
MISSING_POLICIES = ("mask", "drop")


@dataclass(frozen=True)
class StreamSpec:
    """One timestamped stream.

    Sources: `path` is a table (CSV/Parquet/JSONL) with a `time` column — or, for image/audio, a
    folder of files whose time (and key) come from the file name by `pattern`, a regex with named
    groups `time` (and `key`), e.g. `(?P<key>m\\d+)_(?P<time>\\d{8}T\\d{6})\\.png`.
    For audio given as a table, `file` names the column holding each recording's path and `time`
    its start; the sample rate is read from the file.
    """

    name: str
    kind: str
    path: str
    time: str = "time"  # time column (table sources)
    time_format: str = "auto"  # auto | iso | epoch_s | epoch_ms | epoch_us | a strftime pattern
    timezone: str | None = None  # zone of naive timestamps; none set + naive or mixed → error
    key: str | None = None  # entity column (machine, patient, …); None: one entity
    columns: tuple[str, ...] = ()  # value columns: sensor channels, the text column, attributes
    file: str = "file"  # audio/image tables: the column with the file path
    pattern: str | None = None  # folder sources: regex with named groups `time` [and `key`]
    offset_s: float = 0.0  # constant clock offset: true time = stream time + offset_s
    offsets_s: Mapping[str, float] = field(default_factory=dict)  # per-entity offsets (add to offset_s)
    tolerance_s: float = 1.0  # how far from the anchor (or window edge) data may be
    window_s: float | None = None  # timeseries/text: use [anchor - window_s, anchor)
    rate_hz: float | None = None  # timeseries: resample the window to this fixed grid
    impute: str = "none"  # none | hold | interpolate (timeseries), none | hold (image)
    max_gap_s: float = 0.0  # longest gap imputation may bridge; beyond it the field is absent
    duplicates: str = "first"  # exact duplicate timestamps: first | last | mean
    mode: str = "nearest"  # image: nearest frame, or the last frame before the anchor
    duration_s: float | None = None  # audio: clip length ending at the anchor
    missing: str = "mask"  # mask: absent field; drop: drop anchors where this stream has nothing
    jump_s: float = 1.0  # a backward step larger than this is a clock jump (segment split)


@dataclass(frozen=True)
class AnchorSpec:
    """Where samples are taken: labelled events (a table with time, key, label), or a sliding
    window per entity over the span the streams cover (`window_s`/`hop_s`, no path).

    Sliding anchors take their label per entity from `labels`, a table with one row per entity:
    a column named like `key` (or `labels_key`) and the `label` column.
    """

    path: str | None = None
    time: str = "time"
    time_format: str = "auto"
    timezone: str | None = None
    key: str | None = None
    label: str | None = None
    labels: str | None = None  # sliding anchors: table of entity → label (relative to the config)
    labels_key: str | None = None  # its entity column, when not named like `key`
    hop_s: float | None = None  # sliding anchors: one every hop_s per entity
    start: str | None = None  # sliding anchors: ISO start/end (default: the streams' common span)
    end: str | None = None


@dataclass(frozen=True)
class StreamsSpec:
    anchors: AnchorSpec
    streams: tuple[StreamSpec, ...]
    output: str = "samples.parquet"  # the sample table, relative to the config file
    timezone: str | None = None  # default zone for every stream and the anchors
    media_dir: str = "aligned_media"  # audio clips that span two files are written here
    drop_empty: bool = False  # drop anchors where EVERY stream is absent (counted in the report)

    def stream(self, name: str) -> StreamSpec:
        for s in self.streams:
            if s.name == name:
                return s
        raise ConfigError(unknown_name_message("stream", name, [s.name for s in self.streams]))


def parse_streams(raw: Any, path: str = "streams") -> StreamsSpec:
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{path}: expected a mapping with `anchors` and `sources`, got {raw!r}")
    _known(raw, ("anchors", "sources", "output", "timezone", "media_dir", "drop_empty"), path)
    if "anchors" not in raw:
        raise ConfigError(
            f"{path}.anchors: missing; give labelled events {{path, time, key, label}} or {{hop_s}}"
        )
    sources = raw.get("sources")
    if not isinstance(sources, Mapping) or not sources:
        raise ConfigError(f"{path}.sources: expected a non-empty mapping of stream name → {{kind, path, …}}")
    timezone = _optional_str(raw.get("timezone"), f"{path}.timezone")
    anchors = _record(AnchorSpec, raw["anchors"], f"{path}.anchors", {})
    if anchors.timezone is None and timezone is not None:
        anchors = replace(anchors, timezone=timezone)
    streams = []
    for name, spec in sources.items():
        where = f"{path}.sources.{name}"
        if not isinstance(spec, Mapping):
            raise ConfigError(f"{where}: expected a mapping with at least kind and path, got {spec!r}")
        stream = _record(StreamSpec, spec, where, {"name": str(name)})
        if stream.timezone is None and timezone is not None:
            stream = replace(stream, timezone=timezone)
        _check_stream(stream, where)
        streams.append(stream)
    out = StreamsSpec(
        anchors=anchors,
        streams=tuple(streams),
        output=_str(raw.get("output", "samples.parquet"), f"{path}.output"),
        timezone=timezone,
        media_dir=_str(raw.get("media_dir", "aligned_media"), f"{path}.media_dir"),
        drop_empty=_bool(raw.get("drop_empty", False), f"{path}.drop_empty"),
    )
    check_anchors(out.anchors, f"{path}.anchors")
    return out


def streams_to_dict(spec: StreamsSpec) -> dict[str, Any]:
    def plain(record: Any, skip: tuple[str, ...] = ()) -> dict[str, Any]:
        out = {}
        for f in fields(record):
            if f.name in skip:
                continue
            value = getattr(record, f.name)
            out[f.name] = (
                list(value)
                if isinstance(value, tuple)
                else dict(value)
                if isinstance(value, Mapping)
                else value
            )
        return out

    return {
        "anchors": plain(spec.anchors),
        "sources": {s.name: plain(s, skip=("name",)) for s in spec.streams},
        "output": spec.output,
        "timezone": spec.timezone,
        "media_dir": spec.media_dir,
        "drop_empty": spec.drop_empty,
    }


def _known(raw: Mapping[str, Any], allowed: tuple[str, ...], path: str) -> None:
    for key in raw:
        if key not in allowed:
            raise ConfigError(
                f"{path}.{key}: unknown key;{suggest(str(key), list(allowed))} Allowed: {', '.join(allowed)}"
            )


def _record(cls: Any, raw: Any, path: str, given: dict[str, Any]) -> Any:
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{path}: expected a mapping, got {raw!r}")
    names = [f.name for f in fields(cls) if f.name not in given]
    _known(raw, tuple(names), path)
    values: dict[str, Any] = dict(given)
    for f in fields(cls):
        if f.name not in raw:
            continue
        values[f.name] = _coerce(raw[f.name], f.name, f.type, f"{path}.{f.name}")
    required = [f.name for f in fields(cls) if f.default is MISSING and f.default_factory is MISSING]
    missing = [name for name in required if name not in values]
    if missing:
        raise ConfigError(f"{path}: missing {', '.join(missing)}")
    return cls(**values)


def _coerce(value: Any, name: str, annotation: Any, path: str) -> Any:
    text = str(annotation)
    if "tuple" in text:
        if isinstance(value, str):
            return (value,)
        if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
            return tuple(value)
        raise ConfigError(f"{path}: expected a list of column names, got {value!r}")
    if "Mapping" in text:
        if isinstance(value, Mapping) and all(_is_number(v) for v in value.values()):
            return {str(k): float(v) for k, v in value.items()}
        raise ConfigError(f"{path}: expected a mapping of entity → seconds, got {value!r}")
    if "float" in text:
        if value is None and "None" in text:
            return None
        if _is_number(value):
            return float(value)
        raise ConfigError(f"{path}: expected a number of seconds/hertz, got {value!r}")
    if value is None and "None" in text:
        return None
    if isinstance(value, str):
        return value
    raise ConfigError(f"{path}: expected a string, got {value!r}")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _str(value: Any, path: str) -> str:
    if isinstance(value, str) and value:
        return value
    raise ConfigError(f"{path}: expected a non-empty string, got {value!r}")


def _bool(value: Any, path: str) -> bool:
    if isinstance(value, bool):
        return value
    raise ConfigError(f"{path}: expected true or false, got {value!r}")


def _optional_str(value: Any, path: str) -> str | None:
    return None if value is None else _str(value, path)


def _one_of(value: str, choices: Sequence[str], what: str, path: str) -> None:
    if value not in choices:
        raise ConfigError(f"{path}: {unknown_name_message(what, value, list(choices))}")


def _check_stream(s: StreamSpec, path: str) -> None:
    _one_of(s.kind, STREAM_KINDS.names(), "stream kind", f"{path}.kind")
    if s.time_format not in TIME_FORMATS and "%" not in s.time_format:
        raise ConfigError(
            f"{path}.time_format: {unknown_name_message('time format', s.time_format, list(TIME_FORMATS))} "
            "(or a strftime pattern such as %Y%m%dT%H%M%S)"
        )
    _one_of(s.impute, IMPUTE, "imputation policy", f"{path}.impute")
    _one_of(s.duplicates, DUPLICATES, "duplicates policy", f"{path}.duplicates")
    _one_of(s.mode, IMAGE_MODES, "image mode", f"{path}.mode")
    _one_of(s.missing, MISSING_POLICIES, "missing policy", f"{path}.missing")
    for key in ("tolerance_s", "max_gap_s", "jump_s"):
        if getattr(s, key) < 0:
            raise ConfigError(f"{path}.{key}: expected seconds ≥ 0, got {getattr(s, key)}")
    kind = STREAM_KINDS.get(s.kind)
    kind.check(s, path)
    if s.impute == "interpolate" and not kind.interpolates:
        raise ConfigError(f"{path}.impute: interpolate works on sensor streams only; use hold or none")


def check_anchors(a: AnchorSpec, path: str = "streams.anchors") -> None:
    """The anchor options that only make sense together; run at parse time and again by
    build_anchors, so a record built in code is held to the same rules."""
    if a.path is None and (a.hop_s is None or a.hop_s <= 0):
        raise ConfigError(
            f"{path}: give an events table (path, time, key, label) or sliding anchors with hop_s > 0"
        )
    if a.path is not None and a.hop_s is not None:
        raise ConfigError(f"{path}: choose events (path) or sliding anchors (hop_s), not both")
    if a.path is not None:
        if a.labels is not None or a.labels_key is not None:
            option = "labels" if a.labels is not None else "labels_key"
            raise ConfigError(
                f"{path}.{option}: events (path: {a.path}) carry their label in their own table; "
                f"remove {option}: and name the label column of {a.path} with label: COLUMN"
            )
        return
    _check_sliding_labels(a, path)


def _check_sliding_labels(a: AnchorSpec, path: str) -> None:
    key = a.key or "ENTITY"
    if a.labels is None:
        if a.label is not None:
            raise ConfigError(
                f"{path}.label: sliding anchors (hop_s) have no label of their own, so label: "
                f"'{a.label}' would be ignored; add labels: TABLE (a CSV/Parquet/JSONL with one row "
                f"per entity: a column '{key}' like the anchors' key and a column '{a.label}'), or use "
                "labelled events (path: EVENTS with time, key and label columns)"
            )
        if a.labels_key is not None:
            raise ConfigError(
                f"{path}.labels_key: names the entity column of the labels table, but no labels: "
                "TABLE is given; add labels: or remove labels_key:"
            )
        return
    if a.label is None:
        raise ConfigError(
            f"{path}.label: labels: {a.labels} gives each entity a label, but no column is named; "
            "add label: COLUMN (the column of that table to predict)"
        )
    if a.key is None:
        raise ConfigError(
            f"{path}.key: labels: {a.labels} gives one label per entity, so sliding anchors need "
            "key: naming the entity column (as the streams' key, e.g. key: recording); over a single "
            "entity every sample would share one label, which is nothing to predict"
        )
