"""Robustness perturbations: pure, seeded functions over one field of a batch, in one table.

Levels run from 0 (the input, unchanged) to the largest level evenly; a sweep visits them all.
Fractions stop at 0.9 where 1.0 would only repeat `missing` (every step, segment or token gone).
"""

from __future__ import annotations

from plait.evaluation.perturb.apply import perturb_batch, perturbation_context, perturbations_for
from plait.evaluation.perturb.audio import background_noise, segment_dropout
from plait.evaluation.perturb.base import PERTURBATIONS, Perturbation, PerturbFn, evenly
from plait.evaluation.perturb.image import blur, occlusion, pixel_noise
from plait.evaluation.perturb.missing import drop_samples
from plait.evaluation.perturb.noise import gaussian_noise
from plait.evaluation.perturb.series import sample_dropout, time_shift
from plait.evaluation.perturb.tabular import category_swap
from plait.evaluation.perturb.text import typo, word_drop
from plait.types import KINDS

for _record in (
    Perturbation(
        "missing", KINDS, drop_samples, evenly(1.0, 11),
        "the field is absent for this fraction of the samples that have it",
        unit="fraction of samples",
    ),
    Perturbation(
        "gaussian_noise", ("timeseries", "tabular", "embedding"), gaussian_noise, evenly(1.0, 11),
        "additive gaussian noise on observed readings (tabular: numeric columns only)",
        unit="× channel std",
    ),
    Perturbation(
        "time_shift", ("timeseries",), time_shift, evenly(0.5, 11),
        "each series shifted by up to this fraction of its length; vacated steps masked",
        unit="fraction of length",
    ),
    Perturbation(
        "sample_dropout", ("timeseries",), sample_dropout, evenly(0.9, 10),
        "this fraction of the steps masked out (sensor readings lost)",
        unit="fraction of steps",
    ),
    Perturbation(
        "blur", ("image",), blur, evenly(3.0, 11),
        "gaussian blur", unit="sigma in pixels", seeded=False,
    ),
    Perturbation(
        "occlusion", ("image",), occlusion, evenly(0.9, 10),
        "a square patch at a random place, filled with the mean colour",
        unit="fraction of area",
    ),
    Perturbation(
        "pixel_noise", ("image",), pixel_noise, evenly(1.0, 11),
        "additive gaussian pixel noise", unit="× image std",
    ),
    Perturbation(
        "background_noise", ("audio",), background_noise, evenly(1.0, 11),
        "noise added in the mel-power domain; level 1 is 0 dB SNR",
        unit="noise RMS / signal RMS",
    ),
    Perturbation(
        "segment_dropout", ("audio",), segment_dropout, evenly(0.9, 10),
        "this fraction of 0.1 s segments silenced", unit="fraction of segments",
    ),
    Perturbation(
        "typo", ("text",), typo, evenly(1.0, 11),
        "this fraction of tokens replaced by random vocabulary tokens", unit="fraction of tokens",
    ),
    Perturbation(
        "word_drop", ("text",), word_drop, evenly(0.9, 10),
        "this fraction of tokens removed", unit="fraction of tokens",
    ),
    Perturbation(
        "category_swap", ("tabular",), category_swap, evenly(1.0, 11),
        "this fraction of category values replaced by another level of their column",
        unit="fraction of categories",
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
