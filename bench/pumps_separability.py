"""How separable is the pumps demo, field by field? Hand-made features + multinomial logistic regression.

Run: .venv/bin/python bench/pumps_separability.py [--n 1800] [--seed 0]
Prints the test accuracy (30 % held out, stratified) of each field alone, of all fields together,
and of all fields but one. The design target: every field alone < 0.70, all together >= 0.97.
"""

from __future__ import annotations

import argparse
import re
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl
import soundfile as sf
import torch
from PIL import Image

from plait.datasets.pumps import CATEGORICAL, CLASSES, NUMERIC, generate_pumps
from plait.datasets.pumps_signals import _PALETTE_AT, _PALETTE_RGB, THERMAL_RANGE_C

Array = np.ndarray


def band_log_power(power: Array, bands: int) -> Array:
    """Mean power in `bands` equal-width bands of the last axis, in log scale."""
    edges = np.linspace(0, power.shape[-1], bands + 1).astype(int)
    out = np.stack([power[..., a:b].mean(axis=-1) for a, b in zip(edges[:-1], edges[1:], strict=True)], -1)
    return np.log(out + 1e-8)


def vibration_features(table: pl.DataFrame) -> Array:
    x = np.array(table["vibration"].cast(pl.Array(pl.Float32, (256, 3))).to_numpy(), dtype=np.float64)
    present = np.isfinite(x).any(axis=(1, 2))
    x = np.nan_to_num(x - np.nanmean(np.where(present[:, None, None], x, 0.0), axis=1, keepdims=True))
    power = np.abs(np.fft.rfft(x, axis=1)) ** 2  # (n, 129, 3)
    feats = band_log_power(np.transpose(power, (0, 2, 1)), 16).reshape(len(x), -1)
    return np.where(present[:, None], feats, 0.0)


def sound_features(table: pl.DataFrame, root: Path) -> Array:
    rows = []
    for path in table["sound"]:
        try:
            audio, _ = sf.read(root / path, dtype="float64")
        except Exception:
            rows.append(np.zeros(32))
            continue
        frames = np.lib.stride_tricks.sliding_window_view(audio, 256)[::128] * np.hanning(256)
        logp = band_log_power(np.abs(np.fft.rfft(frames, axis=-1)) ** 2, 16)  # (frames, 16)
        rows.append(np.concatenate([logp.mean(axis=0), logp.std(axis=0)]))
    return np.stack(rows)


def _temperature_lut() -> tuple[Array, Array]:
    frac = np.linspace(0, 1, 128)
    rgb = np.stack([np.interp(frac, _PALETTE_AT, _PALETTE_RGB[:, c]) for c in range(3)], -1)
    low, high = THERMAL_RANGE_C
    return rgb, low + frac * (high - low)


def thermal_summary(temp: Array) -> Array:
    """Region temperatures of one (32, 32) picture in degrees C, relative to the ambient border."""
    ambient = np.median(np.concatenate([temp[0], temp[-1]]))
    rise = temp - ambient
    grid = rise.reshape(4, 8, 4, 8).mean(axis=(1, 3)).ravel()  # 16 region means
    housing = rise[rise.mean(axis=1) > 0.5 * rise.mean(axis=1).max()]  # rows through the warm housing
    profile = housing.mean(axis=0)  # (32,) across the housing
    dip = (profile[:-6] + profile[6:]) / 2 - profile[3:-3]  # a cool vertical streak is a local dip
    spot = temp.max() - np.percentile(temp, 90)  # a hot spot stands out of the warm body
    return np.concatenate([grid, np.percentile(rise, [50, 75, 90, 99]), [dip.max(), spot, ambient]])


def thermal_features(table: pl.DataFrame, root: Path) -> Array:
    lut_rgb, lut_temp = _temperature_lut()
    rows = []
    for path in table["thermal"]:
        try:
            with Image.open(root / path) as img:
                rgb = np.asarray(img.convert("RGB"), dtype=np.float32)
        except Exception:  # noqa: BLE001 - a corrupt file is an absent value here
            rows.append(np.zeros(23))
            continue
        dist = ((rgb.reshape(-1, 1, 3) - lut_rgb[None].astype(np.float32)) ** 2).sum(-1)
        temp = lut_temp[dist.argmin(axis=1)].reshape(32, 32)  # back from false colour to degrees C
        rows.append(thermal_summary(temp))
    return np.stack(rows)


def note_features(table: pl.DataFrame, train: Array) -> Array:
    tokens = [set(re.findall(r"[a-z0-9]+", s.lower())) for s in table["note"]]
    vocab = sorted({w for i in np.flatnonzero(train) for w in tokens[i]})
    index = {w: j for j, w in enumerate(vocab)}
    out = np.zeros((len(tokens), len(vocab)))
    for i, words in enumerate(tokens):
        for w in words:
            if w in index:
                out[i, index[w]] = 1.0
    return out


def specs_features(table: pl.DataFrame) -> Array:
    cols = []
    for c in NUMERIC:
        v = table[c].to_numpy().astype(np.float64)
        missing = np.isnan(v)
        cols += [np.where(missing, np.nanmean(v), v), missing.astype(np.float64)]
    for c in CATEGORICAL:
        values = table[c].to_list()
        cols += [(np.array(values) == level).astype(np.float64) for level in sorted(set(values))]
    return np.stack(cols, axis=1)


def fit_accuracy(x: Array, y: Array, train: Array, seed: int) -> float:
    torch.manual_seed(seed)
    mean, std = x[train].mean(0), x[train].std(0) + 1e-6
    xt = torch.tensor((x - mean) / std, dtype=torch.float32)
    yt = torch.tensor(y)
    model = torch.nn.Linear(x.shape[1], len(CLASSES))
    opt = torch.optim.LBFGS(model.parameters(), lr=1.0, max_iter=300, line_search_fn="strong_wolfe")
    tr = torch.tensor(train)

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(xt[tr]), yt[tr]) + 1e-3 * model.weight.pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        pred = model(xt[~tr]).argmax(1)
    return float((pred == yt[~tr]).float().mean())


def stratified_train_mask(y: Array, fraction: float, seed: int) -> Array:
    rng = np.random.default_rng(seed)
    train = np.zeros(len(y), dtype=bool)
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        train[idx[: round(fraction * len(idx))]] = True
    return train


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=1800)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        data = generate_pumps(tmp, n=args.n, seed=args.seed)
        print(f"generated n={args.n} in {time.perf_counter() - start:.1f} s")
        table = pl.read_parquet(data.table_path)
        y = np.array([CLASSES.index(c) for c in table["fault"]])
        train = stratified_train_mask(y, 0.7, args.seed)
        feats = {
            "vibration": vibration_features(table),
            "sound": sound_features(table, data.root),
            "thermal": thermal_features(table, data.root),
            "note": note_features(table, train),
            "specs": specs_features(table),
        }
    print(f"{'features':<24}{'test acc':>9}")
    for name, x in feats.items():
        print(f"{name:<24}{fit_accuracy(x, y, train, args.seed):>9.3f}")
    print(f"{'all':<24}{fit_accuracy(np.concatenate(list(feats.values()), 1), y, train, args.seed):>9.3f}")
    for drop in feats:
        rest = np.concatenate([x for k, x in feats.items() if k != drop], 1)
        print(f"{'all but ' + drop:<24}{fit_accuracy(rest, y, train, args.seed):>9.3f}")


if __name__ == "__main__":
    main()
