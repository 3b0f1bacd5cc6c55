"""What a modality declares beyond fit/load/collate/encoder, so that no code outside `modalities/`
needs to know its kind's name: how its value arrives over HTTP and is checked before decoding
(`InputSpec`), how the web page shows it (`Widget`), which perturbation families apply to it and
what they need from the fitted state, which columns hold values or name files, and the summary
features the boosting baseline reads (`summary_features`).

Every method here is optional on a plug-in: the accessor functions (`input_spec`,
`perturbation_families`, …) give a sensible default when a kind does not declare it, so a new kind
starts with `fit/load/collate/build_encoder` and adds declarations as it needs them.

    >>> spec = input_spec(modality, InputLimits(max_file_bytes=10_000_000))
    >>> spec.roles
    {'photo': 'media'}
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from plait.types import Absent

if TYPE_CHECKING:
    from torch import Tensor

# How one column's value arrives in a JSON request:
#   media: base64 text / data URL / uploaded file bytes, checked by the spec's `probe`;
#   text: a string (max_text_chars); number: a JSON number or numeric text; category: a scalar;
#   array: JSON array [T] or [T][C] (or JSON text of one); vector: JSON array of numbers;
#   value: any JSON scalar or array, handed to `load` as it came.
Role = Literal["media", "text", "number", "category", "array", "vector", "value"]
ROLES: tuple[str, ...] = ("media", "text", "number", "category", "array", "vector", "value")


@dataclass(frozen=True)
class Probe:
    """What decoding one media value will cost, read from its header alone: `pixels` it decodes to
    (all frames together for a video) and `seconds` of audio or video the model reads of it."""

    pixels: int = 0
    seconds: float = 0.0


# bytes → their decoding cost when acceptable, Absent(reason) when not, None when empty
MediaProbe = Callable[[bytes], "Probe | Absent | None"]


@dataclass(frozen=True)
class InputLimits:
    """The server's per-value limits a modality may apply (built from ServeSettings; the defaults
    are ServeSettings' defaults)."""

    max_file_bytes: int = 10 * 1024 * 1024
    max_text_chars: int = 20_000
    max_audio_seconds: float = 60.0
    max_image_pixels: int | None = 16_000_000
    max_video_seconds: float = 60.0


@dataclass(frozen=True)
class Widget:
    """How the web page asks for the field.

    control: "file" (a file picker; `accept` its MIME filter, `preview` the element that shows the
    chosen file: "img", "audio" or "video"), "text" (a text area sent as a string), "json" (a text
    area parsed as JSON), "columns" (one small input per column). `hint` is the text area's placeholder.
    """

    control: Literal["file", "text", "json", "columns"]
    accept: str = ""
    preview: str = ""
    hint: str = ""

    def to_json(self) -> dict[str, str]:
        return {"control": self.control, "accept": self.accept, "preview": self.preview, "hint": self.hint}


@dataclass(frozen=True)
class InputSpec:
    """How one field's value arrives over HTTP.

    roles: column → Role, every column the field reads (in `columns()` order).
    main_columns: the columns whose absence makes the field missing (default: all of them).
    accepts: one line for clients (/v1/info, the OpenAPI schema, the page).
    limits: the limits shown to clients (name → number).
    probe: for media columns, the check of the bytes from their header (format by magic bytes,
    size, pixels, seconds) and the cost charged to the request's decode budget.
    """

    roles: Mapping[str, Role]
    accepts: str
    widget: Widget
    main_columns: tuple[str, ...] = ()
    limits: Mapping[str, float] = field(default_factory=dict)
    probe: MediaProbe | None = None

    @property
    def media_columns(self) -> tuple[str, ...]:
        return tuple(c for c, r in self.roles.items() if r == "media")

    @property
    def required_columns(self) -> tuple[str, ...]:
        return self.main_columns or tuple(self.roles)


def input_spec(modality: Any, limits: InputLimits | None = None) -> InputSpec:
    """The modality's `input_spec(limits)`, or the default: every column a JSON value (`value`)."""
    limits = limits if limits is not None else InputLimits()
    declared = getattr(modality, "input_spec", None)
    if callable(declared):
        spec = declared(limits)
        if not isinstance(spec, InputSpec):
            raise TypeError(f"{type(modality).__name__}.input_spec must return an InputSpec, got {spec!r}")
        return spec
    columns = tuple(modality.columns())
    return InputSpec(
        roles=dict.fromkeys(columns, "value"),
        accepts="a JSON value, as the field's column holds it in a table",
        widget=Widget("json", hint="a JSON value"),
    )


def text_column(modality: Any) -> str | None:
    """The column of a field that reads one string of text (its one column has the role `text`):
    such a field can embed a label's prompt for zero-shot classification. None for any other."""
    roles = input_spec(modality).roles
    if len(roles) == 1 and next(iter(roles.values())) == "text":
        return next(iter(roles))
    return None


def perturbation_families(modality: Any) -> tuple[str, ...]:
    """The perturbation families (names in evaluation's PERTURBATIONS) that apply to the modality,
    beyond `missing`, which applies to every field. Declared as the class attribute `perturbations`."""
    return tuple(getattr(modality, "perturbations", ()))


def noise_family(modality: Any) -> str | None:
    """The family the all-fields noise curve uses for this modality (levels 0…1), or None."""
    return getattr(modality, "noise_family", None)


def perturbation_context(modality: Any) -> dict[str, Any]:
    """What the modality's perturbation families need from its fitted state (e.g. vocabulary size,
    training statistics); declared with a `perturbation_context()` method, else nothing."""
    declared = getattr(modality, "perturbation_context", None)
    return dict(declared()) if callable(declared) else {}


def value_columns(modality: Any) -> tuple[str, ...]:
    """The table columns whose cell values the model reads as they are (numbers, categories, text),
    for the leak check; a modality declares them with an optional `value_columns()` method. Media
    paths are not values: the model reads the files, not the names."""
    declared = getattr(modality, "value_columns", None)
    return tuple(declared()) if callable(declared) else ()


def summary_features(modality: Any, values: Tensor, mask: Tensor | None) -> Tensor:
    """Fixed-width summary features (B, D) of a collated batch, for the classical baseline
    (`plait.baseline`); a modality declares them with an optional `summary_features(values, mask)`
    method (plait.modalities.summary has the building blocks), else `generic_stats`."""
    from plait.modalities.summary import generic_stats

    declared = getattr(modality, "summary_features", None)
    out = declared(values, mask) if callable(declared) else generic_stats(values, mask)
    return out.reshape(out.shape[0], -1).float()


def file_columns(modality: Any) -> tuple[str, ...]:
    """The table columns whose cells may name files the modality reads (fingerprinted for the
    bundle's provenance); a modality declares them with an optional `file_columns()` method."""
    declared = getattr(modality, "file_columns", None)
    return tuple(declared()) if callable(declared) else ()


def sequence_columns(modality: Any) -> tuple[str, ...]:
    """Columns whose one value is a list (a series, a vector): what a table library must keep as a
    list column. Read from the input roles."""
    return tuple(c for c, r in input_spec(modality).roles.items() if r in ("array", "vector"))


def file_extensions(modality_class: Any) -> tuple[str, ...]:
    """File name endings (lower case, with the dot) that mark a column of paths to this kind's
    files, for `plait init`; declared as the class attribute `file_extensions`."""
    return tuple(getattr(modality_class, "file_extensions", ()))


def options_from_files(modality_class: Any, paths: Sequence[Path]) -> tuple[dict[str, Any], str]:
    """Options `plait init` writes for a field of this kind, read from a sample of its files' headers,
    and a sentence saying what was read; declared as a static method `options_from_files(paths)`.
    Default: no options."""
    declared = getattr(modality_class, "options_from_files", None)
    if not callable(declared) or not paths:
        return {}, ""
    options, why = declared(paths)
    return dict(options), str(why)
