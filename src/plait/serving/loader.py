"""One record's values → its fields' tensors: the per-record half of serving a prediction.

`RecordLoader(trained.modalities).load({"note": "hot casing", "thermal": png_bytes})` runs each
field's modality `load` (decoding, resampling, tokenising) and returns a `Loaded`: the tensor of
every field that loaded and the status of every field. A value that is missing, undecodable, or
makes `load` raise fails that field of that record alone; it is the client's cost and the client's
fault, so it never counts against the field's circuit breaker (the engine guards the encoders).

Media values must arrive as bytes: a string for a media column (or a string for an array column
that is not a JSON array) is never opened as a path, and the media root is an empty directory. The
roles come from each field's `input_spec`; no path-like object is ever handed to `load`.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from torch import Tensor

from plait.errors import DataError
from plait.modalities.base import Modality, is_empty
from plait.modalities.contract import Role, input_spec
from plait.modalities.options import short_error
from plait.types import Absent

OVER_BUDGET = "over budget"  # Absent reason of a value not decoded for its request's or batch's budget

FieldState = Literal["used", "missing", "failed", "skipped"]


@dataclass(frozen=True)
class FieldStatus:
    """What became of one field of one record. state: "used"; "missing" (not in the record or
    empty); "failed" (undecodable, too large, refused, preprocessing or encoder error); "skipped"
    (breaker open, timed out, over a decode budget). reason is "" when used."""

    field: str
    state: FieldState
    reason: str


@dataclass(frozen=True)
class Loaded:
    """One record, loaded: `values` holds the tensor of each field that loaded (the modality's
    `load` output, e.g. (n_mels, frames) for audio); `statuses` has every field, in model order —
    "used" for the loaded ones (the encoder may still fail them), else missing or failed."""

    values: Mapping[str, Tensor]
    statuses: Mapping[str, FieldStatus]


class RecordLoader:
    def __init__(self, modalities: Mapping[str, Modality], *, root: Path | None = None) -> None:
        self.modalities = dict(modalities)
        # field -> column -> role (roles do not depend on the server's limits)
        self.roles: dict[str, dict[str, Role]] = {
            f: dict(input_spec(m).roles) for f, m in self.modalities.items()
        }
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if root is None:  # an empty media root: no path can resolve to a server file
            self._tmp = tempfile.TemporaryDirectory(prefix="plait-serve-")
            root = Path(self._tmp.name)
        self.root = root

    def load(self, record: Mapping[str, Any], skip_media: Absent | None = None) -> Loaded:
        """Every field of `record` (values keyed by column name; media as bytes; a value may be
        `Absent(reason, detail)` when the caller could not decode it). `skip_media`: why the
        record's fields with media columns are not decoded (its batch spent its decode budget)."""
        values: dict[str, Tensor] = {}
        statuses: dict[str, FieldStatus] = {}
        for field, modality in self.modalities.items():
            roles = self.roles[field]
            status = _precheck(field, modality, roles, record)
            if status is None and skip_media is not None and "media" in roles.values():
                status = _absent_status(field, skip_media)
            if status is None:
                try:
                    value = _load_value(modality, record, self.root)
                except Exception as exc:  # this record's value broke the plug-in: fail it alone
                    status = FieldStatus(field, "failed", f"load failed: {short_error(exc)}")
                else:
                    if isinstance(value, Absent):
                        status = _absent_status(field, value)
                    else:
                        values[field] = value
                        status = FieldStatus(field, "used", "")
            statuses[field] = status
        return Loaded(values, statuses)

    def close(self) -> None:
        """Remove the temporary media root (if the loader made it)."""
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None


def _precheck(
    field: str, modality: Modality, roles: Mapping[str, Role], record: Mapping[str, Any]
) -> FieldStatus | None:
    """The status of a value that is not loaded (missing, marked absent by the caller, or a
    string where a path would be read); None when it goes to the plug-in."""
    columns = modality.columns()
    values = [record.get(c) for c in columns]
    if all(v is None for v in values):
        reason = "empty" if any(c in record for c in columns) else "not in the record"
        return FieldStatus(field, "missing", reason)
    marked = next((v for v in values if isinstance(v, Absent)), None)
    if marked is not None:  # the caller could not decode it (e.g. invalid base64)
        return _absent_status(field, marked)
    for column, value in zip(columns, values, strict=True):
        refusal = _path_refusal(modality, roles.get(column, "value"), value)
        if refusal is not None:
            return FieldStatus(field, "failed", refusal)
    return None


def _load_value(modality: Modality, record: Mapping[str, Any], root: Path) -> Tensor | Absent:
    try:
        return modality.load(record, root)
    except DataError as exc:  # the record's fault (e.g. a path outside the root), not the field's
        return Absent("refused", str(exc))


def _path_refusal(modality: Modality, role: Role, value: object) -> str | None:
    """Why `value` (of a column with `role`) is refused without loading: a path-like object, or a
    string where `load` would read a file path (media; an array that is not JSON text)."""
    if is_empty(value):
        return None
    if isinstance(value, os.PathLike) or (isinstance(value, str) and role == "media"):
        expected = f"{modality.kind} bytes" if role == "media" else "a value"
        return (
            f"expected {expected}, got {type(value).__name__}; the server never reads a value "
            "as a file path (send the file base64-encoded or as an upload)"
        )
    if isinstance(value, str) and role == "array" and not value.lstrip().startswith("["):
        return (
            "expected a list of numbers (or JSON text such as [0.1, 0.2]), got a string; the server "
            "never reads a value as a file path"
        )
    return None


def _absent_status(field: str, absent: Absent) -> FieldStatus:
    if absent.reason == "empty":
        return FieldStatus(field, "missing", "empty")
    if absent.reason == OVER_BUDGET:  # the value may be fine: the server chose not to decode it
        return FieldStatus(field, "skipped", absent.detail)
    reason = f"{absent.reason}: {absent.detail}" if absent.detail else absent.reason
    return FieldStatus(field, "failed", reason)
