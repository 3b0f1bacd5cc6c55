"""`ServeSettings`: everything `plait serve` can be told, checked where it is built.

`ServeSettings(port=9000, api_key="s3cret", cors_origins=("https://example.org",))`. A bad value
raises ConfigError naming the setting, what was expected and what came. The API key, when not
given, comes from the environment variable PLAIT_API_KEY (empty or unset: no authentication);
pass `api_key=None` explicitly to switch authentication off whatever the environment says.

Per-field input limits: `max_image_pixels` lowers each image field's own `max_pixels` (the
modality's option the bundle was trained with, 40 Mpx by default) for this server; None keeps it.

Decode budgets (no client holds the model process longer than its share; see plait.serving.budget):
`max_request_pixels` and `max_request_audio_s` bound what one request may ask to decode, checked from
the media headers before anything is decoded; `max_batch_decode_s` bounds the wall time one batch
spends decoding. A value over its budget is skipped (its record is answered without that field, the
reason given), never the other records.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from plait.errors import ConfigError
from plait.modalities.contract import InputLimits
from plait.registry import suggest

API_KEY_ENV = "PLAIT_API_KEY"
MIB = 1024 * 1024
INFERENCE_MODES = ["process", "thread"]
RUNTIMES = ["torch", "onnx"]


def api_key_from_env(name: str = API_KEY_ENV) -> str | None:
    """The API key in environment variable `name`, or None when it is unset or blank."""
    value = os.environ.get(name, "").strip()
    return value or None


@dataclass(frozen=True)
class ServeSettings:
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1  # uvicorn worker processes (each loads its own copy of the model)
    # "process": the model runs in a child process with a core of its own (needs a bundle directory);
    # "thread": in the server's process, sharing its interpreter with HTTP parsing.
    inference: str = "process"
    inference_threads: int = 1  # "thread" mode: threads running batches off the event loop
    # 16, not 32: with 32 clients, batches of 16 alternate between the model process and the HTTP
    # side (one runs while the other's answers go out and its next requests come in); one batch of
    # 32 leaves each side idle while the other works (bench/RESULTS.md: 377-450 vs 334 records/s).
    max_batch_size: int = 16
    max_wait_ms: float = 5.0
    max_body_bytes: int = 20 * MIB  # the whole request body, checked before parsing
    max_file_bytes: int = 10 * MIB  # one decoded media value (image or audio bytes)
    max_records: int = 1000  # records in one request
    # 16 Mpx (a 4032x3024 phone photo is 12.2): the model sees at most size**2 <= 1024**2 ~ 1 Mpx of
    # it, and a PNG costs ~20-40 ns a pixel to decode (0.3-0.6 s at 16 Mpx, 1.2 s at the modality's
    # own 40 Mpx default). None: each image field's own max_pixels.
    max_image_pixels: int | None = 16_000_000
    max_audio_seconds: float = 60.0  # longer clips are failed (the model reads at most its max_seconds)
    max_video_seconds: float = 60.0  # longer videos are failed (the model reads at most its max_seconds)
    # Pixels the images of one request may decode to (a JPEG counts at the reduced scale it is decoded
    # at): 64 Mpx is ~1.3-2.5 s of PNG decoding, four images at max_image_pixels, 64 at the model's
    # largest input (1024**2); 16 phone JPEGs (12 Mpx each, decoded at 1/8 scale) use 3 Mpx of it.
    max_request_pixels: int = 64_000_000
    # Seconds of audio one request may decode (each clip counts at most what the model reads of it):
    # a clip costs ~10 ms whatever its length, so 300 s is 150 two-second clips, ~1.5 s of decoding.
    max_request_audio_s: float = 300.0
    # Wall time one batch may spend decoding media in the model process: once spent, the batch's
    # remaining images and audio (decoded cheapest first) are skipped. An honest batch of 16 1-Mpx
    # PNGs decodes in ~0.35 s; a batch held by near-limit images ends after ~1 s plus one image.
    max_batch_decode_s: float = 1.0
    # A request whose body has not fully arrived this long after its headers gets 408 and is closed.
    body_timeout_s: float = 30.0
    # A connection's headers must arrive within this after it opens (or after its previous response):
    # else it is closed. uvicorn's keep-alive timeout alone does not close a connection that has sent
    # part of a request.
    header_timeout_s: float = 10.0
    keep_alive_s: float = 5.0  # an idle keep-alive connection is closed after this
    max_text_chars: int = 20_000
    api_key: str | None = field(default_factory=api_key_from_env)
    cors_origins: tuple[str, ...] = ()  # empty: no CORS headers at all
    required_fields: tuple[str, ...] = ()  # fields a request may not leave out (422 instead of degraded)
    breaker_fail_max: int = 5  # consecutive failures of one field before its breaker opens
    breaker_reset_timeout_s: float = 30.0  # how long an open breaker skips its field before a trial
    field_timeout_s: float = 2.0  # one field's encoder time budget per batch
    # "process" inference: a batch the model process has not answered by then kills it (a new one
    # starts; the batch answers 503) — a process stuck in native code would otherwise hold every request.
    batch_timeout_s: float = 60.0
    trust_modified: bool = False  # load a bundle edited since it was written (a warning, not a refusal)
    # What runs the model: "torch", or "onnx" — the bundle's ONNX export (`plait export`) run by
    # onnxruntime, from `onnx_folder` (None: `<bundle>.onnx` beside the bundle), its int8 graph
    # with `onnx_int8`. See plait.serving.onnx_engine for what the onnx runtime does not serve.
    runtime: str = "torch"
    onnx_folder: str | None = None
    onnx_int8: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.host, str) or not self.host.strip():
            raise ConfigError(f"serve.host: expected a host name or address, got {self.host!r}")
        _int_in("port", self.port, 0, 65535)
        _int_in("workers", self.workers, 1, 256)
        if self.inference not in INFERENCE_MODES:
            raise ConfigError(
                f"serve.inference: expected one of {', '.join(INFERENCE_MODES)}, got {self.inference!r};"
                f"{suggest(str(self.inference), INFERENCE_MODES)}"
            )
        _int_in("inference_threads", self.inference_threads, 1, 256)
        if self.runtime not in RUNTIMES:
            raise ConfigError(
                f"serve.runtime: expected one of {', '.join(RUNTIMES)}, got {self.runtime!r};"
                f"{suggest(str(self.runtime), RUNTIMES)}"
            )
        if self.onnx_folder is not None and (
            not isinstance(self.onnx_folder, str) or not self.onnx_folder.strip()
        ):
            raise ConfigError(f"serve.onnx_folder: expected a folder path or None, got {self.onnx_folder!r}")
        if not isinstance(self.onnx_int8, bool):
            raise ConfigError(f"serve.onnx_int8: expected true or false, got {self.onnx_int8!r}")
        if self.runtime != "onnx" and (self.onnx_int8 or self.onnx_folder is not None):
            raise ConfigError(
                "serve.onnx_folder and serve.onnx_int8 choose the ONNX graph, but serve.runtime is "
                f"{self.runtime!r}; add --runtime onnx (or drop them)"
            )
        _int_in("max_batch_size", self.max_batch_size, 1, 65536)
        _number_in("max_wait_ms", self.max_wait_ms, 0.0, 60_000.0)
        _int_in("max_body_bytes", self.max_body_bytes, 1024, 2**40)
        _int_in("max_file_bytes", self.max_file_bytes, 1, 2**40)
        _int_in("max_records", self.max_records, 1, 10**7)
        if self.max_image_pixels is not None:
            _int_in("max_image_pixels", self.max_image_pixels, 1, 2**40)
        _number_in("max_audio_seconds", self.max_audio_seconds, 0.001, 86_400.0)
        _number_in("max_video_seconds", self.max_video_seconds, 0.001, 86_400.0)
        _int_in("max_request_pixels", self.max_request_pixels, 1, 2**50)
        _number_in("max_request_audio_s", self.max_request_audio_s, 0.001, 10**9)
        _number_in("max_batch_decode_s", self.max_batch_decode_s, 0.001, 86_400.0)
        _number_in("body_timeout_s", self.body_timeout_s, 0.01, 86_400.0)
        _number_in("header_timeout_s", self.header_timeout_s, 0.01, 86_400.0)
        _number_in("keep_alive_s", self.keep_alive_s, 0.01, 86_400.0)
        _int_in("max_text_chars", self.max_text_chars, 1, 10**9)
        if self.api_key is not None and (not isinstance(self.api_key, str) or not self.api_key.strip()):
            raise ConfigError(
                "serve.api_key: expected a non-empty string, or None for no authentication; got an empty "
                "value — set PLAIT_API_KEY to a secret or leave it unset"
            )
        _names("cors_origins", self.cors_origins)
        _names("required_fields", self.required_fields)
        _int_in("breaker_fail_max", self.breaker_fail_max, 1, 10**6)
        _number_in("breaker_reset_timeout_s", self.breaker_reset_timeout_s, 0.0, 86_400.0)
        _number_in("field_timeout_s", self.field_timeout_s, 0.001, 3600.0)
        _number_in("batch_timeout_s", self.batch_timeout_s, 0.1, 86_400.0)

    def input_limits(self) -> InputLimits:
        """The per-value limits each field's modality applies in its `input_spec`."""
        return InputLimits(
            max_file_bytes=self.max_file_bytes,
            max_text_chars=self.max_text_chars,
            max_audio_seconds=self.max_audio_seconds,
            max_image_pixels=self.max_image_pixels,
            max_video_seconds=self.max_video_seconds,
        )

    def to_json(self) -> dict[str, Any]:
        """Every setting but the API key (secrets travel only in their own environment variable)."""
        return {
            name: list(value) if isinstance(value, tuple) else value
            for name in self.__dataclass_fields__
            if name != "api_key"
            for value in [getattr(self, name)]
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any], *, api_key: str | None) -> ServeSettings:
        """Settings from `to_json` output (lists become tuples); unknown keys are a ConfigError."""
        known = [n for n in cls.__dataclass_fields__ if n != "api_key"]
        values: dict[str, Any] = {}
        for key, value in raw.items():
            if key not in known:
                hint = suggest(key, known)
                raise ConfigError(
                    f"serve settings: unknown setting '{key}';{hint} Settings: {', '.join(known)}"
                )
            values[key] = tuple(value) if isinstance(value, list) else value
        return cls(**values, api_key=api_key)

    def __repr__(self) -> str:  # never print the secret
        shown = "None" if self.api_key is None else "'***'"
        fields = ", ".join(
            f"{name}={getattr(self, name)!r}" for name in self.__dataclass_fields__ if name != "api_key"
        )
        return f"ServeSettings({fields}, api_key={shown})"


def parse_overrides(pairs: Sequence[str]) -> dict[str, Any]:
    """`["max_text_chars=5000", "cors_origins=[\"https://a\"]"]` → {name: value} for `--set`, to go
    through `ServeSettings.from_json` (which checks the names): the value is read as JSON when it is
    JSON (numbers, true/false, null, lists), else as text. The API key is refused: it comes only
    from the environment."""
    out: dict[str, Any] = {}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        name = name.strip()
        if not sep or not name:
            raise ConfigError(f"--set {pair!r}: expected NAME=VALUE, e.g. --set max_text_chars=5000")
        if name == "api_key":
            raise ConfigError("--set api_key: the API key comes only from the environment (--api-key-env)")
        try:
            out[name] = json.loads(text)
        except ValueError:
            out[name] = text
    return out


def _int_in(name: str, value: object, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigError(f"serve.{name}: expected an integer from {low} to {high}, got {value!r}")


def _number_in(name: str, value: object, low: float, high: float) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or not low <= value <= high
    ):
        raise ConfigError(f"serve.{name}: expected a number from {low:g} to {high:g}, got {value!r}")


def _names(name: str, value: object) -> None:
    if not isinstance(value, tuple) or not all(isinstance(v, str) and v.strip() for v in value):
        raise ConfigError(
            f"serve.{name}: expected a tuple of non-empty strings, got {value!r}; e.g. {name}=('a', 'b')"
        )
