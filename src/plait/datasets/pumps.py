"""`pumps`: a built-in predictive-maintenance demo where no single modality suffices.

Each row is one inspection of a centrifugal pump, labelled `fault` with one of `CLASSES`.
Every sensor sees only some faults; the other faults look normal to it:

| field     | kind       | tells apart (signature)                          | cannot tell apart          |
|-----------|------------|--------------------------------------------------|----------------------------|
| vibration | timeseries | bearing_wear (impacts ringing at 550-850 Hz),    | normal, overheating,       |
|           |            | imbalance (4-6x stronger 1x line),               | seal_leak                  |
|           |            | cavitation (broadband 150-1000 Hz bursts)        |                            |
| sound     | audio      | imbalance (low drone at 1x-4x running speed),    | normal, overheating,       |
|           |            | cavitation (gravel-like 600-2000 Hz crackle),    | bearing_wear               |
|           |            | seal_leak (steady 2.5-3.8 kHz hiss)              |                            |
| thermal   | image      | overheating (housing 45-62 C above ambient),     | normal, imbalance,         |
|           |            | bearing_wear (hot spot at the bearing end),      | cavitation                 |
|           |            | seal_leak (cool wet streak below the seal)       |                            |
| note      | text       | ~45 % name the fault in varied words, ~40 % are routine or silent, ~15 % are   |
|           |            | wrong (another fault) or misleading ("checked for seal leak, none found")     |
| specs     | tabular    | weak priors only: old pumps leak, the HX-50 model overheats, the hill site      |
|           |            | cavitates, the harbour site leaks, 2-pole (2900 rpm) pumps go out of balance   |

So each sensor field sorts the six classes into four groups (a 4/6 ceiling), and the groups are
chosen so that together they name every class: each fault but overheating is shown by two sensor
fields, normal is "nothing anywhere", and only normal vs overheating without the thermal picture
is left to the note. Faults are early-stage: a signature has developed in a given modality in
85-99 % of the faulty pumps, independently per modality (`DEVELOPED`), which keeps each sensor
field alone near 60 % accuracy. Measured with hand-made features and logistic regression
(bench/pumps_separability.py, n=1800, 30 % held out, seeds 0-3): sensor fields alone 0.59-0.65,
note 0.54-0.59, specs 0.32-0.34, all fields together 0.97-0.99. Signals vary per pump (running
speed, amplitudes, resonance, housing position and size, ambient temperature, microphone
distance), so no single bin or pixel gives a fault away.

Messy on purpose: round(corrupt_fraction * n) rows of each field, drawn independently per field,
are broken, and `PumpsDataset.corrupted` lists their inspection ids per kind:
`thermal_truncated` (PNG cut in half), `sound_empty` (zero-length WAV) and `sound_garbage`
(random bytes) half each, `note_empty` (""), `vibration_nan_run` (8-32 steps of NaN on all axes,
the rest finite) and `vibration_all_nan` half each, `specs_null` (one to three numerics null).
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from numbers import Integral
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import soundfile as sf
from numpy.typing import NDArray
from PIL import Image

from plait.datasets import pumps_signals as sig
from plait.errors import ConfigError

CLASSES: tuple[str, ...] = ("normal", "bearing_wear", "imbalance", "cavitation", "overheating", "seal_leak")
LABEL = "fault"
# The demo's model and training settings, shared by the table and the streams demo configs.
DEMO_MODEL: dict[str, int] = {"dim": 64, "hidden": 128}
DEMO_TRAIN: dict[str, float | int] = {
    "epochs": 40,
    "batch_size": 64,
    "lr": 3e-3,
    "modality_dropout": 0.25,
    "patience": 8,
}
TABLE_NAME = "pumps.parquet"

# P(signature developed | fault, modality); faults missing from a modality never show there.
DEVELOPED: Mapping[str, Mapping[str, float]] = {
    "vibration": {"bearing_wear": 0.9, "imbalance": 0.9, "cavitation": 0.9},
    "sound": {"imbalance": 0.9, "cavitation": 0.9, "seal_leak": 0.9},
    "thermal": {"overheating": 0.99, "bearing_wear": 0.85, "seal_leak": 0.85},
}
NUMERIC = ("power_kw", "age_years", "rpm")
CATEGORICAL = ("pump_model", "site")
MODELS = ("KP-100", "KP-200", "HX-50", "AQ-300")
POWER_KW = {"KP-100": (7.5, 15.0), "KP-200": (15.0, 30.0), "HX-50": (3.0, 7.5), "AQ-300": (30.0, 55.0)}
SITES = ("north", "south", "harbor", "hill")


@dataclass(frozen=True)
class PumpsDataset:
    """Where `generate_pumps` wrote the demo and how to configure plait for it."""

    root: Path  # media root: `sound` and `thermal` paths are relative to it
    table_path: Path  # the Parquet sample table
    label: str
    classes: tuple[str, ...]
    fields: Mapping[str, Mapping[str, Any]]  # the config's `fields:` section
    corrupted: Mapping[str, tuple[str, ...]]  # corruption kind -> inspection ids, sorted


def pumps_fields() -> dict[str, dict[str, Any]]:
    """The `fields:` section of a plait config for the pumps table."""
    return {
        "vibration": {"kind": "timeseries"},
        "sound": {"kind": "audio", "sample_rate": 8000, "max_seconds": 1.0, "n_mels": 32, "n_fft": 256,
                  "hop_length": 128},
        "thermal": {"kind": "image", "size": 32},
        "note": {"kind": "text", "max_tokens": 32, "vocab_size": 500},
        "specs": {"kind": "tabular", "numeric": list(NUMERIC), "categorical": list(CATEGORICAL)},
    }  # fmt: skip


def generate_pumps(
    out_dir: Path | str, n: int = 1800, seed: int = 0, corrupt_fraction: float = 0.02
) -> PumpsDataset:
    """Write `pumps.parquet`, `audio/*.wav` and `thermal/*.png` under out_dir; same seed, same bytes."""
    if isinstance(n, bool) or not isinstance(n, Integral) or n < 1:
        raise ConfigError(f"generate_pumps: n must be an integer >= 1 (rows to generate), got {n!r}")
    if not 0.0 <= corrupt_fraction <= 0.5:
        raise ConfigError(
            f"generate_pumps: corrupt_fraction must be a fraction in [0, 0.5], got {corrupt_fraction!r}; "
            "pass 0 for clean data"
        )
    n = int(n)
    root = Path(out_dir)
    (root / "audio").mkdir(parents=True, exist_ok=True)
    (root / "thermal").mkdir(parents=True, exist_ok=True)
    streams = np.random.default_rng(seed).spawn(10)
    ids = [f"insp-{i:05d}" for i in range(n)]
    faults = np.array(CLASSES)[streams[0].permutation(np.arange(n) % len(CLASSES))]
    specs = _specs(faults, streams[1])
    rpm = np.asarray(specs["rpm"], dtype=np.float64)
    shown = {m: developed_faults(faults, m, streams[2 + i]) for i, m in enumerate(DEVELOPED)}
    vibration = sig.synth_vibration(shown["vibration"], rpm, streams[5])
    sound = sig.synth_sound(shown["sound"], rpm, streams[6])
    thermal = sig.synth_thermal(shown["thermal"], streams[7])
    notes = technician_notes(faults, streams[8])
    corrupted = _corrupt(vibration, notes, specs, n, corrupt_fraction, streams[9])
    _write_media(root, ids, sound, thermal, corrupted, streams[9])
    table = pl.DataFrame(
        {
            "inspection_id": ids,
            **{c: specs[c] for c in (*CATEGORICAL, *NUMERIC)},
            "vibration": pl.Series("vibration", vibration).cast(pl.List(pl.List(pl.Float32))),
            "sound": [f"audio/{i}.wav" for i in ids],
            "thermal": [f"thermal/{i}.png" for i in ids],
            "note": notes,
            LABEL: faults.tolist(),
        },
        schema_overrides={c: pl.Float64 for c in NUMERIC},
    )
    table_path = root / TABLE_NAME
    table.write_parquet(table_path)
    return PumpsDataset(
        root=root,
        table_path=table_path,
        label=LABEL,
        classes=CLASSES,
        fields=pumps_fields(),
        corrupted={kind: tuple(sorted(ids[i] for i in rows)) for kind, rows in corrupted.items()},
    )


def developed_faults(faults: NDArray[np.str_], modality: str, rng: np.random.Generator) -> NDArray[np.str_]:
    """The fault each row shows in `modality`: its own where developed there, else "normal"."""
    rates = DEVELOPED[modality]
    p = np.array([rates.get(f, 0.0) for f in faults])
    return np.where(rng.random(len(faults)) < p, faults, "normal")


# ----------------------------------------------------------------------------- specs


def _specs(faults: NDArray[np.str_], rng: np.random.Generator) -> dict[str, list[Any]]:
    """Nameplate data and context, with weak class priors only."""
    n = len(faults)
    model_p = np.where((faults == "overheating")[:, None], [0.17, 0.17, 0.5, 0.16], [0.25, 0.25, 0.25, 0.25])
    models = [MODELS[i] for i in _choose_rows(model_p, rng)]
    site_p = np.full((n, 4), 0.25)
    site_p[faults == "cavitation"] = [0.17, 0.17, 0.16, 0.5]  # the hill site has a low suction head
    site_p[faults == "seal_leak"] = [0.17, 0.17, 0.5, 0.16]  # salt air at the harbour eats seals
    sites = [SITES[i] for i in _choose_rows(site_p, rng)]
    low, high = np.array([POWER_KW[m] for m in models]).T
    power = np.round(rng.uniform(low, high), 1)
    age = rng.gamma(2.0, 3.0, n) + 0.5
    age += np.where(faults == "seal_leak", rng.uniform(3.0, 8.0, n), 0.0)
    age += np.where(faults == "bearing_wear", rng.uniform(1.0, 4.0, n), 0.0)
    two_pole = rng.random(n) < np.where(faults == "imbalance", 0.75, 0.45)
    nameplate = np.where(two_pole, rng.choice([2900.0, 2950.0], n), rng.choice([1450.0, 1475.0], n))
    rpm = np.round(nameplate * rng.uniform(0.985, 1.0, n), 1)  # measured at the inspection
    return {
        "pump_model": models,
        "site": sites,
        "power_kw": power.tolist(),
        "age_years": np.round(np.minimum(age, 30.0), 1).tolist(),
        "rpm": rpm.tolist(),
    }


def _choose_rows(p: NDArray[np.float64], rng: np.random.Generator) -> NDArray[np.int64]:
    """One category index per row from row-wise probabilities p (n, K)."""
    cumulative = np.cumsum(p / p.sum(axis=1, keepdims=True), axis=1)
    picks = (rng.random((len(p), 1)) > cumulative).sum(axis=1)
    return np.minimum(picks, p.shape[1] - 1)


# ----------------------------------------------------------------------------- notes

_SAYS: Mapping[str, tuple[str, ...]] = {
    "normal": (
        "running smoothly", "no abnormal findings", "all readings within spec", "unit in good condition",
        "operating normally, quiet and cool", "healthy, no action needed",
    ),
    "bearing_wear": (
        "bearing noise at drive end", "worn bearing suspected", "grinding from bearing housing",
        "bearing running rough", "drive end bearing due for replacement", "rumble from the bearings",
    ),
    "imbalance": (
        "impeller out of balance", "shaking at running speed", "strong vibration once per revolution",
        "rotor imbalance", "unit wobbles on its base", "needs balancing, rocking",
    ),
    "cavitation": (
        "cavitation at inlet", "sounds like gravel in the pump", "suction pressure too low",
        "pitting on impeller", "noisy suction side, cavitating", "vapour bubbles at intake",
    ),
    "overheating": (
        "casing too hot to touch", "motor running hot", "thermal trip last week",
        "overheating under load", "high casing temperature", "smell of hot insulation",
    ),
    "seal_leak": (
        "mechanical seal leaking", "water dripping under the seal", "seal weeping",
        "puddle below the pump", "leak at shaft seal", "wet streak on casing",
    ),
}  # fmt: skip
_SHORT = {
    "bearing_wear": "bearing wear", "imbalance": "imbalance", "cavitation": "cavitation",
    "overheating": "overheating", "seal_leak": "seal leak",
}  # fmt: skip
_ROUTINE = (
    "checked, nothing to report", "routine inspection done", "visual check ok", "readings taken",
    "filters cleaned", "greased per schedule", "no comment", "n/a", "see previous log",
    "area clean, guards in place", "routine round, values logged", "oil level ok",
    "paint touch up needed on base", "access blocked, quick look only", "tagged and photographed",
    "label faded, replaced", "as per checklist", "no time for full check", "monthly round",
    "walked past, looked fine from a distance",
)  # fmt: skip
_OPEN = (
    "", "", "inspection:", "tech note:", "observed:", "shift report -", "walkaround:",
    "operator reports", "night shift:", "pm visit:",
)  # fmt: skip
_CLOSE = (
    "", "", "", "will monitor", "ticket raised", "follow up next week", "parts ordered",
    "logged for planner", "recommend check at next stop", "informed supervisor", "see photo",
)  # fmt: skip


def technician_notes(faults: NDArray[np.str_], rng: np.random.Generator) -> list[str]:
    """~45 % name the fault, ~40 % routine or silent, ~15 % wrong (another fault, or a false all-clear)."""
    kind = rng.choice(3, size=len(faults), p=[0.45, 0.40, 0.15])
    notes = []
    for fault, k in zip(faults.tolist(), kind.tolist(), strict=True):
        opening = _pick(_OPEN, rng) if k != 1 else ""
        if k == 0:
            body = _pick(_SAYS[fault], rng)
        elif k == 1:
            body = _pick(_ROUTINE, rng)
        elif fault != "normal" and rng.random() < 0.4:
            body = f"checked for {_SHORT[fault]}, none found"
        else:
            body = _pick(_SAYS[_pick([c for c in CLASSES if c != fault], rng)], rng)
        closing = _pick(_CLOSE, rng)
        text = f"{opening} {body}".strip()
        notes.append(f"{text}, {closing}" if closing else text)
    return notes


def _pick(options: tuple[str, ...] | list[str], rng: np.random.Generator) -> str:
    return options[int(rng.integers(len(options)))]


# ----------------------------------------------------------------------------- corruption and files


def _corrupt(
    vibration: NDArray[np.float32],
    notes: list[str],
    specs: dict[str, list[Any]],
    n: int,
    fraction: float,
    rng: np.random.Generator,
) -> dict[str, NDArray[np.int64]]:
    """Break round(fraction * n) rows of each field in place; return kind -> row indices."""
    k = round(fraction * n)
    kinds: dict[str, NDArray[np.int64]] = {}
    for names in (
        ("thermal_truncated",),
        ("sound_empty", "sound_garbage"),
        ("note_empty",),
        ("vibration_nan_run", "vibration_all_nan"),
        ("specs_null",),
    ):  # one field each, drawn independently
        rows = rng.choice(n, size=k, replace=False)
        share = -(-k // len(names))  # the first kind of a field gets the odd row
        for j, name in enumerate(names):
            kinds[name] = np.sort(rows[j * share : (j + 1) * share]).astype(np.int64)
    for i in kinds["note_empty"]:
        notes[i] = ""
    for i in kinds["vibration_nan_run"]:
        length = int(rng.integers(8, 33))
        start = int(rng.integers(0, sig.VIBRATION_STEPS - length + 1))
        vibration[i, start : start + length, :] = np.nan  # the logger dropped out for a moment
    vibration[kinds["vibration_all_nan"]] = np.nan
    for i in kinds["specs_null"]:
        nulled = rng.choice(len(NUMERIC), size=int(rng.integers(1, len(NUMERIC) + 1)), replace=False)
        for c in nulled:
            specs[NUMERIC[c]][i] = None
    return kinds


def _write_media(
    root: Path,
    ids: list[str],
    sound: NDArray[np.int16],
    thermal: NDArray[np.uint8],
    corrupted: Mapping[str, NDArray[np.int64]],
    rng: np.random.Generator,
) -> None:
    """Encode every file in memory, then write them from a few threads (file creation dominates)."""
    truncated, empty, garbage = (
        set(corrupted[k].tolist()) for k in ("thermal_truncated", "sound_empty", "sound_garbage")
    )
    files: list[tuple[Path, bytes]] = []
    for i, name in enumerate(ids):
        png = io.BytesIO()
        Image.fromarray(thermal[i]).save(png, format="PNG")
        data = png.getvalue()
        files.append((root / "thermal" / f"{name}.png", data[: len(data) // 2] if i in truncated else data))
        if i in empty:
            data = b""
        elif i in garbage:
            data = rng.integers(0, 256, size=int(rng.integers(64, 512)), dtype=np.uint8).tobytes()
        else:
            wav = io.BytesIO()  # through memory: soundfile syncs a file on close, which is slow
            sf.write(wav, sound[i], sig.SOUND_RATE_HZ, subtype="PCM_16", format="WAV")
            data = wav.getvalue()
        files.append((root / "audio" / f"{name}.wav", data))
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda item: item[0].write_bytes(item[1]), files))
