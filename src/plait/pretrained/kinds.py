"""Text, image and audio fields read through a pretrained encoder: how each decodes a row's value
(with the from-scratch kind's own decoder, so errors and limits are the same) and how it arrives
over HTTP. `pretrained_modality(kind, name, options)` builds one from a field's config."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from plait.errors import ConfigError
from plait.modalities.audio import AudioModality
from plait.modalities.base import JSONState
from plait.modalities.contract import InputLimits, InputSpec
from plait.modalities.image import ImageModality
from plait.modalities.text import TextModality, _as_text
from plait.pretrained.field import PretrainedField
from plait.pretrained.huggingface import LocalAudio, LocalImage, LocalText
from plait.registry import Registry
from plait.types import Absent

BATCH = 32


class PretrainedText(PretrainedField):
    """A text column → the encoder's sentence vector (`encoder: minilm`, or a local folder)."""

    kind: ClassVar[str] = "text"
    local_folder = LocalText

    def __init__(
        self,
        name: str,
        *,
        encoder: object,
        column: str | None = None,
        max_tokens: int = 256,
        batch_size: int = BATCH,
        finetune: int = 0,
    ) -> None:
        if finetune != 0:  # the builder picks TunedText for finetune >= 1
            raise ConfigError(f"fields.{name}.finetune: a frozen text field has finetune 0, got {finetune!r}")
        self.text = TextModality(name, column=column, max_tokens=max_tokens)
        super().__init__(name, encoder, batch_size=batch_size, max_tokens=self.text.max_tokens)

    def columns(self) -> tuple[str, ...]:
        return self.text.columns()

    def value_columns(self) -> tuple[str, ...]:
        return self.text.value_columns()

    def input_spec(self, limits: InputLimits) -> InputSpec:
        return self.text.input_spec(limits)

    def decode(self, row: Mapping[str, Any], root: Path) -> str | Absent:
        return _as_text(row.get(self.text.column))

    def options(self) -> JSONState:
        return {"column": self.text.column, "max_tokens": self.text.max_tokens}


class PretrainedImage(PretrainedField):
    """An image → the encoder's vector; decoded like the image kind, at the encoder's input size."""

    kind: ClassVar[str] = "image"
    local_folder = LocalImage

    def __init__(
        self,
        name: str,
        *,
        encoder: object,
        column: str | None = None,
        max_pixels: int = 40_000_000,
        batch_size: int = BATCH,
    ) -> None:
        super().__init__(name, encoder, batch_size=batch_size)
        size = int(getattr(self.backbone, "size", 224))
        self.image = ImageModality(name, column=column, size=size, channels=3, max_pixels=max_pixels)

    def columns(self) -> tuple[str, ...]:
        return self.image.columns()

    def file_columns(self) -> tuple[str, ...]:
        return self.image.file_columns()

    def input_spec(self, limits: InputLimits) -> InputSpec:
        return self.image.input_spec(limits)

    def decode(self, row: Mapping[str, Any], root: Path) -> Any:
        return self.image.pixels(row.get(self.image.column), root)  # (3, size, size) in [0, 1]

    def options(self) -> JSONState:
        return {"column": self.image.column, "max_pixels": self.image.max_pixels}


class PretrainedAudio(PretrainedField):
    """A clip (or a segment of one) → the encoder's vector; read like the audio kind, at 16 kHz."""

    kind: ClassVar[str] = "audio"
    local_folder = LocalAudio

    def __init__(
        self,
        name: str,
        *,
        encoder: object,
        column: str | None = None,
        offset_column: str | None = None,
        duration_column: str | None = None,
        max_seconds: float = 10.0,
        batch_size: int = BATCH,
    ) -> None:
        self.audio = AudioModality(
            name,
            column=column,
            offset_column=offset_column,
            duration_column=duration_column,
            sample_rate=16000,
            max_seconds=max_seconds,
        )
        super().__init__(name, encoder, batch_size=batch_size, max_seconds=self.audio.max_seconds)

    def columns(self) -> tuple[str, ...]:
        return self.audio.columns()

    def file_columns(self) -> tuple[str, ...]:
        return self.audio.file_columns()

    def input_spec(self, limits: InputLimits) -> InputSpec:
        return self.audio.input_spec(limits)

    def decode(self, row: Mapping[str, Any], root: Path) -> Any:
        return self.audio.wave(row, root)  # (N,) at 16 kHz, at most max_seconds

    def options(self) -> JSONState:
        return {
            "column": self.audio.column,
            "offset_column": self.audio.offset_column,
            "duration_column": self.audio.duration_column,
            "max_seconds": self.audio.max_seconds,
        }


PRETRAINED_KINDS: Registry[type[PretrainedField]] = Registry("pretrained field kind")
for _field in (PretrainedText, PretrainedImage, PretrainedAudio):
    PRETRAINED_KINDS.register(_field.kind, _field)


def pretrained_class(
    field: str, kind: str, options: Mapping[str, Any] | None = None
) -> type[PretrainedField]:
    """The plug-in for a `kind` field with a pretrained encoder; `finetune` >= 1 on a text field
    picks the one whose last layers train (plait.pretrained.tuned_text)."""
    finetune = (options or {}).get("finetune", 0)
    if finetune != 0 and kind in PRETRAINED_KINDS and PRETRAINED_KINDS.get(kind) is PretrainedText:
        from plait.pretrained.tuned_text import TunedText

        return TunedText
    if kind not in PRETRAINED_KINDS:
        raise ConfigError(
            f"fields.{field}.encoder: pretrained encoders exist for {', '.join(PRETRAINED_KINDS.names())} "
            "fields, "
            f"and '{field}' is a {kind} field; remove the option or pick a from-scratch encoder"
        )
    return PRETRAINED_KINDS.get(kind)


__all__ = ["PRETRAINED_KINDS", "PretrainedAudio", "PretrainedImage", "PretrainedText", "pretrained_class"]
