"""The media files of `pumps_streams`: WAV recordings (audio/*.wav) and thermal PNG frames
(thermal/*.png), synthesised in memory and written together at the end.

Each writer draws its defects (missing recordings, recordings split in two, lost frames) from its
own generator in a fixed order, so the same seed gives the same bytes.
"""

from __future__ import annotations

import io
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import polars as pl
import soundfile as sf
from numpy.typing import NDArray
from PIL import Image

from plait.datasets import pumps_signals as sig

THERMAL_EVERY_S = 5
Ints = NDArray[np.int64]
Files = list[tuple[Path, bytes]]


def disjoint(n: int, rng: np.random.Generator, shares: dict[str, float]) -> dict[str, Ints]:
    """Disjoint sets of inspections, one per defect, each max(1, round(share * n)) when n allows."""
    order = rng.permutation(n)
    out, used = {}, 0
    for name, share in shares.items():
        k = min(max(1, round(share * n)), n - used)
        out[name] = np.sort(order[used : used + k])
        used += k
    return out


def sound_recordings(
    root: Path,
    clips: NDArray[np.int16],
    rng: np.random.Generator,
    messiness: dict[str, int],
    *,
    t_s: Ints,
    machine: Ints,
    names: list[str],
) -> tuple[Files, pl.DataFrame]:
    """One recording per inspection around its 1 s clip ([anchor - 1 s, anchor)); some split in two,
    some missing. The recording beyond the clip continues the sound by reflection (same spectrum).
    Returns the WAV files and their index (file, start in epoch ms, machine)."""
    n, per_ms = len(t_s), sig.SOUND_RATE_HZ // 1000
    sets = disjoint(n, rng, {"missing": 0.01, "spanning": 0.03})
    pre_ms = rng.integers(200, 3001, size=n)  # the recording starts this long before the clip
    post_ms = rng.integers(50, 251, size=n)
    cut_ms = rng.integers(100, 901, size=n)  # where a spanning clip rolls over to the next file
    missing, spanning = set(sets["missing"].tolist()), set(sets["spanning"].tolist())
    index: list[tuple[str, int, int]] = []  # file, start (epoch ms), machine index
    files: Files = []
    for i in range(n):
        if i in missing:
            continue
        start_ms = int(t_s[i]) * 1000 - 1000 - int(pre_ms[i])
        audio = np.pad(clips[i], (pre_ms[i] * per_ms, post_ms[i] * per_ms), mode="reflect")
        cuts = [0, (int(pre_ms[i]) + int(cut_ms[i])) * per_ms] if i in spanning else [0]
        for a, b in zip(cuts, [*cuts[1:], audio.size], strict=True):
            begin_ms = start_ms + a // per_ms
            name = f"audio/{names[machine[i]]}_{_stamp(begin_ms, ms=True)}.wav"
            wav = io.BytesIO()
            sf.write(wav, audio[a:b], sig.SOUND_RATE_HZ, subtype="PCM_16", format="WAV")
            files.append((root / name, wav.getvalue()))
            index.append((name, begin_ms, int(machine[i])))
    table = pl.DataFrame(
        {
            "file": [f for f, _, _ in index],
            "start": pl.Series([t for _, t, _ in index], dtype=pl.Int64),
            "machine": [names[j] for _, _, j in index],
        }
    )
    messiness.update(sound_missing=len(missing), sound_spanning=len(spanning))
    return files, table


def thermal_frames(
    root: Path,
    visible: NDArray[np.str_],
    rng: np.random.Generator,
    messiness: dict[str, int],
    *,
    t_s: Ints,
    machine: Ints,
    names: list[str],
) -> tuple[dict[str, float], Files]:
    """Three frames 5 s apart per inspection, the middle one within 0.8 s of it and the only one
    taken under load (it shows the fault); stamped to the second by a camera running fast.
    Returns the true offset of each machine's camera clock (for the config) and the PNG files."""
    n = len(t_s)
    fast_s = np.round(rng.uniform(2.0, 8.0, len(names)), 1)  # camera time = true time + fast_s
    loaded = sig.synth_thermal(visible, rng)  # (n, 32, 32, 3)
    idle = sig.synth_thermal(np.full(2 * n, "normal"), rng).reshape(n, 2, *loaded.shape[1:])
    lost = set(disjoint(n, rng, {"lost": 0.01})["lost"].tolist())
    true_ms = t_s * 1000 + rng.integers(-800, 801, size=n)
    files: Files = []
    for i in range(n):
        j = int(machine[i])
        for step, picture in ((-1, idle[i, 0]), (0, loaded[i]), (1, idle[i, 1])):
            if step == 0 and i in lost:
                continue
            camera_ms = int(true_ms[i]) + step * THERMAL_EVERY_S * 1000 + round(fast_s[j] * 1000)
            png = io.BytesIO()
            Image.fromarray(picture).save(png, format="PNG", compress_level=1)
            name = f"{names[j]}_{_stamp(camera_ms, ms=False)}.png"  # to the second
            files.append((root / "thermal" / name, png.getvalue()))
    seen = sorted(set(machine.tolist()))
    messiness.update(thermal_missing=len(lost), thermal_clock_offsets=len(seen))
    return {names[j]: -float(fast_s[j]) for j in seen}, files


def write_media(root: Path, files: Files) -> None:
    """Create audio/ and thermal/ under root and write the files there."""
    for folder in ("audio", "thermal"):
        (root / folder).mkdir(exist_ok=True)
    with ThreadPoolExecutor(max_workers=8) as pool:  # file creation dominates; soundfile/PIL go via memory
        list(pool.map(lambda item: item[0].write_bytes(item[1]), files))


def _stamp(t_ms: int, *, ms: bool) -> str:
    """Compact UTC time for file names: 20260301T101502 (frames) or 20260301T101502.250 (recordings)."""
    text = datetime.fromtimestamp(t_ms // 1000, tz=UTC).strftime("%Y%m%dT%H%M%S")
    return f"{text}.{t_ms % 1000:03d}" if ms else text
