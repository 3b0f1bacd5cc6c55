"""Is one field doing all the work?

Three measurements per field:
- grad_share: its share of the gradient norm at the fusion's input during training (what the
  encoders learn from);
- reliance: its share of the fused model's held-out metric lost when the field is removed at
  test time (what the trained model actually uses);
- own: its own held-out skill, from a light head on its embedding alone (what it could offer).
A field that is informative on its own while another field holds most of the gradient or most of
the reliance is being crowded out: that is the warning.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

DOMINANT_SHARE = 0.6  # a field with at least this share of gradient or reliance dominates
IGNORED_FRACTION = 0.5  # a field with less than this fraction of an equal share (1/M) is crowded out
INFORMATIVE_MARGIN = 0.1  # own accuracy this far above chance (or own R² this high) is informative


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
) -> list[str]:
    """One warning per informative field crowded out by a dominant one, by gradient or by reliance."""
    warnings: list[str] = []
    for measure, shares in (("reliance", reliance), ("gradient", grad_share)):
        if len(shares) < 2:
            continue
        dominant = max(shares, key=lambda f: shares[f])
        if shares[dominant] < DOMINANT_SHARE:
            continue
        fair = 1.0 / len(shares)
        for field, share in shares.items():
            if field == dominant or share > IGNORED_FRACTION * fair or field not in own:
                continue
            if any(f"'{field}' alone" in w for w in warnings):
                continue  # one warning per crowded-out field
            skill = own[field]
            informative = skill - chance >= INFORMATIVE_MARGIN if own_metric == "accuracy" else skill >= 0.1
            if not informative:
                continue
            what = (
                "of what the model loses when a field is removed"
                if measure == "reliance"
                else "of the fusion's gradient"
            )
            against = f" (chance {chance:.2f})" if own_metric == "accuracy" else ""
            warnings.append(
                f"modality imbalance: '{dominant}' accounts for {shares[dominant]:.0%} {what} and "
                f"'{field}' for {share:.0%}, yet '{field}' alone reaches {own_metric} {skill:.2f}{against}; "
                f"the model may be ignoring '{field}'. Try train.aux_loss: 1.0 or train.ogm_ge: 0.5 "
                "(README: Modality balance)"
            )
    return warnings
