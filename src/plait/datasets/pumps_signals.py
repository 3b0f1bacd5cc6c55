"""Signal synthesis for the pumps demo: vibration, sound and thermal pictures.

Every function renders, for each row, the fault that is *visible* in that modality (a fault the
modality cannot see, or one not yet developed there, is passed in as "normal"), so the class
design lives in `pumps.py` and this module only knows what each signature looks like.
All functions are vectorised over rows and draw from the given numpy Generator only.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

VIBRATION_RATE_HZ = 2048
VIBRATION_STEPS = 256  # 0.125 s of a tri-axial accelerometer
SOUND_RATE_HZ = 8000
SOUND_SAMPLES = 8000  # 1 s
THERMAL_SIZE = 32
THERMAL_RANGE_C = (10.0, 100.0)  # fixed camera scale, so colour maps back to temperature
_CHUNK = 256  # rows per block of sound synthesis, bounds memory at ~ 256 x 8000 floats

Floats = NDArray[np.float64]
Labels = NDArray[np.str_]


def _uniform(rng: np.random.Generator, low: float, high: float, n: int) -> Floats:
    return rng.uniform(low, high, size=n)


def _bandpass(x: Floats, rate_hz: float, low_hz: float, high_hz: float) -> Floats:
    """Zero every FFT bin outside [low_hz, high_hz] along the last axis."""
    spec = np.fft.rfft(x, axis=-1)
    freqs = np.fft.rfftfreq(x.shape[-1], d=1.0 / rate_hz)
    spec[..., (freqs < low_hz) | (freqs > high_hz)] = 0.0
    return np.fft.irfft(spec, n=x.shape[-1], axis=-1)


def _convolve_rows(x: Floats, kernel: Floats) -> Floats:
    """Causal convolution of each row of x (n, T) with its own kernel row (n, K) via FFT."""
    size = x.shape[-1] + kernel.shape[-1]
    out = np.fft.irfft(np.fft.rfft(x, n=size) * np.fft.rfft(kernel, n=size), n=size)
    return out[..., : x.shape[-1]]


# ----------------------------------------------------------------------------- vibration


def synth_vibration(visible: Labels, rpm: Floats, rng: np.random.Generator) -> NDArray[np.float32]:
    """(n, 256, 3) acceleration in g: a 1x shaft line, 2x and vane-pass harmonics, noise.

    imbalance: a 4-6x stronger 1x line on the radial axes; bearing_wear: periodic impacts at the
    outer-race defect frequency ringing a 550-850 Hz resonance; cavitation: broadband 150-1000 Hz
    noise in random bursts. Everything else looks the same.
    """
    n = len(visible)
    t = np.arange(VIBRATION_STEPS) / VIBRATION_RATE_HZ  # (T,)
    f1 = rpm / 60.0 * _uniform(rng, 0.985, 1.0, n)  # running speed below nameplate (slip)
    axis_gain = np.stack([np.ones(n), _uniform(rng, 0.7, 1.0, n), _uniform(rng, 0.2, 0.4, n)], axis=1)
    a1 = _uniform(rng, 0.15, 0.35, n)
    imbalance = visible == "imbalance"
    a1 = np.where(imbalance, a1 * _uniform(rng, 4.0, 6.0, n), a1)
    radial = axis_gain.copy()
    radial[:, 2] = np.where(imbalance, radial[:, 2] * 1.3, radial[:, 2])  # imbalance is radial
    phase = rng.uniform(0.0, 2 * np.pi, size=(n, 1, 3))
    phase[:, :, 1] = phase[:, :, 0] + np.pi / 2  # x and y see the same rotation, 90 degrees apart
    omega = 2 * np.pi * f1[:, None, None] * t[None, :, None]  # (n, T, 1)
    x = a1[:, None, None] * radial[:, None, :] * np.sin(omega + phase)  # (n, T, 3)
    a2 = _uniform(rng, 0.03, 0.1, n)[:, None, None]
    x += a2 * axis_gain[:, None, :] * np.sin(2 * omega + 2 * phase + rng.uniform(0, 6.3, (n, 1, 1)))
    vanes = rng.integers(5, 8, size=n)[:, None, None]
    av = _uniform(rng, 0.04, 0.1, n)[:, None, None]
    x += av * np.sin(vanes * omega + rng.uniform(0, 6.3, (n, 1, 3)))
    x += _uniform(rng, 0.05, 0.1, n)[:, None, None] * rng.standard_normal((n, VIBRATION_STEPS, 3))
    x += _bearing_impacts(visible == "bearing_wear", f1, axis_gain, rng)
    x += _cavitation_vibration(visible == "cavitation", axis_gain, rng)
    return x.astype(np.float32)


def _bearing_impacts(rows: NDArray[np.bool_], f1: Floats, gain: Floats, rng: np.random.Generator) -> Floats:
    n, steps = len(rows), VIBRATION_STEPS
    out = np.zeros((n, steps, 3))
    idx = np.flatnonzero(rows)
    if idx.size == 0:
        return out
    m = idx.size
    bpfo = f1[idx] * _uniform(rng, 3.0, 3.6, m)  # outer-race defect frequency
    cycles = np.arange(steps) / VIBRATION_RATE_HZ * bpfo[:, None] + rng.uniform(0, 1, (m, 1))
    train = np.diff(np.floor(cycles), axis=1, prepend=np.floor(cycles[:, :1]))  # 1 at each impact
    train *= _uniform(rng, 0.6, 1.0, m)[:, None] + 0.3 * rng.random((m, steps))  # uneven impacts
    k = np.arange(32) / VIBRATION_RATE_HZ
    ring_hz = _uniform(rng, 550.0, 850.0, m)[:, None]
    decay_s = _uniform(rng, 0.003, 0.006, m)[:, None]
    kernel = np.exp(-k / decay_s) * np.sin(2 * np.pi * ring_hz * k)  # (m, 32)
    ringing = _convolve_rows(train, kernel) * _uniform(rng, 1.4, 2.2, m)[:, None]  # (m, T)
    axis_share = np.stack([np.ones(m), _uniform(rng, 0.5, 0.9, m), _uniform(rng, 0.3, 0.6, m)], axis=1)
    out[idx] = ringing[:, :, None] * (axis_share * gain[idx])[:, None, :]
    return out


def _cavitation_vibration(rows: NDArray[np.bool_], gain: Floats, rng: np.random.Generator) -> Floats:
    n = len(rows)
    out = np.zeros((n, VIBRATION_STEPS, 3))
    idx = np.flatnonzero(rows)
    if idx.size == 0:
        return out
    m = idx.size
    noise = rng.standard_normal((m, 3, VIBRATION_STEPS))
    noise = _bandpass(noise, VIBRATION_RATE_HZ, 150.0, 1000.0)  # (m, 3, T)
    envelope = 0.5 + np.abs(_bandpass(rng.standard_normal((m, 1, VIBRATION_STEPS)), VIBRATION_RATE_HZ, 0, 40))
    envelope /= envelope.mean(axis=-1, keepdims=True)  # bubble collapse comes in bursts
    level = _uniform(rng, 0.45, 0.7, m)[:, None, None]
    out[idx] = np.transpose(level * envelope * noise, (0, 2, 1)) * gain[idx][:, None, :]
    return out


# ----------------------------------------------------------------------------- sound


def synth_sound(visible: Labels, rpm: Floats, rng: np.random.Generator) -> NDArray[np.int16]:
    """(n, 8000) int16 mono at 8 kHz: 100 Hz motor hum, vane-pass tone, pinkish room noise.

    imbalance: a loud low drone at 1x-4x running speed that beats the whole sound; cavitation:
    gravel-like crackle (random 600-2000 Hz bursts); seal_leak: a steady 2.5-3.8 kHz hiss.
    """
    out = np.zeros((len(visible), SOUND_SAMPLES), dtype=np.int16)
    for i in range(0, len(visible), _CHUNK):
        audio = _sound_block(visible[i : i + _CHUNK], rpm[i : i + _CHUNK], rng)
        out[i : i + _CHUNK] = np.clip(np.round(audio * (32767 * 0.75)), -32767, 32767)
    return out


def _sound_block(visible: Labels, rpm: Floats, rng: np.random.Generator) -> NDArray[np.float32]:
    n = len(visible)
    t = (np.arange(SOUND_SAMPLES) / SOUND_RATE_HZ).astype(np.float32)  # (S,)
    f1 = (rpm / 60.0 * _uniform(rng, 0.985, 1.0, n)).astype(np.float32)[:, None]  # (n, 1)

    def col(low: float, high: float, m: int = n) -> NDArray[np.float32]:
        return rng.uniform(low, high, size=(m, 1)).astype(np.float32)

    tau = np.float32(2 * np.pi)
    x = col(0.02, 0.05) * (np.sin(tau * 100.0 * t) + 0.4 * np.sin(tau * 200.0 * t + col(0, 6.3)))
    vanes = rng.integers(5, 8, size=(n, 1)).astype(np.float32)
    x += col(0.02, 0.05) * np.sin(tau * vanes * f1 * t + col(0, 6.3))
    x += col(0.02, 0.04) * _noise(n, rng, 0.0, SOUND_RATE_HZ / 2, tilt=1.0)  # room noise, pinkish
    drone = np.flatnonzero(visible == "imbalance")
    if drone.size:
        ring = sum(
            share * np.sin(tau * k * f1[drone] * t + col(0, 6.3, drone.size))
            for k, share in ((1, 1.0), (2, 0.8), (3, 0.5), (4, 0.35))
        )
        beat = 1.0 + 0.5 * np.sin(tau * f1[drone] * t)  # the housing rocks once per turn
        x[drone] += col(0.15, 0.25, drone.size) * ring * beat
    crackle = np.flatnonzero(visible == "cavitation")
    if crackle.size:
        x[crackle] += col(0.5, 0.8, crackle.size) * _crackle(crackle.size, rng)
    hiss = np.flatnonzero(visible == "seal_leak")
    if hiss.size:
        x[hiss] += col(0.05, 0.09, hiss.size) * _noise(hiss.size, rng, 2500.0, 3800.0)
    return x * col(0.7, 1.0)  # microphone distance


def _noise(m: int, rng: np.random.Generator, low_hz: float, high_hz: float, tilt: float = 0.0) -> Floats:
    """(m, S) unit-variance noise made in the frequency domain: band [low_hz, high_hz], power ~ f^-tilt."""
    freqs = np.fft.rfftfreq(SOUND_SAMPLES, 1.0 / SOUND_RATE_HZ)
    gain = ((freqs >= low_hz) & (freqs <= high_hz)) / np.maximum(freqs, 20.0) ** (tilt / 2)
    shape = (m, freqs.size)
    spec = rng.standard_normal(shape, dtype=np.float32) + 1j * rng.standard_normal(shape, dtype=np.float32)
    x = np.fft.irfft(spec * gain.astype(np.float32), n=SOUND_SAMPLES, axis=-1)
    return x / x.std(axis=-1, keepdims=True)


def _crackle(m: int, rng: np.random.Generator) -> Floats:
    """(m, S) gravel-like crackle: Poisson pops, each a 2-4 ms decaying burst of 600-2000 Hz noise."""
    rate_hz = _uniform(rng, 25.0, 60.0, m)[:, None]
    pops = (rng.random((m, SOUND_SAMPLES)) < rate_hz / SOUND_RATE_HZ) * rng.uniform(
        0.4, 1.0, (m, SOUND_SAMPLES)
    )
    decay = np.exp(-np.arange(48) / (SOUND_RATE_HZ * _uniform(rng, 0.002, 0.004, m)[:, None]))
    envelope = _convolve_rows(pops, decay)
    return 0.6 * _noise(m, rng, 600.0, 2000.0) * envelope  # 0.6: the old band-passed unit noise level


# ----------------------------------------------------------------------------- thermal

# An "ironbow" palette: temperature fraction -> RGB anchors.
_PALETTE_AT = np.array([0.0, 0.2, 0.45, 0.65, 0.85, 1.0])
_PALETTE_RGB = np.array(
    [[0, 0, 20], [70, 0, 130], [200, 30, 90], [250, 110, 10], [255, 210, 40], [255, 255, 230]],
    dtype=np.float64,
)


def synth_thermal(visible: Labels, rng: np.random.Generator) -> NDArray[np.uint8]:
    """(n, 32, 32, 3) uint8 false-colour pictures of a horizontal pump housing.

    overheating: the whole housing 40-60 degrees above ambient instead of 12-28; bearing_wear: a hot
    spot at the bearing (right) end; seal_leak: a cool wet streak running down from the seal.
    """
    temp = _housing_temperature(visible, rng)  # (n, 32, 32) degrees C
    temp += rng.normal(0.0, 0.7, size=temp.shape)  # sensor noise
    low, high = THERMAL_RANGE_C
    frac = np.clip((temp - low) / (high - low), 0.0, 1.0)
    rgb = np.stack([np.interp(frac, _PALETTE_AT, _PALETTE_RGB[:, c]) for c in range(3)], axis=-1)
    return np.round(rgb).astype(np.uint8)


def _housing_temperature(visible: Labels, rng: np.random.Generator) -> Floats:
    n, size = len(visible), THERMAL_SIZE
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    yy, xx = yy[None], xx[None]  # (1, H, W)

    def col(v: Floats) -> Floats:
        return v[:, None, None]

    ambient = col(_uniform(rng, 15.0, 28.0, n))
    cy, cx = col(16 + _uniform(rng, -2.5, 2.5, n)), col(16 + _uniform(rng, -2.5, 2.5, n))
    half_w, half_h = col(_uniform(rng, 10.0, 12.5, n)), col(_uniform(rng, 5.0, 7.0, n))
    # a soft-edged rounded box: 1 inside the housing, 0 outside
    edge = np.maximum(np.abs(xx - cx) / half_w, np.abs(yy - cy) / half_h)
    body = 1.0 / (1.0 + np.exp((edge - 1.0) * 12.0))
    hot = visible == "overheating"
    rise = np.where(hot, _uniform(rng, 45.0, 62.0, n), _uniform(rng, 10.0, 25.0, n))
    profile = 1.0 - 0.25 * ((xx - cx) / half_w) ** 2 - 0.15 * ((yy - cy) / half_h) ** 2  # cooler at the edges
    motor = 1.0 + col(_uniform(rng, 0.05, 0.2, n)) / (
        1.0 + np.exp(xx - cx + 0.3 * half_w)
    )  # motor end warmer
    temp = ambient + col(rise) * body * profile * motor
    spot = col((visible == "bearing_wear") * _uniform(rng, 18.0, 28.0, n))
    sy, sx = cy + col(_uniform(rng, -2.0, 2.0, n)), cx + half_w - col(_uniform(rng, 1.5, 3.5, n))
    sigma = col(_uniform(rng, 1.3, 2.2, n))
    temp += spot * np.exp(-((yy - sy) ** 2 + (xx - sx) ** 2) / (2 * sigma**2))
    wet = col((visible == "seal_leak") * _uniform(rng, 10.0, 16.0, n))
    seal_x, width = cx + col(_uniform(rng, -3.0, 3.0, n)), col(_uniform(rng, 1.0, 1.8, n))
    streak = np.exp(-((xx - seal_x) ** 2) / (2 * width**2)) * (yy > cy - 1.0)
    temp -= wet * streak * (0.5 + 0.5 * body)  # evaporation cools the wet run, most on the hot casing
    return temp
