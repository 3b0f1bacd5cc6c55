"""`pumps` as raw streams: the demo's evidence as a plant would log it, for `plait align`.

The same six faults and signatures as `pumps.py` (pumps_signals.py draws them, so each sensor
field alone stays near 0.6 and the fused model near 0.97), but n inspections of `machines` pumps
over a few weeks, each an anchor (a row of `events.csv`: time, machine, fault), and every field a
stream with its own clock and its own faults:

| file                 | stream    | what is messy                                                        |
|----------------------|-----------|----------------------------------------------------------------------|
| vibration.parquet    | vibration | 200 Hz, time in epoch MILLISECONDS with ±1 ms stamping jitter, for   |
|                      |           | the 1.28 s before each inspection (+20 ms either side); short        |
|                      |           | dropouts (bridged by interpolation, max_gap_s 0.05), long ones (the  |
|                      |           | field is absent), NaN readings, exact duplicate rows, swapped rows,  |
|                      |           | and one machine whose logger clock steps back 3 s between two        |
|                      |           | inspections (idle data; re-synced before the next one)               |
| audio_index.csv      | sound     | WAV recordings (8 kHz) that start 0.2-3 s before the clip (the 1 s   |
| audio/*.wav          |           | ending at the inspection) and end 50-250 ms after it; ~3 % of clips  |
|                      |           | span two files (the recorder rolled over), ~1 % have no recording    |
| thermal/*.png        | thermal   | frames every 5 s, stamped in the file name to the second by a camera |
|                      |           | that runs 2-8 s fast (per machine; the true offsets are the stream's |
|                      |           | `offsets_s` in the config); only the frame of the inspection run     |
|                      |           | shows the fault, the idle frames 5 s before and after look normal,   |
|                      |           | so without the offsets the nearest frame is mostly the wrong one;    |
|                      |           | ~1 % of inspections lost that frame                                  |
| log.csv              | note      | the technician's note 1-30 min before the inspection (~2 % missing), |
|                      |           | plus routine lines at random times (some fall into the hour window)  |
| machines.csv         | machines  | an asset register: valid-from records whose attributes change (age   |
|                      |           | updates, pump model swaps); one machine is registered late, so its   |
|                      |           | first inspections have no attributes                                 |

Offsets of signal streams (timeseries, audio) can be measured with `plait align --estimate-offset A B`;
it does not read image streams, so the thermal offsets are written into the config as known.

The asset register carries the table version's weak priors: faults are drawn per inspection from
the attributes valid at that time (HX-50 overheats, the hill site cavitates, the harbour leaks,
old pumps leak and wear bearings, 2-pole pumps go out of balance), so `machines` alone stays weak.
`messiness` counts every deliberate defect so tests and the alignment report can be checked.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from numbers import Integral
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import yaml
from numpy.typing import NDArray

from plait.config import Config
from plait.datasets import pumps_signals as sig
from plait.datasets.pumps import (
    CLASSES,
    DEVELOPED,
    LABEL,
    MODELS,
    POWER_KW,
    SITES,
    developed_faults,
    technician_notes,
)
from plait.datasets.pumps_streams_config import CATEGORICAL, NUMERIC, VIB_RATE_HZ, pumps_streams_config
from plait.datasets.pumps_streams_media import disjoint, sound_recordings, thermal_frames, write_media
from plait.errors import ConfigError

START_S = int(datetime(2026, 3, 1, tzinfo=UTC).timestamp())  # first day of inspections
REGISTERED_S = START_S - 60 * 86_400  # when the asset register was set up
SLOT_S = 3 * 3600  # one inspection per machine per slot, so a machine's inspections are >= 2 h apart
VIB_STEPS, VIB_PAD = sig.VIBRATION_STEPS, 4  # 256 steps at VIB_RATE_HZ = 1.28 s; 4 steps either side
VIB_STEP_MS = 1000 // VIB_RATE_HZ
ROUTINE = (
    "shift handover", "area walkdown complete", "lighting fault reported in bay", "forklift parked by panel",
    "fire extinguisher checked", "spill kit restocked", "contractor on site", "drain cleared",
    "permit closed", "radio check ok", "housekeeping done", "waiting for parts delivery",
)  # fmt: skip
Ints = NDArray[np.int64]


@dataclass(frozen=True)
class PumpsStreams:
    """Where `generate_pumps_streams` wrote the streams, and the config that aligns and trains on them."""

    root: Path  # the config's folder: every path in `config` is relative to it
    config: dict[str, Any]  # a complete plait config (task, streams, fields, model, train, output)
    classes: tuple[str, ...]
    events_path: Path
    config_path: Path  # root / "plait.yaml", the same config as YAML
    messiness: dict[str, int]  # every deliberate defect, counted


@dataclass(frozen=True)
class _Plan:
    """The inspections, in anchor order (time, then machine)."""

    t_s: Ints  # anchor time, epoch seconds
    machine: Ints  # machine index
    names: list[str]  # machine index -> "m07"
    register: pl.DataFrame  # valid_from_s, machine, pump_model, site, power_kw, age_years, rated_rpm
    faults: NDArray[np.str_]
    rpm: NDArray[np.float64]  # running speed at the inspection


def generate_pumps_streams(
    out_dir: Path | str, n: int = 1800, seed: int = 0, machines: int = 60
) -> PumpsStreams:
    """Write the raw streams, events.csv and plait.yaml under out_dir; same seed, same bytes."""
    for name, value, low in (("n", n, 1), ("machines", machines, 1)):
        if isinstance(value, bool) or not isinstance(value, Integral) or value < low:
            raise ConfigError(f"generate_pumps_streams: {name} must be an integer >= {low}, got {value!r}")
    root = Path(out_dir)
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed).spawn(9)
    messiness: dict[str, int] = {}
    plan = _plan(int(n), int(machines), rng[0], messiness)
    shown = {m: developed_faults(plan.faults, m, rng[1 + i]) for i, m in enumerate(DEVELOPED)}
    _vibration(root, plan, sig.synth_vibration(shown["vibration"], plan.rpm, rng[4]), rng[8], messiness)
    clips = sig.synth_sound(shown["sound"], plan.rpm, rng[5])
    recordings, index = sound_recordings(
        root, clips, rng[5], messiness, t_s=plan.t_s, machine=plan.machine, names=plan.names
    )
    index.with_columns(_iso(pl.col("start"), "ms")).write_csv(root / "audio_index.csv")
    offsets, frames = thermal_frames(
        root, shown["thermal"], rng[6], messiness, t_s=plan.t_s, machine=plan.machine, names=plan.names
    )
    _log(root, plan, rng[7], messiness)
    plan.register.select(
        _iso(pl.col("valid_from_s"), "s").alias("time"),
        pl.col("machine").replace_strict(dict(enumerate(plan.names)), return_dtype=pl.String),
        *CATEGORICAL,
        *NUMERIC,
    ).write_csv(root / "machines.csv")
    events_path = root / "events.csv"
    pl.DataFrame({"t_s": plan.t_s, "machine": np.array(plan.names)[plan.machine], LABEL: plan.faults}).select(
        _iso(pl.col("t_s"), "s").alias("time"), "machine", LABEL
    ).write_csv(events_path)
    write_media(root, recordings + frames)
    config = pumps_streams_config(offsets, seed=seed)
    Config.from_dict(config, base_dir=root)  # the generator's own check that the config is complete
    config_path = root / "plait.yaml"
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    return PumpsStreams(
        root=root,
        config=config,
        classes=CLASSES,
        events_path=events_path,
        config_path=config_path,
        messiness=dict(sorted(messiness.items())),
    )


# ----------------------------------------------------------------------------- schedule and register


def _plan(n: int, machines: int, rng: np.random.Generator, messiness: dict[str, int]) -> _Plan:
    width = max(2, len(str(machines - 1)))
    names = [f"m{j:0{width}d}" for j in range(machines)]
    machine = rng.permutation(np.arange(n) % machines)
    slots = max(21 * 86_400 // SLOT_S, 2 * -(-n // machines))
    t_s = np.empty(n, dtype=np.int64)
    for j in range(machines):  # distinct slots per machine, a random start within the slot's first hour
        rows = np.flatnonzero(machine == j)
        t_s[rows] = START_S + rng.choice(slots, size=rows.size, replace=False) * SLOT_S
    t_s += rng.integers(0, 3600, size=n)
    order = np.lexsort((machine, t_s))
    t_s, machine = t_s[order], machine[order]
    register = _register(t_s, machine, machines, rng, messiness)
    attrs = _attributes(register, t_s, machine)
    faults = _faults(attrs, rng)
    rated = attrs["rated_rpm"].to_numpy()
    rpm = np.round(rated * rng.uniform(0.985, 1.0, n), 1)  # slip under load
    return _Plan(t_s=t_s, machine=machine, names=names, register=register, faults=faults, rpm=rpm)


def _register(
    t_s: Ints, machine: Ints, m: int, rng: np.random.Generator, messiness: dict[str, int]
) -> pl.DataFrame:
    """Valid-from records per machine: a first record, age updates for ~1/3, a pump swap for ~8 %,
    and one machine registered only after its second inspection."""
    first = _nameplates(m, rng)
    first["valid_from_s"] = np.full(m, REGISTERED_S)
    first["age_years"] = np.round(rng.gamma(2.0, 3.0, m) + 0.5, 1)
    counts = np.bincount(machine, minlength=m)
    late, unregistered = -1, 0
    if m >= 3 and counts.max() >= 3:
        late = int(np.argmax(counts >= 3))
        times = np.sort(t_s[machine == late])
        first["valid_from_s"][late] = (times[1] + times[2]) // 2
        unregistered = 2
    picks = rng.permutation([j for j in range(m) if j != late])
    swaps = picks[: min(picks.size, max(1, round(0.08 * m)))]
    updates = picks[swaps.size : swaps.size + round(m / 3)]
    when = START_S + rng.integers(5 * 86_400, 15 * 86_400, size=m)
    records = [pl.DataFrame(first)]
    if updates.size:
        age = first["age_years"][updates] + (when[updates] - REGISTERED_S) / (365.25 * 86_400)
        records.append(
            pl.DataFrame({k: v[updates] for k, v in first.items()}).with_columns(
                valid_from_s=pl.Series(when[updates]), age_years=pl.Series(np.round(age, 2))
            )
        )
    if swaps.size:
        new = _nameplates(swaps.size, rng)
        new.update(machine=swaps, valid_from_s=when[swaps], age_years=np.full(swaps.size, 0.1))
        records.append(pl.DataFrame(new))
    register = pl.concat([r.select(list(first)) for r in records], how="vertical_relaxed").sort(
        "valid_from_s", "machine"
    )
    messiness.update(
        machines_changes=register.height - m,
        machines_model_swaps=int(swaps.size),
        machines_unregistered_anchors=unregistered,
    )
    return register.select("valid_from_s", "machine", *CATEGORICAL, *NUMERIC)


def _nameplates(m: int, rng: np.random.Generator) -> dict[str, Any]:
    models = np.array(MODELS)[rng.integers(0, len(MODELS), m)]
    low, high = np.array([POWER_KW[str(x)] for x in models]).T
    two_pole = rng.random(m) < 0.5
    return {
        "machine": np.arange(m),
        "pump_model": models,
        "site": np.array(SITES)[rng.integers(0, len(SITES), m)],
        "power_kw": np.round(rng.uniform(low, high), 1),
        "rated_rpm": np.where(two_pole, rng.choice([2900.0, 2950.0], m), rng.choice([1450.0, 1475.0], m)),
    }


def _attributes(register: pl.DataFrame, t_s: Ints, machine: Ints) -> pl.DataFrame:
    """Per inspection, the record valid then (a machine not yet registered: its first record)."""
    left = pl.DataFrame({"t": t_s, "machine": machine}).with_row_index("i")
    right = register.rename({"valid_from_s": "t"})
    asof = left.sort("t").join_asof(
        right.sort("t"), on="t", by="machine", strategy="backward", check_sortedness=False
    )
    earliest = right.sort("t").group_by("machine", maintain_order=True).first().drop("t")
    asof = asof.join(earliest, on="machine", how="left", suffix="_first")
    return asof.sort("i").select(pl.coalesce(c, f"{c}_first").alias(c) for c in (*CATEGORICAL, *NUMERIC))


def _faults(attrs: pl.DataFrame, rng: np.random.Generator) -> NDArray[np.str_]:
    """One fault per inspection from weak priors on the attributes valid at the time."""
    model, site = attrs["pump_model"].to_numpy(), attrs["site"].to_numpy()
    age, rpm = attrs["age_years"].to_numpy(), attrs["rated_rpm"].to_numpy()
    w = np.ones((attrs.height, len(CLASSES)))
    col = {c: i for i, c in enumerate(CLASSES)}
    w[:, col["overheating"]] *= np.where(model == "HX-50", 2.0, 0.67)
    w[:, col["cavitation"]] *= np.where(site == "hill", 3.0, 0.6)
    w[:, col["seal_leak"]] *= np.where(site == "harbor", 3.0, 0.6) * np.select(
        [age > 8, age < 4], [2.0, 0.5], 1.0
    )
    w[:, col["bearing_wear"]] *= np.select([age > 8, age < 4], [1.5, 0.7], 1.0)
    w[:, col["imbalance"]] *= np.where(rpm >= 2900, 1.67, 0.45)
    cumulative = np.cumsum(w / w.sum(axis=1, keepdims=True), axis=1)
    picks = np.minimum((rng.random((attrs.height, 1)) > cumulative).sum(axis=1), len(CLASSES) - 1)
    return np.array(CLASSES)[picks]


def _iso(expr: pl.Expr, unit: str) -> pl.Expr:
    """Epoch seconds or milliseconds -> ISO 8601 UTC text with Z."""
    fmt = "%Y-%m-%dT%H:%M:%SZ" if unit == "s" else "%Y-%m-%dT%H:%M:%S%.3fZ"
    return pl.from_epoch(expr, time_unit="s" if unit == "s" else "ms").dt.strftime(fmt)


# ----------------------------------------------------------------------------- vibration


def _vibration(
    root: Path, plan: _Plan, signal: NDArray[np.float32], rng: np.random.Generator, messiness: dict[str, int]
) -> None:
    n, steps = len(plan.t_s), VIB_STEPS + 2 * VIB_PAD
    x = np.pad(signal, ((0, 0), (VIB_PAD, VIB_PAD), (0, 0)), mode="reflect")  # (n, 264, 3)
    offsets = (np.arange(steps) - VIB_PAD - VIB_STEPS) * VIB_STEP_MS  # the window ends at the anchor
    t = plan.t_s[:, None] * 1000 + offsets[None, :] + rng.integers(-1, 2, size=(n, steps))  # (n, 264) ms
    keep = np.ones((n, steps), dtype=bool)
    sets = disjoint(n, rng, {"short": 0.04, "long": 0.015, "nan": 0.01, "dup": 0.01, "swap": 0.01, "jump": 0})
    for i in sets["short"]:
        run = int(rng.integers(2, 7))  # <= 6 missing steps: gap <= 37 ms, bridged by max_gap_s 0.05
        start = int(rng.integers(VIB_PAD + 5, VIB_PAD + VIB_STEPS - run - 5))
        keep[i, start : start + run] = False
    for i in sets["long"]:
        run = int(rng.integers(40, 121))  # 0.2-0.6 s: too long to bridge, the field is absent
        start = VIB_PAD + int(rng.integers(5, VIB_STEPS - run - 5))
        keep[i, start : start + run] = False
    nan_at = VIB_PAD + rng.integers(5, VIB_STEPS - 5, size=len(sets["nan"]))
    x[sets["nan"], nan_at, rng.integers(0, 3, size=len(sets["nan"]))] = np.nan
    first = np.concatenate([[0], np.cumsum(keep.sum(axis=1))[:-1]])  # flat row of each block's first step
    order, duplicates = _row_order(int(keep.sum()), first, sets["swap"], sets["dup"], rng)
    block = np.repeat(np.arange(n), keep.sum(axis=1))[order]
    times, values = t[keep][order], x[keep][order]
    machine = plan.machine[block]
    times, values, machine, jumps = _clock_jump(plan, times, values, machine, block, sets["jump"], rng)
    pl.DataFrame(
        {
            "time": pl.Series(times, dtype=pl.Int64),
            "machine": np.array(plan.names)[machine],
            **{axis: pl.Series(values[:, c], dtype=pl.Float32) for c, axis in enumerate(("ax", "ay", "az"))},
        }
    ).write_parquet(root / "vibration.parquet")
    messiness.update(
        vibration_short_dropouts=len(sets["short"]),
        vibration_long_dropouts=len(sets["long"]),
        vibration_nan_rows=len(sets["nan"]),
        vibration_duplicate_rows=duplicates,
        vibration_out_of_order_rows=len(sets["swap"]),
        vibration_clock_jumps=jumps,
    )


def _row_order(
    total: int, first: Ints, swaps: Ints, dups: Ints, rng: np.random.Generator
) -> tuple[Ints, int]:
    """The file order of the kept rows: in each `swaps` inspection one pair of neighbouring rows
    changes places; in each `dups` inspection 1-3 rows are written twice. Returns (order, duplicates).
    Both sets hold inspections without dropouts, so step s of inspection i is flat row first[i] + s."""
    inner = np.arange(VIB_PAD + 5, VIB_PAD + VIB_STEPS - 5)  # away from the window's edges
    order = np.arange(total)
    swap_at = first[swaps] + rng.choice(inner, size=swaps.size)
    order[swap_at], order[swap_at + 1] = order[swap_at + 1], order[swap_at].copy()
    picks = [first[i] + rng.choice(inner, int(rng.integers(1, 4)), replace=False) for i in dups]
    dup_at = np.sort(np.concatenate([np.zeros(0, dtype=np.int64), *picks]))
    return np.insert(order, dup_at + 1, order[dup_at]), int(dup_at.size)


def _clock_jump(
    plan: _Plan,
    times: Ints,
    values: NDArray[np.float32],
    machine: Ints,
    block: Ints,
    at: Ints,
    rng: np.random.Generator,
) -> tuple[Ints, NDArray[np.float32], Ints, int]:
    """After inspection `at`, its machine's logger records 8 s of idle data whose clock steps back
    3.002 s half-way (a bad time sync, corrected before the next inspection): one backward jump.
    Idle stamps carry no jitter, so no stamp of the second segment repeats one of the first."""
    if at.size == 0:
        return times, values, machine, 0
    j = int(at[0])
    idle_ms = np.arange(100, 8000, VIB_STEP_MS)  # true time after the anchor
    stamps = plan.t_s[j] * 1000 + idle_ms - np.where(idle_ms >= 4000, 3002, 0)
    noise = (0.02 * rng.standard_normal((idle_ms.size, 3))).astype(np.float32)
    cut = int(np.flatnonzero(block == j)[-1]) + 1
    return (
        np.concatenate([times[:cut], stamps, times[cut:]]),
        np.concatenate([values[:cut], noise, values[cut:]]),
        np.concatenate([machine[:cut], np.full(idle_ms.size, plan.machine[j]), machine[cut:]]),
        1,
    )


# ----------------------------------------------------------------------------- log


def _log(root: Path, plan: _Plan, rng: np.random.Generator, messiness: dict[str, int]) -> None:
    """The note of each inspection 1-30 min before it (~2 % never written), and routine lines."""
    n = len(plan.t_s)
    notes = technician_notes(plan.faults, rng)
    written = np.ones(n, dtype=bool)
    written[disjoint(n, rng, {"missing": 0.02})["missing"]] = False
    note_t = plan.t_s - rng.integers(60, 1801, size=n)
    k = n // 2
    routine_t = rng.integers(int(plan.t_s.min()) - 86_400, int(plan.t_s.max()) + 1, size=k)
    routine_m = rng.integers(0, len(plan.names), size=k)
    routine = [ROUTINE[j] for j in rng.integers(0, len(ROUTINE), size=k)]
    log = pl.DataFrame(
        {
            "t_s": np.concatenate([note_t[written], routine_t]),
            "machine": [plan.names[j] for j in np.concatenate([plan.machine[written], routine_m])],
            "text": [notes[i] for i in np.flatnonzero(written)] + routine,
        }
    ).sort("t_s", "machine", maintain_order=True)
    log.select(_iso(pl.col("t_s"), "s").alias("time"), "machine", "text").write_csv(root / "log.csv")
    messiness.update(note_missing=int((~written).sum()), note_routine_lines=k)
