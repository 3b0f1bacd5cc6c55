"""An audio file (or a segment of one) per row → a standardised log-mel spectrogram.

`AudioModality("sound", offset_column="start_s", duration_column="length_s", max_seconds=2.0)`
reads with soundfile only the frames it needs (the segment, at most `max_seconds` of it, from its
start), mixes to mono, resamples to `sample_rate` when the file differs, and returns
FloatTensor[n_mels, frames] with frames = 1 + samples // hop_length, standardised with the global
mean/std of the training log-mel values. `collate` pads frames and returns the frame mask.
A missing offset value means the file start; a missing duration means up to `max_seconds`.
"""

from __future__ import annotations

import io
import math
import os
from collections import Counter
from collections.abc import Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import polars as pl
import soundfile as sf
import torch
from torch import Tensor

from plait.errors import BundleError, ConfigError
from plait.modalities.base import JSONState, NotFittedError, is_empty, require_columns, resolve_media_path
from plait.modalities.contract import InputLimits, InputSpec, Role, Widget
from plait.modalities.conv import MaskedConv1dEncoder
from plait.modalities.media_probe import AUDIO_FORMATS, probe_audio
from plait.modalities.melspec import MelSpectrogram
from plait.modalities.options import choice, flag, optional_column, positive_int, short_error
from plait.modalities.spectrogram_cnn import SpectrogramEncoder
from plait.modalities.summary import spectrogram_stats
from plait.types import Absent

FIT_LIMIT = 256  # decodable training clips used for the log-mel statistics
ANTI_ALIAS_HALF_WIDTH = 32  # taps each side of the low-pass used before downsampling
INIT_MAX_RATE = 16000  # plait init: the default sample rate; higher rates are resampled down to it
INIT_MAX_SECONDS = 30.0  # plait init: longer clips are cut (the whole clip is held in memory per row)
ENCODERS = ("conv2d", "conv1d")  # the first is the default; see build_encoder
LEGACY_ENCODER = "conv1d"  # what a bundle saved before the encoder option was built with
DURATION_QUANTILE = 0.95  # plait init: max_seconds covers this share of the clips


def resample(wave: np.ndarray, source_hz: int, target_hz: int) -> np.ndarray:
    """Linear interpolation onto the target grid. When downsampling, a Hann-windowed sinc
    low-pass at the new Nyquist frequency runs first, so content above it does not alias.
    (Not polyphase: simpler and fast enough for clips of a few seconds; the interpolation
    slightly dulls the top octave.)"""
    if target_hz < source_hz:
        cutoff = 0.5 * target_hz / source_hz  # cycles per input sample
        taps = np.arange(-ANTI_ALIAS_HALF_WIDTH, ANTI_ALIAS_HALF_WIDTH + 1)
        kernel = 2.0 * cutoff * np.sinc(2.0 * cutoff * taps) * np.hanning(taps.size)
        kernel /= kernel.sum()
        full = np.convolve(wave, kernel)  # (N + K - 1,)
        wave = full[ANTI_ALIAS_HALF_WIDTH : ANTI_ALIAS_HALF_WIDTH + wave.size]  # centred, (N,)
    n_out = round(wave.size * target_hz / source_hz)
    positions = np.arange(n_out) * (source_hz / target_hz)
    return np.interp(positions, np.arange(wave.size), wave).astype(np.float32)


def _seconds(value: object) -> float | None:
    """A finite float, or None when the cell is empty or not a number."""
    if is_empty(value) or isinstance(value, bool):
        return None
    try:
        seconds = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return seconds if math.isfinite(seconds) else None


class AudioModality:
    """One clip per row → standardised log-mel FloatTensor[n_mels, frames]."""

    kind: ClassVar[str] = "audio"
    perturbations: ClassVar[tuple[str, ...]] = ("background_noise", "segment_dropout")
    noise_family: ClassVar[str] = "background_noise"

    def __init__(
        self,
        name: str,
        *,
        column: str | None = None,
        offset_column: str | None = None,
        duration_column: str | None = None,
        sample_rate: int = 16000,
        max_seconds: float = 2.0,
        n_mels: int = 40,
        n_fft: int = 400,
        hop_length: int = 160,
        encoder: str = ENCODERS[0],
        augment: bool = True,
        centre_bands: bool = False,
    ) -> None:
        self.name = name
        self.encoder = choice(name, "encoder", encoder, ENCODERS)
        self.augment = flag(name, "augment", augment)
        self.centre_bands = flag(name, "centre_bands", centre_bands)
        self.column = optional_column(name, "column", column) or name
        self.offset_column = optional_column(name, "offset_column", offset_column)
        self.duration_column = optional_column(name, "duration_column", duration_column)
        self.sample_rate = positive_int(name, "sample_rate", sample_rate, maximum=384_000)
        if isinstance(max_seconds, bool) or not isinstance(max_seconds, int | float) or not max_seconds > 0:
            raise ConfigError(f"fields.{name}.max_seconds: expected a positive number, got {max_seconds!r}")
        if not math.isfinite(max_seconds):
            raise ConfigError(f"fields.{name}.max_seconds: expected a finite number, got {max_seconds!r}")
        self.max_seconds = float(max_seconds)
        self.n_mels = positive_int(name, "n_mels", n_mels, maximum=512)
        self.n_fft = positive_int(name, "n_fft", n_fft, maximum=65_536)
        self.hop_length = positive_int(name, "hop_length", hop_length, maximum=65_536)
        self.melspec = MelSpectrogram(self.sample_rate, self.n_fft, self.hop_length, self.n_mels)
        self._stats: tuple[float, float] | None = None  # (mean, std) of training log-mel values

    def perturbation_context(self) -> dict[str, Any]:
        """The training log-mel statistics (background_noise, segment_dropout)."""
        state = self.get_state()
        return {"log_mel_mean": state["mean"], "log_mel_std": state["std"]}

    def columns(self) -> tuple[str, ...]:
        optional = (self.offset_column, self.duration_column)
        return (self.column, *(c for c in optional if c is not None))

    def input_spec(self, limits: InputLimits) -> InputSpec:
        """Audio bytes (base64 or an upload) checked from the header, and the segment's offset and
        duration as numbers; a clip is charged the seconds the model reads of it (`max_seconds`)."""
        roles: dict[str, Role] = {c: "media" if c == self.column else "number" for c in self.columns()}
        return InputSpec(
            roles=roles,
            accepts=f"base64 text or data URL, or a file upload ({AUDIO_FORMATS})",
            widget=Widget("file", accept="audio/*", preview="audio"),
            main_columns=(self.column,),
            limits={"max_seconds": limits.max_audio_seconds, "max_bytes": limits.max_file_bytes},
            probe=partial(
                probe_audio,
                max_bytes=limits.max_file_bytes,
                max_seconds=limits.max_audio_seconds,
                read_s=self.max_seconds,
            ),
        )

    def file_columns(self) -> tuple[str, ...]:
        """Audio paths are files the field reads (fingerprinted in provenance)."""
        return (self.column,)

    # ---- reading ---------------------------------------------------------------------------

    def _segment(self, row: Mapping[str, Any]) -> tuple[float, float | None] | Absent:
        """(offset_s, duration_s or None) from the row's optional segment columns."""
        offset_s, duration_s = 0.0, None
        if self.offset_column is not None and not is_empty(row.get(self.offset_column)):
            offset = _seconds(row.get(self.offset_column))
            if offset is None or offset < 0:
                return Absent("bad segment", f"offset {row.get(self.offset_column)!r} is not a number >= 0 s")
            offset_s = offset
        if self.duration_column is not None and not is_empty(row.get(self.duration_column)):
            duration = _seconds(row.get(self.duration_column))
            if duration is None or duration <= 0:
                return Absent(
                    "bad segment", f"duration {row.get(self.duration_column)!r} is not a number > 0 s"
                )
            duration_s = duration
        return offset_s, duration_s

    def wave(self, row: Mapping[str, Any], root: Path) -> np.ndarray | Absent:
        """Mono float32 [N] at `sample_rate`, at most max_seconds long."""
        value = row.get(self.column)
        if is_empty(value) or (isinstance(value, bytes | bytearray) and len(value) == 0):
            return Absent("empty")
        segment = self._segment(row)
        if isinstance(segment, Absent):
            return segment
        if isinstance(value, bytes | bytearray):
            return self._read(io.BytesIO(value), *segment)
        if not isinstance(value, str | os.PathLike):
            return Absent("undecodable", f"expected a file path or audio bytes, got {type(value).__name__}")
        path = resolve_media_path(str(value), root, self.name)
        if not path.is_file():
            return Absent("unreadable", detail=str(path))
        try:
            with path.open("rb") as fh:
                return self._read(fh, *segment)
        except OSError as exc:
            return Absent("unreadable", f"{path}: {short_error(exc)}")

    def _read(self, source: Any, offset_s: float, duration_s: float | None) -> np.ndarray | Absent:
        missing = wav_shortfall(source)
        if missing is not None:
            return Absent("truncated", missing)
        try:
            with sf.SoundFile(source) as audio:
                source_hz = audio.samplerate
                start = round(offset_s * source_hz)
                if start > 0 and start >= audio.frames:
                    length_s = audio.frames / source_hz
                    return Absent(
                        "empty", f"offset {offset_s:g} s is past the end of the {length_s:.3f} s file"
                    )
                wanted = math.ceil(self.max_seconds * source_hz)
                if duration_s is not None:
                    wanted = min(wanted, round(duration_s * source_hz))
                if start > 0:
                    audio.seek(start)
                frames = audio.read(wanted, dtype="float32", always_2d=True)  # (N, channels)
        except Exception as exc:  # libsndfile reports corrupt or unknown files with varied errors
            reason = getattr(exc, "error_string", None)  # libsndfile's own words, without the file object
            return Absent("undecodable", reason if isinstance(reason, str) else short_error(exc))
        if frames.shape[0] == 0:
            return Absent("empty")
        if not np.isfinite(frames).all():
            return Absent("non-finite", f"{int((~np.isfinite(frames)).sum())} samples are NaN or infinite")
        wave = frames.mean(axis=1)  # (N, channels) -> (N,)
        if source_hz != self.sample_rate:
            wave = resample(wave, source_hz, self.sample_rate)
            if wave.size == 0:
                return Absent("too short", f"{frames.shape[0]} sample(s) at {source_hz} Hz")
        return wave.astype(np.float32, copy=False)

    def _logmel(self, row: Mapping[str, Any], root: Path) -> Tensor | Absent:
        wave = self.wave(row, root)
        if isinstance(wave, Absent):
            return wave
        with torch.no_grad():
            return self.melspec(torch.from_numpy(wave))  # (N,) -> (n_mels, frames)

    def load(self, row: Mapping[str, Any], root: Path) -> Tensor | Absent:
        mean, std = self._fitted()
        logmel = self._logmel(row, root)
        if isinstance(logmel, Absent):
            return logmel
        return (logmel - mean) / std  # (n_mels, frames)

    # ---- fitting and state -----------------------------------------------------------------

    def fit(self, table: pl.DataFrame, root: Path) -> None:
        require_columns(table, self.name, self.columns())
        rows = [r for r in table.select(self.columns()).iter_rows(named=True) if not is_empty(r[self.column])]
        total = squares = 0.0
        count = used = 0
        # A seeded permutation: a deterministic sample that does not depend on the row order.
        for index in np.random.default_rng(0).permutation(len(rows)).tolist():
            if used >= FIT_LIMIT:
                break
            logmel = self._logmel(rows[index], root)
            if isinstance(logmel, Absent):
                continue
            values = logmel.double()
            total += float(values.sum())
            squares += float(values.square().sum())
            count += values.numel()
            used += 1
        if count == 0:  # nothing decodable: leave the log-mel values as they are
            self._stats = (0.0, 1.0)
            return
        mean = total / count
        self._stats = (mean, max(math.sqrt(max(squares / count - mean**2, 0.0)), 1e-3))

    def _fitted(self) -> tuple[float, float]:
        if self._stats is None:
            raise NotFittedError.for_field(self.name, self.kind)
        return self._stats

    def get_state(self) -> JSONState:
        mean, std = self._fitted()
        return {
            "column": self.column,
            "sample_rate": self.sample_rate,
            "n_mels": self.n_mels,
            "mean": mean,
            "std": std,
            "encoder": self.encoder,
        }

    def set_state(self, state: JSONState) -> None:
        try:
            column = str(state["column"])
            sample_rate, n_mels = int(state["sample_rate"]), int(state["n_mels"])
            mean, std = float(state["mean"]), float(state["std"])
            encoder = choice(self.name, "encoder", state.get("encoder", LEGACY_ENCODER), ENCODERS)
        except (KeyError, TypeError, ValueError, ConfigError) as exc:
            raise BundleError(
                f"field '{self.name}': audio state is malformed ({short_error(exc)}); expected keys "
                "column, sample_rate, n_mels, mean, std — re-save the bundle"
            ) from None
        if (sample_rate, n_mels) != (self.sample_rate, self.n_mels):
            raise BundleError(
                f"field '{self.name}': the saved state is for sample_rate={sample_rate}, n_mels={n_mels} but "
                f"the field is configured with {self.sample_rate}, {self.n_mels}; use the bundle's config"
            )
        if not (math.isfinite(mean) and math.isfinite(std) and std > 0):
            raise BundleError(
                f"field '{self.name}': audio state mean={mean}, std={std} is not usable; re-save"
            )
        self.column = column
        self.encoder = encoder  # the encoder the saved weights belong to
        self._stats = (mean, std)

    # ---- batching and encoder --------------------------------------------------------------

    def collate(self, items: Sequence[Tensor | None]) -> tuple[Tensor, Tensor | None]:
        """values [B, n_mels, F_max] zero-padded; mask [B, F_max] True for real frames."""
        longest = max((item.shape[1] for item in items if item is not None), default=1)
        values = torch.zeros(len(items), self.n_mels, longest)
        mask = torch.zeros(len(items), longest, dtype=torch.bool)
        for i, item in enumerate(items):
            if item is not None:
                values[i, :, : item.shape[1]] = item
                mask[i, : item.shape[1]] = True
        return values, mask

    def summary_features(self, values: Tensor, mask: Tensor | None) -> Tensor:
        """For the boosting baseline: each mel band's mean and std over the clip, and the clip's."""
        return spectrogram_stats(values, mask)  # (B, M, F) -> (B, 2M + 4)

    def build_encoder(self, dim: int) -> SpectrogramEncoder | MaskedConv1dEncoder:
        """`conv2d` (default): 3×3 convs over bands × frames, SpecAugment while training when
        `augment`, each band centred on its clip mean when `centre_bands`; `conv1d`: convs over
        frames with the bands as channels (plait's encoder before issue 15). Both: stride 2 twice
        in time, F frames → ceil(F / 4) tokens."""
        if self.encoder == "conv1d":
            return MaskedConv1dEncoder(self.n_mels, dim, strides=(2, 2, 1))
        return SpectrogramEncoder(self.n_mels, dim, augment=self.augment, centre=self.centre_bands)

    # ---- plait init: a column of audio paths -------------------------------------------------

    file_extensions: ClassVar[tuple[str, ...]] = (".wav", ".flac", ".ogg", ".mp3", ".aiff")
    # A clip may be a segment of its file: the options naming its columns of start and length
    # in seconds (what `plait align` writes beside an audio stream), in that order.
    segment_options: ClassVar[tuple[str, str]] = ("offset_column", "duration_column")

    @staticmethod
    def options_from_files(paths: Sequence[Path]) -> tuple[dict[str, Any], str]:
        """The files' own `sample_rate` (8 kHz speech stays 8000; higher rates than INIT_MAX_RATE
        are resampled to it) and a `max_seconds` covering 95 % of the clips, from the headers of
        `paths` (soundfile reads no sample)."""
        rates: Counter[int] = Counter()
        seconds: list[float] = []
        for path in paths:
            try:
                info = sf.info(str(path))
            except Exception:  # libsndfile reports unknown or corrupt files with varied errors
                continue
            rates[int(info.samplerate)] += 1
            seconds.append(float(info.frames) / info.samplerate if info.samplerate > 0 else 0.0)
        if not rates:
            return {}, f"none of {len(paths)} files opened as audio; sample_rate and max_seconds at defaults"
        native = rates.most_common(1)[0][0]
        rate = min(native, INIT_MAX_RATE)
        heard = ", ".join(f"{hz} Hz ({n})" for hz, n in rates.most_common(3))
        if rate < native:
            above = f"raise it for content above {rate // 2} Hz"
            kept = f"sample_rate {rate} (resampled down from {native}; {above})"
        else:
            kept = f"sample_rate {rate} (their own, not resampled)"
        lengths, covered = AudioModality.options_from_durations(seconds)
        read = f"read {len(seconds)} headers: {heard} → {kept}; files {covered}"
        return {"sample_rate": rate, **lengths}, read

    @staticmethod
    def options_from_durations(seconds: Sequence[float]) -> tuple[dict[str, Any], str]:
        """A `max_seconds` covering DURATION_QUANTILE of clips lasting `seconds` (rounded up to
        0.1 s, at most INIT_MAX_SECONDS), and a few words on the durations."""
        positive = np.asarray([s for s in seconds if math.isfinite(s) and s > 0], dtype=np.float64)
        if positive.size == 0:
            return {"max_seconds": 2.0}, "of unknown length → max_seconds 2.0"
        high = float(np.quantile(positive, DURATION_QUANTILE))
        max_seconds = min(max(math.ceil(high * 10 - 1e-9) / 10, 0.1), INIT_MAX_SECONDS)
        low, top = float(positive.min()), float(positive.max())
        words = f"{low:.2f} s" if low == top else f"{low:.2f}–{top:.2f} s (95th percentile {high:.2f} s)"
        if max_seconds < high:
            words += f"; longer clips are cut at {INIT_MAX_SECONDS:g} s"
        return {"max_seconds": max_seconds}, f"of {words} → max_seconds {max_seconds}"


def wav_shortfall(source: Any) -> str | None:
    """For a RIFF WAV whose data chunk declares more bytes than the file holds (a copy cut short),
    what is missing; None for a whole WAV, another format, or a size the header leaves open.
    libsndfile reads what is there and reports it as the whole recording, so a clip cut to a third
    would otherwise be used as complete. `source` is a seekable binary file; its position is kept."""
    start = source.tell()
    head = source.read(1 << 16)
    end = source.seek(0, io.SEEK_END)
    source.seek(start)
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return None
    position, rate, block = 12, 0, 0
    while position + 8 <= len(head):
        chunk, size = (
            head[position : position + 4],
            int.from_bytes(head[position + 4 : position + 8], "little"),
        )
        body = position + 8
        if chunk == b"fmt " and body + 16 <= len(head):
            rate = int.from_bytes(head[body + 4 : body + 8], "little")
            block = int.from_bytes(head[body + 12 : body + 14], "little")
        if chunk == b"data":
            if size in (0, 0xFFFFFFFF):
                return None  # a streamed WAV: the size was never filled in
            held = end - start - body
            if held >= size or held >= size - max(block, 1):
                return None
            per_second = rate * block if rate and block else 0
            if per_second:
                declared, kept = size / per_second, held / per_second
                return f"the header declares {declared:.2f} s of audio, the file holds {kept:.2f} s"
            return f"the header declares {size} bytes of audio, the file holds {held}"
        position = body + size + (size & 1)
    return None
