"""Realistic evaluation-report data (the metrics.json dict of `plait evaluate`) for tests: one
classification and one regression sample, following the schema key for key. Curves are made by a
formula, so the numbers are consistent (the curve at level 0 is the clean metric, relative robustness
is the curve's mean over its clean value, ECE is read off the reliability bins)."""

from __future__ import annotations

from typing import Any

FIELDS = [
    {"name": "vibration", "kind": "timeseries"},
    {"name": "thermal", "kind": "image"},
    {"name": "sound", "kind": "audio"},
    {"name": "notes", "kind": "text"},
    {"name": "specs", "kind": "tabular"},
]

# family: (largest level, number of levels, unit, description) as in plait.evaluation.perturb
FAMILIES = {
    "missing": (1.0, 11, "fraction of samples", "the field is absent for this fraction of the samples"),
    "gaussian_noise": (1.0, 11, "× channel std", "additive gaussian noise on observed readings"),
    "time_shift": (0.5, 11, "fraction of length", "each series shifted by up to this fraction of its length"),
    "sample_dropout": (0.9, 10, "fraction of steps", "this fraction of the steps masked out"),
    "blur": (3.0, 11, "sigma in pixels", "gaussian blur"),
    "occlusion": (
        0.9,
        10,
        "fraction of area",
        "a square patch at a random place, filled with the mean colour",
    ),
    "pixel_noise": (1.0, 11, "× image std", "additive gaussian pixel noise"),
    "background_noise": (1.0, 11, "noise RMS / signal RMS", "noise added in the mel-power domain"),
    "segment_dropout": (0.9, 10, "fraction of segments", "this fraction of 0.1 s segments silenced"),
    "typo": (1.0, 11, "fraction of tokens", "this fraction of tokens replaced by random vocabulary tokens"),
    "word_drop": (0.9, 10, "fraction of tokens", "this fraction of tokens removed"),
    "category_swap": (1.0, 11, "fraction of categories", "category values replaced by another level"),
}
KIND_FAMILIES = {
    "timeseries": ["missing", "gaussian_noise", "time_shift", "sample_dropout"],
    "image": ["missing", "blur", "occlusion", "pixel_noise"],
    "audio": ["missing", "background_noise", "segment_dropout"],
    "text": ["missing", "typo", "word_drop"],
    "tabular": ["missing", "gaussian_noise", "category_swap"],
}


def _curve(field: str, family: str, clean: float, drop: float, power: float) -> dict[str, Any]:
    top, n, unit, description = FAMILIES[family]
    levels = [round(top * i / (n - 1), 4) for i in range(n)]
    values = [round(clean - drop * (level / top) ** power, 4) for level in levels]
    return {
        "field": field,
        "perturbation": family,
        "unit": unit,
        "description": description,
        "levels": levels,
        "values": values,
        "relative_robustness": round(sum(values) / len(values) / values[0], 4),
    }


def _robustness(metric: str, clean: float, drops: dict[str, float], effective: bool) -> dict[str, Any]:
    curves = []
    for i, field in enumerate(FIELDS):
        for j, family in enumerate(KIND_FAMILIES[field["kind"]]):
            drop = drops[field["name"]] * (1.0 if family == "missing" else 0.6 + 0.25 * j)
            curves.append(_curve(field["name"], family, clean, drop, 1.0 + 0.3 * ((i + j) % 3)))
    all_fields = [
        _curve("all", "missing", clean, sum(drops.values()) * 0.9, 1.4),
        {**_curve("all", "gaussian_noise", clean, sum(drops.values()) * 0.5, 1.2), "perturbation": "noise"},
    ]
    per_field = {}
    for field in FIELDS:
        own = [c["relative_robustness"] for c in curves if c["field"] == field["name"]]
        per_field[field["name"]] = round(sum(own) / len(own), 4)
    per_field["all"] = round(sum(c["relative_robustness"] for c in all_fields) / len(all_fields), 4)
    return {
        "metric": metric,
        "seed": 0,
        "curves": curves,
        "all_fields": all_fields,
        "relative_robustness": per_field,
        "effective_robustness": (
            {
                "baseline": {"model_id": "9c1e77b20a4d5f13", "fusion": "late"},
                "fields": {name: round(0.01 + 0.008 * k, 3) for k, name in enumerate(per_field)},
            }
            if effective
            else None
        ),
    }


def _reliability(shift: float, counts: list[int]) -> dict[str, Any]:
    n_bins = len(counts)
    edges = [round(i / n_bins, 6) for i in range(n_bins + 1)]
    confidence, accuracy = [], []
    for b, n in enumerate(counts):
        mid = (edges[b] + edges[b + 1]) / 2
        confidence.append(round(mid, 4) if n else 0.0)
        accuracy.append(round(min(1.0, max(0.0, mid - shift * (1 - abs(0.9 - mid)))), 4) if n else 0.0)
    gaps = [n * abs(a - c) for n, a, c in zip(counts, accuracy, confidence, strict=True)]
    return {
        "edges": edges,
        "confidence": confidence,
        "accuracy": accuracy,
        "count": counts,
        "ece": round(sum(gaps) / sum(counts), 4),
        "mce": round(max(abs(a - c) for n, a, c in zip(counts, accuracy, confidence, strict=True) if n), 4),
    }


def _ablation(metric: str, higher: bool, all_value: float, alone: dict[str, float], without: dict[str, float],
              retrained: dict[str, float] | None, extra: str) -> dict[str, Any]:  # fmt: skip
    fields = {}
    for name in alone:
        marginal = all_value - without[name] if higher else without[name] - all_value
        fields[name] = {
            "alone": alone[name],
            "without": without[name],
            "marginal": round(marginal, 4),
            "retrained_without": None if retrained is None else retrained[name],
        }
    return {
        "metric": metric,
        "higher_is_better": higher,
        "all": all_value,
        "fields": fields,
        "single_field": {k: {metric: v, extra: round(v * 0.97, 4), "n": 270} for k, v in alone.items()},
        "without_field": {k: {metric: v, extra: round(v * 0.97, 4), "n": 270} for k, v in without.items()},
    }


def _box(mean: float, n: int) -> dict[str, Any]:
    return {
        "mean": round(mean, 4),
        "q25": round(mean * 0.7, 4),
        "median": round(mean * 0.96, 4),
        "q75": round(mean * 1.3, 4),
        "n": n,
    }


def _weights(means: dict[str, float], classes: list[str]) -> dict[str, Any]:
    by_class = {}
    for c, name in enumerate(classes):
        tilted = {f: m * (1.0 + 0.35 * ((i + c) % 3 - 1)) for i, (f, m) in enumerate(means.items())}
        total = sum(tilted.values())
        by_class[name] = {f: _box(m / total, 90) for f, m in tilted.items()}
    return {
        "field_order": list(means),
        "overall": {f: _box(m, 270) for f, m in means.items()},
        "by_class": by_class,
    }


def _header(task: dict[str, Any], fusion: str) -> dict[str, Any]:
    return {
        "format": "plait-evaluation/1",
        "model_id": "3f2a9c0d41e7b8a2",
        "plait_version": "0.1.0",
        "created": "2026-11-22T10:00:00+00:00",
        "data": {
            "source": "demo-out/data/samples.parquet",
            "rows": 270,
            "selection": "test rows of the training table (seed 0)",
        },
        "task": task,
        "fields": [dict(f) for f in FIELDS],
        "fusion": fusion,
    }


def classification_report_data() -> dict[str, Any]:
    """Three classes, five fields (one per kind but embedding), gated fusion: every section filled."""
    classes = ["ok", "bearing", "cavitation"]
    alone = {"vibration": 0.781, "thermal": 0.637, "sound": 0.711, "notes": 0.52, "specs": 0.448}
    without = {"vibration": 0.904, "thermal": 0.941, "sound": 0.93, "notes": 0.959, "specs": 0.963}
    retrained = {"vibration": 0.915, "thermal": 0.948, "sound": 0.937, "notes": 0.959, "specs": 0.959}
    drops = {"vibration": 0.06, "thermal": 0.025, "sound": 0.035, "notes": 0.006, "specs": 0.002}
    before = _reliability(0.09, [0, 0, 0, 0, 0, 1, 3, 4, 6, 9, 11, 14, 21, 38, 163])
    after = _reliability(0.02, [0, 0, 0, 0, 1, 3, 5, 7, 9, 12, 16, 22, 34, 60, 101])
    subsets = [
        ("all", ["vibration", "thermal", "sound", "notes", "specs"], 270, 1.31, before["ece"], after["ece"]),
        ("sound+thermal+notes+specs", ["thermal", "sound", "notes", "specs"], 270, 1.18, 0.052, 0.021),
        ("vibration+thermal+sound+notes", ["vibration", "thermal", "sound", "notes"], 270, 1.27, 0.047, 0.02),
        ("vibration", ["vibration"], 270, 1.05, 0.061, 0.033),
        ("sound+thermal+vibration+specs", ["vibration", "thermal", "sound", "specs"], 11, 1.4, 0.09, 0.071),
    ]
    inconsistency_rows = []
    for k, (row, target, prediction, score, vib, snd) in enumerate(
        [
            (17, "bearing", "ok", 0.93, "bearing", "ok"),
            (42, "cavitation", "cavitation", 0.91, "cavitation", "bearing"),
            (103, "ok", "ok", 0.88, "bearing", "ok"),
            (150, "bearing", "bearing", 0.86, "bearing", "cavitation"),
            (211, "cavitation", "bearing", 0.84, "bearing", "cavitation"),
            (7, "ok", "ok", 0.81, "ok", "cavitation"),
        ]
    ):
        inconsistency_rows.append(
            {
                "row": row,
                "target": target,
                "prediction": prediction,
                "score": score,
                "fields": {
                    "vibration": {"prediction": vib, "confidence": round(0.97 - 0.02 * k, 3)},
                    "thermal": {"prediction": prediction, "confidence": round(0.72 + 0.03 * k, 3)},
                    "sound": {"prediction": snd, "confidence": round(0.93 - 0.02 * k, 3)},
                    "notes": {"prediction": "ok", "confidence": 0.51},
                    "specs": {"prediction": target, "confidence": 0.44},
                },
            }
        )
    return {
        **_header({"type": "classification", "label": "fault", "classes": classes}, "gated"),
        "headline": {"metric": "accuracy", "value": 0.963, "low": 0.937, "high": 0.981, "level": 0.95},
        "metrics": {"accuracy": 0.963, "macro_f1": 0.962, "auroc": 0.994, "n": 270},
        "confusion_matrix": [[88, 2, 0], [1, 86, 3], [0, 4, 86]],
        "ablation": _ablation("accuracy", True, 0.963, alone, without, retrained, "macro_f1"),
        "robustness": _robustness("accuracy", 0.963, drops, effective=True),
        "calibration": {
            "ece": {"before": before["ece"], "after": after["ece"]},
            "mce": {"before": before["mce"], "after": after["mce"]},
            "reliability": {"before": before, "after": after},
            "subsets": [
                {
                    "key": key,
                    "fields": fields,
                    "rows": rows,
                    "temperature": t,
                    "ece_before": b,
                    "ece_after": a,
                }
                for key, fields, rows, t, b, a in subsets
            ],
        },
        "interpretation": {
            "weights": _weights(
                {"vibration": 0.34, "thermal": 0.18, "sound": 0.24, "notes": 0.12, "specs": 0.12}, classes
            ),
            "inconsistencies": {
                "threshold": 0.8,
                "rate": 0.041,
                "rows": inconsistency_rows,
                "rows_compared": 270,
            },
        },
        "timing": {"seconds": 12.3, "encoding_seconds": 4.1},
    }


def regression_report_data() -> dict[str, Any]:
    """Remaining life in hours, five fields, attention fusion: rmse headline (lower is better), r2
    robustness, no calibration, no confusion matrix, weights overall only, numeric inconsistencies."""
    alone = {"vibration": 58.4, "thermal": 71.9, "sound": 64.2, "notes": 88.5, "specs": 80.3}
    without = {"vibration": 49.7, "thermal": 43.9, "sound": 45.6, "notes": 41.8, "specs": 42.3}
    drops = {"vibration": 0.2, "thermal": 0.07, "sound": 0.11, "notes": 0.02, "specs": 0.03}
    rows = []
    for k, (row, target, prediction, vib, snd) in enumerate(
        [(88, 412.0, 301.5, 455.2, 190.4), (12, 96.5, 140.2, 88.1, 250.7), (230, 260.0, 255.3, 330.9, 171.2)]
    ):
        rows.append(
            {
                "row": row,
                "target": target,
                "prediction": prediction,
                "score": round(0.9 - 0.1 * k, 3),
                "fields": {
                    "vibration": {"prediction": vib, "confidence": None},
                    "thermal": {"prediction": prediction + 12.5, "confidence": None},
                    "sound": {"prediction": snd, "confidence": None},
                    "notes": {"prediction": prediction - 20.0, "confidence": None},
                    "specs": {"prediction": target, "confidence": None},
                },
            }
        )
    return {
        **_header({"type": "regression", "label": "remaining_life_h", "classes": []}, "attention"),
        "headline": {"metric": "rmse", "value": 41.2, "low": 36.8, "high": 46.0, "level": 0.95},
        "metrics": {"rmse": 41.2, "mae": 30.7, "r2": 0.871, "n": 270},
        "confusion_matrix": None,
        "ablation": _ablation("rmse", False, 41.2, alone, without, None, "mae"),
        "robustness": _robustness("r2", 0.871, drops, effective=False),
        "calibration": None,
        "interpretation": {
            "weights": {
                **_weights(
                    {"vibration": 0.38, "thermal": 0.17, "sound": 0.25, "notes": 0.08, "specs": 0.12}, []
                ),
                "by_class": {},
            },
            "inconsistencies": {"threshold": 0.25, "rate": 0.011, "rows": rows, "rows_compared": 270},
        },
        "timing": {"seconds": 9.8, "encoding_seconds": 3.6},
    }


def expected_plot_count(data: dict[str, Any]) -> int:
    """The charts (`svg.plot`) a report of `data` has: the ablation bars, one robustness chart per
    field with curves plus one for all fields, the reliability diagram, the confusion matrix and the
    weight box plot, each only when its data is there."""
    rob = data.get("robustness") or {}
    interpretation = data.get("interpretation") or {}
    return (
        bool((data.get("ablation") or {}).get("fields"))
        + len({c["field"] for c in rob.get("curves") or []})
        + bool(rob.get("all_fields"))
        + (data.get("calibration") is not None)
        + (data.get("confusion_matrix") is not None)
        + (interpretation.get("weights") is not None)
    )
