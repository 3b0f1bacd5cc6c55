"""Is one field doing all the work?

Three measurements per field:
- grad_share: its share of the gradient norm at the fusion's input during training (what the
  encoders learn from);
- reliance: its share of the fused model's held-out metric lost when the field is removed at
  test time (what the trained model actually uses);
- own: its own held-out skill, from a light head on its embedding alone (what it could offer).
A field that is informative on its own, whose removal costs the model (almost) nothing while another
field holds most of the reliance, is being crowded out: that is the warning. A field that alone is
near-perfect and far ahead of the others is named a suspected leak instead.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

DOMINANT_SHARE = 0.6  # a field with at least this share of gradient or reliance dominates
IGNORED_FRACTION = 0.5  # a field with less than this fraction of an equal share (1/M) is crowded out
INFORMATIVE_MARGIN = 0.1  # own accuracy this far above chance (or own R² this high) is informative
MATTERS = 0.01  # removing a field that costs the held-out metric more than this: the model uses it
FALLBACK_MARGIN = 0.05  # …and without the dominant field the model falls this far below the field alone
LEAK_SKILL = 0.98  # a field alone this good on held-out rows…
LEAK_GAP = 0.15  # …and this far ahead of every other field alone looks like a copy of the label


@dataclass(frozen=True)
class BalanceReport:
    grad_share: Mapping[str, float]  # field → share of the gradient norm at the fusion input
    reliance: Mapping[str, float]  # field → share of the metric lost when it is removed
    own: Mapping[str, float]  # field → its own accuracy (classification) or R² (regression)
    own_metric: str  # "accuracy" | "r2"
    chance: float  # the majority class's share (classification) or 0 (R²)
    warnings: tuple[str, ...]
    mitigation: Mapping[str, float]  # the switches that were on: aux_loss, ogm_ge

    def to_json(self) -> dict[str, Any]:
        return {
            "grad_share": {f: round(v, 4) for f, v in self.grad_share.items()},
            "reliance": {f: round(v, 4) for f, v in self.reliance.items()},
            "own": {f: round(v, 4) for f, v in self.own.items()},
            "own_metric": self.own_metric,
            "chance": round(self.chance, 4),
            "warnings": list(self.warnings),
            "mitigation": dict(self.mitigation),
        }


def mean_shares(history: Sequence[Mapping[str, float]]) -> dict[str, float]:
    """Average per-epoch gradient shares, renormalised to sum to 1 (empty history: {})."""
    if not history:
        return {}
    fields = list(history[0])
    total = {f: sum(epoch.get(f, 0.0) for epoch in history) / len(history) for f in fields}
    norm = sum(total.values())
    return {f: (v / norm if norm > 0 else 0.0) for f, v in total.items()}


def reliance_shares(
    full: Mapping[str, float], without: Mapping[str, Mapping[str, float]], metric: str
) -> dict[str, float]:
    """Each field's share of the metric lost when it alone is removed (losses below 0 count as 0).

    metric is higher-is-better (accuracy, r2). {} when removing any one field costs nothing.
    """
    if metric not in full or len(without) < 2:
        return {}
    drops = {f: max(0.0, full[metric] - m.get(metric, full[metric])) for f, m in without.items()}
    total = sum(drops.values())
    return {f: d / total for f, d in drops.items()} if total > 0 else {}


def dominance_warnings(
    grad_share: Mapping[str, float],
    reliance: Mapping[str, float],
    own: Mapping[str, float],
    chance: float,
    own_metric: str,
    drops: Mapping[str, float] | None = None,
    full: float | None = None,
) -> list[str]:
    """A suspected leak, named as one; else one warning per informative field the model does not
    use: its removal costs almost nothing (≤ MATTERS) while another field holds most of the
    reliance, and — when `drops` and the `full` metric are given — without that dominant field the
    model scores below what the field reaches alone (so it is crowded out, not merely redundant).
    The gradient share alone never warns — it is noisy, and a field can take a small share of the
    gradient and still matter (it is quoted as context)."""
    warnings: list[str] = []
    leak = suspected_leak(reliance, own, chance, own_metric)
    if leak is not None:
        return [leak]  # the others are crowded out by the leak; removing it is the fix, not aux_loss
    if len(reliance) < 2:
        return warnings
    dominant = max(reliance, key=lambda f: reliance[f])
    if reliance[dominant] < DOMINANT_SHARE:
        return warnings
    fair = 1.0 / len(reliance)
    for field, share in reliance.items():
        if field == dominant or share > IGNORED_FRACTION * fair or field not in own:
            continue
        drop = None if drops is None else drops.get(field)
        if drop is not None and drop > MATTERS:
            continue  # removing it costs the model: it is used, whatever the shares say
        skill = own[field]
        informative = skill - chance >= INFORMATIVE_MARGIN if own_metric == "accuracy" else skill >= 0.1
        if not informative:
            continue
        fallback = None
        if drops is not None and full is not None and dominant in drops:
            fallback = full - drops[dominant]  # the model's metric with the dominant field removed
            if fallback >= skill - FALLBACK_MARGIN:
                continue  # redundant, not crowded out: without the dominant field the model does as well
        against = f" (chance {chance:.2f})" if own_metric == "accuracy" else ""
        costs = "" if drop is None else f" (removing it costs {max(drop, 0.0):.3f})"
        gradient = f", {grad_share[field]:.0%} of the fusion's gradient" if field in grad_share else ""
        without = (
            ""
            if fallback is None
            else f"; without '{dominant}' the model scores {fallback:.2f}, less than '{field}' alone"
        )
        warnings.append(
            f"modality imbalance: '{dominant}' accounts for {reliance[dominant]:.0%} of what the model loses "
            f"when a field is removed and '{field}' for {share:.0%}{costs}{gradient}, yet '{field}' alone "
            f"reaches {own_metric} {skill:.2f}{against}{without}: the model has not learned to use it. "
            "Try train.aux_loss: 1.0 or train.ogm_ge: 0.5 (README: Modality balance)"
        )
    return warnings


def suspected_leak(
    reliance: Mapping[str, float], own: Mapping[str, float], chance: float, own_metric: str
) -> str | None:
    """A field that alone is near-perfect on held-out rows, carries most of the reliance, while
    every other field alone is far from it: what a copy of the label looks like from the outside."""
    if len(own) < 2:
        return None
    best = max(own, key=lambda f: own[f])
    others = max(v for f, v in own.items() if f != best)
    near_perfect = own[best] >= LEAK_SKILL and (own_metric != "accuracy" or own[best] - chance >= 0.2)
    if not near_perfect or others > own[best] - LEAK_GAP or reliance.get(best, 0.0) < DOMINANT_SHARE:
        return None
    return (
        f"suspected leak: '{best}' alone predicts the label with {own_metric} {own[best]:.3f} on held-out "
        f"rows (the best other field alone {others:.2f}) and the model relies on it for "
        f"{reliance.get(best, 0.0):.0%} of what it loses when a field is removed. If '{best}' carries the "
        "answer (a copy of the label, a code or name that implies it, something only known afterwards), "
        "remove it: the scores are not what the model will do on new data. If it is honest, the other "
        "fields add little here"
    )
