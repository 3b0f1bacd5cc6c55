"""Request records → engine records: the server's input safety, in one place.

A record's keys are the bundle's COLUMN names (a tabular field has several; most fields one).
Each field's modality says how its columns arrive (`input_spec`: a role per column, the limits,
the header check of media bytes); what each value may be, by the role of its column:

- media (e.g. image, audio): base64 text, optionally as a data URL (`data:image/png;base64,…`), or
  the bytes of an uploaded file. The modality's `probe` checks the bytes from their header (format
  by magic bytes, size, pixels, seconds) and gives their decoding cost, charged to the request's
  decode budget. A value that fails (not base64, wrong content, too large, a URL) makes the FIELD
  failed: it is predicted without (degraded) with the reason, never an error — unless the field is
  required. A client string is never used as a file path and no URL is ever fetched.
- text: a string of at most `max_text_chars` characters (over: 422 naming the field and limit).
- number (e.g. tabular numeric columns, audio segment columns): a JSON number, or a string that
  parses as one — form uploads send every value as text, so the JSON API accepts the same.
  Non-finite numbers and "", "NA", "null"… are missing. Any other string: 422.
- category (tabular categorical columns): a string, number or boolean.
- array (e.g. timeseries): a JSON array [T] or [T][C] of numbers, or the same as JSON text.
- vector (e.g. embedding): a JSON array of numbers, or the same as JSON text.
- value (a kind that declares no `input_spec`): any JSON scalar or array, handed to the modality's
  `load` as it came (a string is never read as a file path: the media root is empty).

null or a left-out key: the column is absent. A value of the wrong JSON type (a number for a text
field, an object anywhere): 422, because that is a client bug rather than a bad reading.
Unknown keys: 422 listing the valid ones, with a did-you-mean.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from plait.bundle import TrainedModel
from plait.errors import ConfigError, PlaitError
from plait.modalities.contract import ROLES, InputLimits, InputSpec, MediaProbe, Role, input_spec
from plait.modalities.options import short_error
from plait.modalities.tabular import MISSING_TEXT
from plait.registry import suggest
from plait.serving.budget import RequestBudget
from plait.serving.media import decode_base64
from plait.serving.settings import ServeSettings
from plait.types import Absent


class RequestError(PlaitError):
    """A request the server refuses: HTTP `status`, a stable `code`, and the field it concerns."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field


@dataclass(frozen=True)
class Column:
    """One key a record may carry: the column, the field it feeds and how its value is read."""

    name: str
    field: str
    kind: str  # the field's kind, shown in messages
    role: Role  # from the field's `input_spec`


@dataclass(frozen=True)
class InputField:
    """One field as a client sees it (listed by /v1/info): its modality's `InputSpec` under this
    server's limits."""

    name: str
    kind: str
    spec: InputSpec
    required: bool

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(self.spec.roles)

    @property
    def main_columns(self) -> tuple[str, ...]:
        """The columns whose absence makes the field missing."""
        return self.spec.required_columns

    @property
    def limits(self) -> Mapping[str, float]:
        return self.spec.limits

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "columns": list(self.columns),
            "required": self.required,
            "accepts": self.spec.accepts,
            "limits": dict(self.spec.limits),
            "widget": self.spec.widget.to_json(),
        }


@dataclass(frozen=True)
class ParsedRecord:
    """column -> value for the engine: columns not sent are left out, columns sent empty are None,
    and a value that was unusable is an `Absent` whose reason the engine reports (the field is
    failed, predicted without)."""

    values: dict[str, Any]


@dataclass(frozen=True)
class InputSchema:
    """What a record may hold for one bundle under one set of serve settings."""

    fields: tuple[InputField, ...]
    columns: Mapping[str, Column]
    max_text_chars: int
    probes: Mapping[str, MediaProbe] = field(default_factory=dict)  # media column -> its field's probe
    max_records: int = 1000  # records per request (documented in the OpenAPI schema)
    max_request_pixels: int = 64_000_000  # see ServeSettings: the decode budget of one request
    max_request_audio_s: float = 300.0

    def budget(self) -> RequestBudget:
        """A fresh decode budget for one request."""
        return RequestBudget(self.max_request_pixels, self.max_request_audio_s)

    @classmethod
    def build(cls, trained: TrainedModel, settings: ServeSettings) -> InputSchema:
        names = list(trained.modalities)
        for name in settings.required_fields:
            if name not in trained.modalities:
                raise ConfigError(
                    f"serve.required_fields: unknown field '{name}';{suggest(name, names)} "
                    f"Fields of this bundle: {', '.join(names)}"
                )
        marked = {f.name for f in trained.config.fields if f.required}  # `required: true` in the config
        return cls.for_modalities(trained.modalities, settings, required=marked)

    @classmethod
    def for_modalities(
        cls, modalities: Mapping[str, Any], settings: ServeSettings, required: Iterable[str] = ()
    ) -> InputSchema:
        """The schema of fitted modalities (field -> modality) under `settings`; `required`: fields
        the config marks required (besides settings.required_fields)."""
        marked = set(required)
        limits = settings.input_limits()
        fields: list[InputField] = []
        columns: dict[str, Column] = {}
        probes: dict[str, MediaProbe] = {}
        for name, modality in modalities.items():
            spec = _spec(name, modality, limits)
            for column, role in spec.roles.items():
                if column in columns:  # read by an earlier field: that field's role and probe hold
                    continue
                columns[column] = Column(column, name, modality.kind, role)
                if spec.probe is not None and column in spec.media_columns:
                    probes[column] = spec.probe
            is_required = name in settings.required_fields or name in marked
            fields.append(InputField(name=name, kind=modality.kind, spec=spec, required=is_required))
        return cls(
            fields=tuple(fields),
            columns=columns,
            max_text_chars=settings.max_text_chars,
            probes=probes,
            max_records=settings.max_records,
            max_request_pixels=settings.max_request_pixels,
            max_request_audio_s=settings.max_request_audio_s,
        )

    @property
    def media_columns(self) -> tuple[str, ...]:
        return tuple(self.probes)


def _spec(name: str, modality: Any, limits: InputLimits) -> InputSpec:
    """The field's `input_spec` under the server's limits, checked for what serving relies on."""
    spec = input_spec(modality, limits)
    unknown = {c: r for c, r in spec.roles.items() if r not in ROLES}
    if unknown:
        raise ConfigError(
            f"field '{name}': the {modality.kind} modality's input_spec gives roles {unknown} that "
            f"serving does not read; roles: {', '.join(ROLES)}"
        )
    if spec.media_columns and spec.probe is None:
        raise ConfigError(
            f"field '{name}': the {modality.kind} modality's input_spec has media columns "
            f"{list(spec.media_columns)} but no probe; give InputSpec a probe that checks the bytes"
        )
    return spec


# ---- records -------------------------------------------------------------------------------------


def parse_record(
    raw: object, schema: InputSchema, where: str = "record", budget: RequestBudget | None = None
) -> ParsedRecord:
    """A JSON record (an object keyed by column names) → the engine's record. `budget`: the
    request's decode budget, shared by its records (None: a fresh one for this record alone)."""
    if not isinstance(raw, dict):
        raise RequestError(
            422,
            "invalid_record",
            f"{where}: expected a JSON object keyed by column names, got {_json_type(raw)}",
        )
    return _parse_items(raw.items(), schema, where, budget if budget is not None else schema.budget())


def parse_form(items: Iterable[tuple[str, str | bytes]], schema: InputSchema) -> ParsedRecord:
    """A multipart form (text values, and bytes for uploaded files) → the engine's record."""
    seen: dict[str, str | bytes] = {}
    for key, value in items:
        if key in seen:
            raise RequestError(422, "duplicate_field", f"form: '{key}' was sent twice; send it once", key)
        seen[key] = value
    for key, value in seen.items():
        column = schema.columns.get(key)
        if isinstance(value, bytes) and column is not None and column.role != "media":
            raise RequestError(
                422,
                "invalid_value",
                f"form: '{key}' ({column.kind} field '{column.field}') takes a form value, not a file",
                key,
            )
    return _parse_items(seen.items(), schema, "form", schema.budget())


def _parse_items(
    items: Iterable[tuple[str, object]], schema: InputSchema, where: str, budget: RequestBudget
) -> ParsedRecord:
    values: dict[str, Any] = {}
    for key, value in items:
        column = schema.columns.get(key)
        if column is None:
            raise RequestError(422, "unknown_field", _unknown_message(key, schema, where), key)
        # None stays, keyed: the client sent the column without a value (null, "", "NA"), which the
        # engine reports as "empty" — unlike a column it did not send ("not in the record").
        values[key] = None if value is None else _parse_value(value, column, schema, where, budget)
    for f in schema.fields:
        if not f.required:
            continue
        failed = next((v for c in f.columns if isinstance(v := values.get(c), Absent)), None)
        if failed is not None:
            raise RequestError(
                422,
                "required_field",
                f"{where}: field '{f.name}' is required by this server and its value is unusable: "
                f"{failed.reason}: {failed.detail}",
                f.name,
            )
        if not any(c in values for c in f.main_columns):
            raise RequestError(
                422,
                "required_field",
                f"{where}: field '{f.name}' is required by this server; send column(s) "
                f"{', '.join(f.main_columns)}",
                f.name,
            )
    return ParsedRecord(values)


def _unknown_message(key: str, schema: InputSchema, where: str) -> str:
    valid = sorted(schema.columns)
    grouped = next((f for f in schema.fields if f.name == key and key not in f.columns), None)
    if grouped is not None:
        return (
            f"{where}: '{key}' is a {grouped.kind} field; send its columns as separate keys: "
            f"{', '.join(grouped.columns)}"
        )
    hint = suggest(key, valid)
    return f"{where}: unknown field '{key}';{hint} Valid fields: {', '.join(valid)}"


def _parse_value(
    value: object, column: Column, schema: InputSchema, where: str, budget: RequestBudget
) -> Any:
    """The engine's value, None for absent, or Absent for an unusable value of the right type."""
    match column.role:
        case "media":
            return _media_value(value, column, schema, where, budget)
        case "text":
            return _text(value, column, schema, where)
        case "number":
            return _number(value, column, where)
        case "category":
            if not isinstance(value, str | int | float):
                raise _wrong_type(where, column, "a string or number", value)
            return value
        case "array" | "vector":
            return _array(value, column, where)
        case _:  # value: the modality reads it as it came
            if isinstance(value, bool | int | float | str | list):
                return value
            raise _wrong_type(where, column, "a JSON value (a number, string, boolean or array)", value)


def _media_value(
    value: object, column: Column, schema: InputSchema, where: str, budget: RequestBudget
) -> bytes | Absent | None:
    if isinstance(value, bytes):
        return _media(value, column, schema, budget)
    if not isinstance(value, str):
        raise _wrong_type(where, column, "base64 text or a data URL", value)
    if not value.strip():
        return None
    data = decode_base64(value)
    return data if isinstance(data, Absent) else _media(data, column, schema, budget)


def _text(value: object, column: Column, schema: InputSchema, where: str) -> str | None:
    if not isinstance(value, str):
        raise _wrong_type(where, column, "a string", value)
    if len(value) > schema.max_text_chars:
        raise RequestError(
            422,
            "too_long",
            f"{where}: field '{column.field}' has {len(value)} characters, over the limit of "
            f"{schema.max_text_chars} (max_text_chars); shorten the text",
            column.field,
        )
    text = value.encode("utf-8", "replace").decode("utf-8")  # lone surrogates → '?'
    return text if text.strip() else None


def _array(value: object, column: Column, where: str) -> np.ndarray | Absent | None:
    """array ([T] or [T][C]) and vector: a JSON array, or JSON text holding one."""
    if isinstance(value, str):
        if not value.strip():
            return None
        try:
            value = json.loads(value)
        except (ValueError, RecursionError):
            return Absent("undecodable", "text is not a JSON array of numbers such as [0.1, 2.5]")
        if not isinstance(value, list):
            return Absent("undecodable", "text is not a JSON array of numbers such as [0.1, 2.5]")
    if not isinstance(value, list):
        raise _wrong_type(where, column, "a JSON array of numbers", value)
    if not value:
        return None
    try:  # what the modality's load does first; one buffer, not T×C Python floats, to the engine
        return np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        return Absent("undecodable", f"expected an array of numbers: {short_error(exc)}")


def _number(value: object, column: Column, where: str) -> float | None:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise _wrong_type(where, column, "a number", value)
    if isinstance(value, str):
        if value.strip().lower() in MISSING_TEXT:
            return None
        try:
            number = float(value)
        except ValueError:
            raise RequestError(
                422,
                "invalid_value",
                f"{where}: column '{column.name}' (field '{column.field}') expects a number, "
                f"got {value[:40]!r}",
                column.name,
            ) from None
    else:
        try:
            number = float(value)
        except OverflowError:  # an integer too big for a float
            return None
    return number if math.isfinite(number) else None


def _wrong_type(where: str, column: Column, expected: str, value: object) -> RequestError:
    what = f"field '{column.field}'"
    if column.name != column.field:
        what = f"column '{column.name}' (field '{column.field}')"
    return RequestError(
        422, "invalid_value", f"{where}: {what} expects {expected}, got {_json_type(value)}", column.name
    )


def _json_type(value: object) -> str:
    names = {bool: "a boolean", int: "a number", float: "a number", str: "a string", list: "an array"}
    if value is None:
        return "null"
    if isinstance(value, dict):
        return "an object"
    return names.get(type(value), type(value).__name__)


def _media(data: bytes, column: Column, schema: InputSchema, budget: RequestBudget) -> bytes | Absent | None:
    """The bytes when they are acceptable media within the request's decode budget, else why not
    (the field's probe reads the header: nothing is decoded here)."""
    probe = schema.probes[column.name](data)
    if probe is None or isinstance(probe, Absent):
        return probe
    over = budget.charge(probe)
    return data if over is None else over
