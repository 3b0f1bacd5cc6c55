"""How separable is the pumps demo, field by field? Hand-made features + multinomial logistic regression.

Run: .venv/bin/python bench/pumps_separability.py [--n 1800] [--seed 0]
Prints the test accuracy (30 % held out, stratified) of each field alone, of all fields together,
and of all fields but one. The design target: every field alone < 0.70, all together >= 0.97.
"""

from __future__ import annotations

import argparse
import itertools
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
    out = np.stack([power[..., a:b].mean(axis=-1) for a, b in itertools.pairwise(edges)], -1)
    return np.log(out + 1e-8)


def _fill_gaps(series: Array) -> Array:
    """Linear interpolation over a run of NaN readings, per axis; an all-NaN series stays NaN."""
    out = series.copy()
    steps = np.arange(series.shape[0])
    for axis in range(series.shape[1]):
        ok = np.isfinite(series[:, axis])
        if ok.any() and not ok.all():
            out[:, axis] = np.interp(steps, steps[ok], series[ok, axis])
    return out


def vibration_features(table: pl.DataFrame) -> Array:
    """Log power of all axes together in 16 bands of 64 Hz; NaN rows where the series is all NaN."""
    x = np.array(table["vibration"].cast(pl.Array(pl.Float32, (256, 3))).to_numpy(), dtype=np.float64)
    x = np.stack([_fill_gaps(s) for s in x])
    x = x - x.mean(axis=1, keepdims=True)
    power = (np.abs(np.fft.rfft(x, axis=1)) ** 2).sum(axis=2)  # (n, 129)
    return band_log_power(power, 16)


def sound_features(table: pl.DataFrame, root: Path) -> Array:
    """Mean and spread over 32 ms frames of the log power in 16 bands of 250 Hz; NaN if unreadable."""
    rows = []
    for path in table["sound"]:
        try:
            audio, _ = sf.read(root / path, dtype="float64")
        except Exception:  # a corrupt file is an absent value here
            rows.append(np.full(32, np.nan))
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
    body = np.sort(rise.ravel())[-256:].mean()  # the warmest quarter: the housing
    return np.concatenate([grid, np.percentile(rise, [75, 90, 99]), [body, dip.max(), spot, ambient]])


def thermal_features(table: pl.DataFrame, root: Path) -> Array:
    lut_rgb, lut_temp = _temperature_lut()
    rows = []
    for path in table["thermal"]:
        try:
            with Image.open(root / path) as img:
                rgb = np.asarray(img.convert("RGB"), dtype=np.float32)
        except Exception:
            rows.append(np.zeros(23))
            continue
        dist = ((rgb.reshape(-1, 1, 3) - lut_rgb[None].astype(np.float32)) ** 2).sum(-1)
        temp = lut_temp[dist.argmin(axis=1)].reshape(32, 32)  # back from false colour to degrees C
        rows.append(thermal_summary(temp))
    return np.stack(rows)


def note_features(table: pl.DataFrame, train: Array) -> Array:
    """0/1 bag of words over the training notes' vocabulary; NaN rows for empty notes."""
    tokens = [set(re.findall(r"[a-z0-9]+", s.lower())) for s in table["note"]]
    vocab = sorted({w for i in np.flatnonzero(train) for w in tokens[i]})
    index = {w: j for j, w in enumerate(vocab)}
    out = np.zeros((len(tokens), len(vocab)))
    for i, words in enumerate(tokens):
        if not words:
            out[i] = np.nan  # an empty note is an absent note
        for w in words:
            if w in index:
                out[i, index[w]] = 1.0
    return out


def specs_features(table: pl.DataFrame) -> Array:
    """Numerics (null: the mean, plus a null flag) and one-hot categories."""
    cols = []
    for c in NUMERIC:
        v = table[c].to_numpy().astype(np.float64)
        missing = np.isnan(v)
        cols += [np.where(missing, np.nanmean(v), v), missing.astype(np.float64)]
    for c in CATEGORICAL:
        values = np.array(table[c].to_list())
        cols += [(values == level).astype(np.float64) for level in sorted(set(values))]
    return np.stack(cols, axis=1)


def prepare(x: Array, train: Array, scale: bool) -> Array:
    """Standardise on the present training rows; an absent row (NaN) becomes the neutral 0, and a
    presence flag is appended, as a model would see a field marked absent."""
    present = np.isfinite(x).all(axis=1)
    fit_rows = train & present
    centred = x - x[fit_rows].mean(0)
    if scale:
        centred = centred / (x[fit_rows].std(0) + 1e-6)
    return np.concatenate([np.where(present[:, None], centred, 0.0), present[:, None] - 0.5], axis=1)


def fit_logistic(x: Array, y: Array, train: Array, seed: int) -> torch.nn.Linear:
    """Multinomial logistic regression with a small L2 penalty, fitted by L-BFGS on the train rows."""
    torch.manual_seed(seed)
    xt, yt = torch.tensor(x[train], dtype=torch.float32), torch.tensor(y[train])
    model = torch.nn.Linear(x.shape[1], len(CLASSES))
    opt = torch.optim.LBFGS(model.parameters(), lr=1.0, max_iter=500, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(xt), yt) + 1e-3 * model.weight.pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return model


def log_probs(model: torch.nn.Linear, x: Array) -> Array:
    with torch.no_grad():
        return torch.log_softmax(model(torch.tensor(x, dtype=torch.float32)), dim=1).numpy()


def test_accuracy(x: Array, y: Array, train: Array, seed: int) -> float:
    pred = log_probs(fit_logistic(x, y, train, seed), x).argmax(1)
    return float((pred[~train] == y[~train]).mean())


def late_fusion_accuracy(feats: dict[str, Array], y: Array, train: Array, seed: int) -> float:
    """Sum of per-field log-probabilities (product of experts): the fields are independent given
    the fault by construction, so this is the naive-Bayes way to combine them."""
    total = sum(log_probs(fit_logistic(x, y, train, seed), x) for x in feats.values())
    return float((np.asarray(total).argmax(1)[~train] == y[~train]).mean())


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
    # continuous features are standardised; the 0/1 bag of words stays 0/1 (centred only), as usual
    feats = {k: prepare(x, train, scale=k != "note") for k, x in feats.items()}
    print(f"{'features':<34}{'test acc':>9}")
    for name, x in feats.items():
        print(f"{name:<34}{test_accuracy(x, y, train, args.seed):>9.3f}")
    everything = np.concatenate(list(feats.values()), 1)
    print(f"{'all, concatenated':<34}{test_accuracy(everything, y, train, args.seed):>9.3f}")
    print(
        f"{'all, late fusion (sum of log-probs)':<34}{late_fusion_accuracy(feats, y, train, args.seed):>9.3f}"
    )
    for drop in feats:
        rest = np.concatenate([x for k, x in feats.items() if k != drop], 1)
        print(f"{'all but ' + drop:<34}{test_accuracy(rest, y, train, args.seed):>9.3f}")


if __name__ == "__main__":
    main()
