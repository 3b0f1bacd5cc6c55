"""The evaluation report as frozen records: what `full_evaluation` returns, what report.html and the
terminal summary read, and what evaluation.json / metrics.json hold (`to_json` / `from_json` at the
file boundary only).

Every section is optional: None when the run left it out (`--no-robustness`; a regression has no
calibration or confusion matrix) or when a file written by an older plait lacks it, and the page
then says the section is not available. Inside a section the keys are required; a malformed one is a
`DataError` naming the section and the key."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from plait.errors import DataError
from plait.evaluation.calibration import ReliabilityCurve
from plait.evaluation.interpret import Interpretation
from plait.evaluation.robustness import Curve
from plait.evaluation.space import SpaceEvaluation
from plait.task import REGRESSION, gain

FORMAT = "plait-evaluation/1"
LOWER_IS_BETTER = frozenset({"rmse", "mae", "mse", "loss", "log_loss", "ece"})

T = TypeVar("T")


@dataclass(frozen=True)
class RowSelection:
    """Which rows were evaluated: the table, how many rows, and in words which (test rows of …)."""

    source: str
    rows: int
    selection: str

    def to_json(self) -> dict[str, Any]:
        return {"source": self.source, "rows": self.rows, "selection": self.selection}

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> RowSelection:
        return cls(str(raw["source"]), int(raw["rows"]), str(raw.get("selection", "")))


@dataclass(frozen=True)
class TaskSummary:
    type: str  # classification | regression
    label: str
    classes: tuple[str, ...]  # empty for regression

    @property
    def is_regression(self) -> bool:
        return self.type == REGRESSION

    def to_json(self) -> dict[str, Any]:
        return {"type": self.type, "label": self.label, "classes": list(self.classes)}

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> TaskSummary:
        return cls(str(raw["type"]), str(raw["label"]), tuple(str(c) for c in raw.get("classes") or ()))


@dataclass(frozen=True)
class FieldKind:
    name: str
    kind: str

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind}

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> FieldKind:
        return cls(str(raw["name"]), str(raw.get("kind", "")))


@dataclass(frozen=True)
class Headline:
    """The headline metric with its bootstrap interval (`level`, e.g. 0.95), in target units."""

    metric: str
    value: float
    low: float
    high: float
    level: float

    def to_json(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "low": self.low,
            "high": self.high,
            "level": self.level,
            "value": self.value,
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Headline:
        return cls.from_interval(raw, float(raw["value"]))

    @classmethod
    def from_interval(cls, interval: Mapping[str, Any], value: float) -> Headline:
        """`evaluation.evaluate.headline_interval`'s dict (also training's metrics.json `interval`)
        with the metric's value."""
        return cls(
            str(interval["metric"]),
            value,
            float(interval["low"]),
            float(interval["high"]),
            float(interval["level"]),
        )


@dataclass(frozen=True)
class FieldAblation:
    """One field's headline metric alone, with all but it, what it adds, and (when run) a model
    retrained without it. `without` and `marginal` are None for a one-field model."""

    alone: float
    without: float | None
    marginal: float | None
    retrained_without: float | None

    def retrain_gap(self, higher_is_better: bool) -> float | None:
        """A model retrained without the field minus this model with it absent, as a loss (positive:
        the field missing costs this model more than retraining would); None when not measured."""
        if self.retrained_without is None or self.without is None:
            return None
        return gain(self.retrained_without, self.without, higher_is_better)

    def to_json(self) -> dict[str, Any]:
        return {
            "alone": self.alone,
            "without": self.without,
            "marginal": self.marginal,
            "retrained_without": self.retrained_without,
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> FieldAblation:
        return cls(
            float(raw["alone"]),
            _float_or_none(raw.get("without")),
            _float_or_none(raw.get("marginal")),
            _float_or_none(raw.get("retrained_without")),
        )


@dataclass(frozen=True)
class Ablation:
    metric: str
    higher_is_better: bool
    all: float  # the metric with every field
    fields: Mapping[str, FieldAblation]
    single_field: Mapping[str, Mapping[str, float]]  # field -> every metric with only that field
    without_field: Mapping[str, Mapping[str, float]]  # field -> every metric with all but that field

    def to_json(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "higher_is_better": self.higher_is_better,
            "all": self.all,
            "fields": {f: a.to_json() for f, a in self.fields.items()},
            "single_field": {f: dict(m) for f, m in self.single_field.items()},
            "without_field": {f: dict(m) for f, m in self.without_field.items()},
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Ablation:
        return cls(
            metric=str(raw["metric"]),
            higher_is_better=bool(raw.get("higher_is_better", True)),
            all=float(raw["all"]),
            fields={str(f): FieldAblation.from_json(a) for f, a in raw["fields"].items()},
            single_field={str(f): dict(m) for f, m in (raw.get("single_field") or {}).items()},
            without_field={str(f): dict(m) for f, m in (raw.get("without_field") or {}).items()},
        )


@dataclass(frozen=True)
class EffectiveRobustness:
    """Per field (and "all"): this model's drop minus the baseline model's, averaged over levels."""

    baseline_model_id: str | None
    baseline_fusion: str
    fields: Mapping[str, float]

    def to_json(self) -> dict[str, Any]:
        return {
            "baseline": {"model_id": self.baseline_model_id, "fusion": self.baseline_fusion},
            "fields": dict(self.fields),
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> EffectiveRobustness:
        base = raw["baseline"]
        return cls(
            base.get("model_id"), str(base["fusion"]), {str(f): float(v) for f, v in raw["fields"].items()}
        )


@dataclass(frozen=True)
class Robustness:
    metric: str
    seed: int
    curves: tuple[Curve, ...]  # one per field and perturbation family
    all_fields: tuple[Curve, ...]  # every field perturbed at once
    relative_robustness: Mapping[str, float]  # field (and "all") -> mean area of its curves
    plan: tuple[str, ...] | None = None  # the --perturb choices; None: the default curves
    note: str | None = None
    relative_robustness_method: Mapping[str, object] | None = None  # how the area is computed
    effective: EffectiveRobustness | None = None  # with a --baseline model
    effective_method: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "seed": self.seed,
            "curves": [c.to_json() for c in self.curves],
            "all_fields": [c.to_json() for c in self.all_fields],
            "plan": None if self.plan is None else list(self.plan),
            "relative_robustness": dict(self.relative_robustness),
            "note": self.note,
            "relative_robustness_method": None
            if self.relative_robustness_method is None
            else dict(self.relative_robustness_method),
            "effective_robustness": None if self.effective is None else self.effective.to_json(),
            "effective_robustness_method": self.effective_method,
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Robustness:
        plan, effective = raw.get("plan"), raw.get("effective_robustness")
        return cls(
            metric=str(raw["metric"]),
            seed=int(raw.get("seed", 0)),
            curves=tuple(Curve.from_json(c) for c in raw.get("curves") or ()),
            all_fields=tuple(Curve.from_json(c) for c in raw.get("all_fields") or ()),
            relative_robustness={str(f): float(v) for f, v in (raw.get("relative_robustness") or {}).items()},
            plan=None if plan is None else tuple(str(p) for p in plan),
            note=raw.get("note"),
            relative_robustness_method=raw.get("relative_robustness_method"),
            effective=None if effective is None else EffectiveRobustness.from_json(effective),
            effective_method=str(raw.get("effective_robustness_method", "")),
        )


@dataclass(frozen=True)
class SubsetCalibration:
    """The rows with exactly these fields present: their temperature and ECE before and after it."""

    key: str
    fields: tuple[str, ...]
    rows: int
    temperature: float
    ece_before: float
    ece_after: float

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "fields": list(self.fields),
            "rows": self.rows,
            "temperature": self.temperature,
            "ece_before": self.ece_before,
            "ece_after": self.ece_after,
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> SubsetCalibration:
        return cls(
            str(raw["key"]),
            tuple(str(f) for f in raw["fields"]),
            int(raw["rows"]),
            float(raw["temperature"]),
            float(raw["ece_before"]),
            float(raw["ece_after"]),
        )


@dataclass(frozen=True)
class Calibration:
    """ECE / MCE and reliability bins before and after the bundle's per-subset temperatures."""

    calibrated: bool  # False: the bundle has no temperatures (before and after are the same)
    ece_before: float
    ece_after: float
    mce_before: float
    mce_after: float
    reliability_before: ReliabilityCurve | None
    reliability_after: ReliabilityCurve | None
    subsets: tuple[SubsetCalibration, ...]

    def to_json(self) -> dict[str, Any]:
        reliability = {
            name: curve.to_json()
            for name, curve in (("before", self.reliability_before), ("after", self.reliability_after))
            if curve is not None
        }
        return {
            "calibrated": self.calibrated,
            "ece": {"before": self.ece_before, "after": self.ece_after},
            "mce": {"before": self.mce_before, "after": self.mce_after},
            "reliability": reliability,
            "subsets": [s.to_json() for s in self.subsets],
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Calibration:
        reliability = raw.get("reliability") or {}

        def curve(name: str) -> ReliabilityCurve | None:
            return ReliabilityCurve.from_json(reliability[name]) if name in reliability else None

        return cls(
            calibrated=bool(raw.get("calibrated", False)),
            ece_before=float(raw["ece"]["before"]),
            ece_after=float(raw["ece"]["after"]),
            mce_before=float(raw["mce"]["before"]),
            mce_after=float(raw["mce"]["after"]),
            reliability_before=curve("before"),
            reliability_after=curve("after"),
            subsets=tuple(SubsetCalibration.from_json(s) for s in raw.get("subsets") or ()),
        )


@dataclass(frozen=True)
class BoostingBaseline:
    """Gradient boosting on the fields' summary features, trained on the same rows and split
    (`plait train --boosting`): the simple model this one has to beat, and the same kind of model
    retrained without each field."""

    metric: str
    value: float
    metrics: Mapping[str, float]
    retrained_without: Mapping[str, float]
    importance: Mapping[str, float]  # field -> share of the split gain
    rounds: int
    seconds: float

    def to_json(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "value": self.value,
            "metrics": dict(self.metrics),
            "retrained_without": dict(self.retrained_without),
            "importance": dict(self.importance),
            "rounds": self.rounds,
            "seconds": self.seconds,
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> BoostingBaseline:
        return cls(
            metric=str(raw["metric"]),
            value=float(raw["value"]),
            metrics={str(k): float(v) for k, v in raw.get("metrics", {}).items()},
            retrained_without={str(k): float(v) for k, v in raw.get("retrained_without", {}).items()},
            importance={str(k): float(v) for k, v in raw.get("importance", {}).items()},
            rounds=int(raw.get("rounds", 0)),
            seconds=float(raw.get("seconds", 0.0)),
        )


@dataclass(frozen=True)
class Timing:
    seconds: float
    encoding_seconds: float

    def to_json(self) -> dict[str, Any]:
        return {"seconds": self.seconds, "encoding_seconds": self.encoding_seconds}

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Timing:
        return cls(float(raw["seconds"]), float(raw["encoding_seconds"]))


@dataclass(frozen=True)
class EvaluationReport:
    """One evaluation of a trained model on chosen rows (`plait evaluate`, the bundle's report)."""

    format: str = FORMAT
    model_id: str | None = None  # None: a model that was not saved
    plait_version: str | None = None
    created: str | None = None  # ISO 8601, UTC
    data: RowSelection | None = None
    task: TaskSummary | None = None
    fields: tuple[FieldKind, ...] = ()
    fusion: str | None = None
    headline: Headline | None = None
    metrics: Mapping[str, float] | None = None  # every metric with all fields
    confusion_matrix: tuple[tuple[int, ...], ...] | None = None  # [true class][predicted class]
    ablation: Ablation | None = None
    robustness: Robustness | None = None
    calibration: Calibration | None = None
    interpretation: Interpretation | None = None
    timing: Timing | None = None
    boosting: BoostingBaseline | None = None  # with `plait train --boosting`
    space: SpaceEvaluation | None = None  # retrieval and zero-shot, for a model with a shared space

    @property
    def is_regression(self) -> bool:
        return self.task is not None and self.task.is_regression

    @property
    def kinds(self) -> dict[str, str]:
        """field name -> kind, in the model's order."""
        return {f.name: f.kind for f in self.fields}

    @property
    def higher_is_better(self) -> bool:
        """For the headline metric: the ablation says; otherwise judged from the metric's name."""
        if self.ablation is not None:
            return self.ablation.higher_is_better
        return self.headline is None or self.headline.metric not in LOWER_IS_BETTER

    @property
    def versus_boosting(self) -> tuple[float, float] | None:
        """(this model's value of the boosting baseline's metric, how far it is ahead of boosting:
        > 0 better, in the metric's direction), or None without a baseline or the metric."""
        boost = self.boosting
        if boost is None:
            return None
        mine = (self.metrics or {}).get(boost.metric)
        if mine is None and self.headline is not None and self.headline.metric == boost.metric:
            mine = self.headline.value
        if mine is None:
            return None
        return mine, gain(mine, boost.value, self.higher_is_better)

    def to_json(self) -> dict[str, Any]:
        def out(section: Any) -> Any:
            return None if section is None else section.to_json()

        return {
            "format": self.format,
            "model_id": self.model_id,
            "plait_version": self.plait_version,
            "created": self.created,
            "data": out(self.data),
            "task": out(self.task),
            "fields": [f.to_json() for f in self.fields],
            "fusion": self.fusion,
            "headline": out(self.headline),
            "metrics": None if self.metrics is None else dict(self.metrics),
            "confusion_matrix": None
            if self.confusion_matrix is None
            else [list(row) for row in self.confusion_matrix],
            "ablation": out(self.ablation),
            "robustness": out(self.robustness),
            "calibration": out(self.calibration),
            "interpretation": out(self.interpretation),
            "timing": out(self.timing),
            "boosting": out(self.boosting),
            "space": out(self.space),
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any], where: str = "evaluation JSON") -> EvaluationReport:
        """Read what `to_json` wrote. A missing or null section is None; a malformed one is a
        `DataError` naming `where` (the file), the section and what is wrong."""
        if not isinstance(raw, Mapping):
            raise DataError(f"{where}: expected a JSON object (a plait evaluation), got {type(raw).__name__}")

        def section(key: str, read: Callable[[Any], T]) -> T | None:
            value = raw.get(key)
            if value is None:
                return None
            try:
                return read(value)
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                raise DataError(
                    f"{where}: the `{key}` section is not in the {FORMAT} format ({type(exc).__name__}: "
                    f"{exc}); write it again with `plait evaluate BUNDLE DATA -o DIR`"
                ) from exc

        fields = section("fields", lambda v: tuple(FieldKind.from_json(f) for f in v))
        return cls(
            format=str(raw.get("format", FORMAT)),
            model_id=raw.get("model_id"),
            plait_version=raw.get("plait_version"),
            created=raw.get("created"),
            data=section("data", RowSelection.from_json),
            task=section("task", TaskSummary.from_json),
            fields=fields or (),
            fusion=raw.get("fusion"),
            headline=section("headline", Headline.from_json),
            metrics=section("metrics", lambda v: {str(k): float(x) for k, x in v.items()}),
            confusion_matrix=section(
                "confusion_matrix", lambda v: tuple(tuple(int(x) for x in r) for r in v)
            ),
            ablation=section("ablation", Ablation.from_json),
            robustness=section("robustness", Robustness.from_json),
            calibration=section("calibration", Calibration.from_json),
            interpretation=section("interpretation", Interpretation.from_json),
            timing=section("timing", Timing.from_json),
            boosting=section("boosting", BoostingBaseline.from_json),
            space=section("space", SpaceEvaluation.from_json),
        )


def _float_or_none(value: Any) -> float | None:
    return None if value is None else float(value)
