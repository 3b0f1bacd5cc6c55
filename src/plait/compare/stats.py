"""Mean ± std over runs, and confidence intervals for paired differences between models.

Runs of a cross-validation are not independent: every two folds share most of their training
rows, so the plain paired t-interval over K × S runs is far too narrow (Dietterich 1998). The
interval here is the corrected resampled t (Nadeau & Bengio 2003): the variance of the mean
difference is (1/J + n_test/n_train) · s² instead of s²/J, with J runs and t on J − 1 degrees of
freedom. With a single run there is no interval.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

LEVEL = 0.95


@dataclass(frozen=True)
class Interval:
    mean: float
    low: float | None  # None: one run, no interval
    high: float | None
    runs: int

    @property
    def excludes_zero(self) -> bool:
        return self.low is not None and self.high is not None and (self.low > 0 or self.high < 0)


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0.0 for a single value)."""
    n = len(values)
    if n == 0:
        raise ValueError("mean_std of no values")
    mean = sum(values) / n
    if n == 1:
        return mean, 0.0
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))


def corrected_interval(
    differences: Sequence[float], test_train_ratio: float, level: float = LEVEL
) -> Interval:
    """The corrected resampled t-interval of the mean of paired differences (see the module doc).
    `test_train_ratio` is n_test / n_train of one run (0 for runs on disjoint data)."""
    n = len(differences)
    mean, std = mean_std(differences)
    if n < 2:
        return Interval(mean=mean, low=None, high=None, runs=n)
    half = t_quantile(0.5 + level / 2, n - 1) * math.sqrt((1.0 / n + test_train_ratio) * std * std)
    return Interval(mean=mean, low=mean - half, high=mean + half, runs=n)


@lru_cache(maxsize=256)
def t_quantile(p: float, df: int) -> float:
    """The p-quantile of Student's t with `df` degrees of freedom, for p in (0.5, 1). Cached: a
    leaderboard asks for the same few (every pair of models shares one df)."""
    if not 0.5 < p < 1.0 or df < 1:
        raise ValueError(f"t_quantile needs 0.5 < p < 1 and df ≥ 1, got p={p}, df={df}")
    lo, hi = 0.0, 1.0
    while _t_cdf(hi, df) < p:
        hi *= 2.0
    for _ in range(60):  # bisection to ~1e-12 of the bracket
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if _t_cdf(mid, df) < p else (lo, mid)
    return (lo + hi) / 2


def _t_cdf(x: float, df: int) -> float:
    """P(T ≤ x) for x ≥ 0: 1/2 plus the integral of the density on [0, x] (Simpson's rule)."""
    steps = 2000
    h = x / steps
    log_c = math.lgamma((df + 1) / 2) - math.lgamma(df / 2) - 0.5 * math.log(df * math.pi)

    def pdf(t: float) -> float:
        return math.exp(log_c - (df + 1) / 2 * math.log1p(t * t / df))

    total = pdf(0.0) + pdf(x)
    total += sum((4 if i % 2 else 2) * pdf(i * h) for i in range(1, steps))
    return 0.5 + total * h / 3
