"""Robustness perturbations: pure, seeded functions over one field of a batch, in one table.

Each record states what the family does (its definition), the unit of its level, the levels the
default sweep visits (0, the input unchanged, to the largest, evenly) and the largest level it
accepts. Fractions stop at 0.9 where 1.0 would only repeat `missing` (every step, segment or token
gone). Which fields a family applies to is not stated here: each modality names its families
(`perturbations`), and `missing` applies to every field.
"""

from __future__ import annotations

from plait.evaluation.perturb.apply import perturb_batch, perturbations_for
from plait.evaluation.perturb.audio import background_noise, segment_dropout
from plait.evaluation.perturb.base import PERTURBATIONS, Perturbation, PerturbFn, evenly
from plait.evaluation.perturb.image import blur, occlusion, pixel_gaussian, pixel_noise
from plait.evaluation.perturb.missing import drop_samples
from plait.evaluation.perturb.noise import gaussian_noise
from plait.evaluation.perturb.series import sample_dropout, time_shift
from plait.evaluation.perturb.tabular import category_swap
from plait.evaluation.perturb.text import typo, word_drop
from plait.evaluation.perturb.video import frame_drop, frame_noise
from plait.modalities.contract import perturbation_context

for _record in (
    Perturbation(
        "missing", drop_samples, evenly(1.0, 11),
        "the field marked absent, as if never recorded, for this fraction of the samples that "
        "have it (chosen at random)",
        unit="fraction of samples", max_level=1.0,
    ),
    Perturbation(
        "gaussian_noise", gaussian_noise, evenly(1.0, 11),
        "x + N(0, level²) on every observed value, standardised with the training mean and std "
        "(tabular: numeric columns only), so level 1 is noise as large as the training data's spread",
        unit="× training std",
    ),
    Perturbation(
        "time_shift", time_shift, evenly(0.5, 11),
        "each series shifted by a random s in [-level·n, level·n] steps (n its length) inside its "
        "window: readings shifted out are lost, vacated steps masked",
        unit="fraction of length", max_level=1.0,
    ),
    Perturbation(
        "sample_dropout", sample_dropout, evenly(0.9, 10),
        "each time step masked out (every channel, a lost reading) with probability level",
        unit="fraction of steps", max_level=1.0,
    ),
    Perturbation(
        "blur", blur, evenly(3.0, 11),
        "gaussian blur of the image with σ = level pixels (kernel radius ⌈3σ⌉, edges replicated)",
        unit="σ in pixels", seeded=False,
    ),
    Perturbation(
        "occlusion", occlusion, evenly(0.9, 10),
        "a √level·H × √level·W patch (this fraction of the area) at a random place, filled with "
        "the training mean colour",
        unit="fraction of area", max_level=1.0,
    ),
    Perturbation(
        "pixel_noise", pixel_noise, evenly(1.0, 11),
        "x + N(0, (level·s)²) on the standardised pixels, s the image's own std; not clipped",
        unit="× image std",
    ),
    Perturbation(
        "pixel_gaussian", pixel_gaussian, evenly(0.9, 10),
        "x + N(0, level²) on the pixel values in [0, 1], clipped to [0, 1] (MultiBench, "
        "ImageNet-C); run only when chosen: plait evaluate --perturb pixel_gaussian",
        unit="σ on [0, 1] pixels", default=False,
    ),
    Perturbation(
        "background_noise", background_noise, evenly(1.0, 11),
        "noise flat across mel bands added in the mel-power domain, its RMS level × the clip's "
        "(SNR = -20·log10(level) dB: level 1 is 0 dB)",
        unit="noise RMS / signal RMS",
    ),
    Perturbation(
        "segment_dropout", segment_dropout, evenly(0.9, 10),
        "each 0.1 s segment silenced (the log-mel floor) with probability level",
        unit="fraction of segments", max_level=1.0,
    ),
    Perturbation(
        "typo", typo, evenly(1.0, 11),
        "each token (a BPE subword) replaced with probability level by another random vocabulary token",
        unit="fraction of tokens", max_level=1.0,
    ),
    Perturbation(
        "word_drop", word_drop, evenly(0.9, 10),
        "each token (a BPE subword) removed with probability level; the rest close up",
        unit="fraction of tokens", max_level=1.0,
    ),
    Perturbation(
        "category_swap", category_swap, evenly(1.0, 11),
        "each known category value replaced with probability level by another level of its "
        "column, drawn uniformly",
        unit="fraction of categories", max_level=1.0,
    ),
    Perturbation(
        "frame_drop", frame_drop, evenly(0.9, 10),
        "each frame of the clip masked out (a lost frame, never replaced) with probability level",
        unit="fraction of frames", max_level=1.0,
    ),
    Perturbation(
        "frame_noise", frame_noise, evenly(1.0, 11),
        "x + N(0, (level·s)²) on the standardised pixels of every frame, s the clip's own std; not clipped",
        unit="× clip std",
    ),
):  # fmt: skip
    PERTURBATIONS.register(_record.name, _record)
del _record

__all__ = [
    "PERTURBATIONS",
    "PerturbFn",
    "Perturbation",
    "perturb_batch",
    "perturbation_context",
    "perturbations_for",
]
