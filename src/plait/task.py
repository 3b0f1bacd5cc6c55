"""The task a model learns — classification or regression — as an object that owns what depends on
it: how targets are encoded for training and how an output row decodes to the answer, the loss,
the probabilities, the metrics and which of them is the headline.

Regression targets are trained standardised (`target_mean`, `target_std` of the TRAINING rows);
outputs and targets go back to the target's own units through `to_target_units`. The JSON form is
the `task` object of plait.json: type, label, classes, target_mean, target_std.

Importing this module does not import torch (the methods that compute do, when called): the
config layer, the report renderer and the demo data name task types without paying for it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal

from plait.errors import ConfigError

if TYPE_CHECKING:
    import numpy as np
    from torch import Tensor

TaskType = Literal["classification", "regression", "embedding"]
CLASSIFICATION: TaskType = "classification"
REGRESSION: TaskType = "regression"
TASK_TYPES: tuple[TaskType, ...] = (CLASSIFICATION, REGRESSION)  # the tasks that predict a label
# No label at all: a shared space trained by contrastive stages alone (a config without `task`).
# Such a model embeds, searches and imputes; it predicts nothing.
EMBEDDING: TaskType = "embedding"


@dataclass(frozen=True)
class Task:
    type: TaskType
    label: str  # the table column the model predicts
    classes: tuple[str, ...] = ()  # classification: the class names, in output order
    target_mean: float = 0.0  # regression: targets are trained standardised by these
    target_std: float = 1.0

    def __post_init__(self) -> None:
        if self.type not in (*TASK_TYPES, EMBEDDING):
            raise ConfigError(f"task type must be classification, regression or embedding; got {self.type!r}")
        object.__setattr__(self, "classes", tuple(self.classes))

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Task:
        """The `task` object of plait.json (bundle_checks has checked its keys and types)."""
        return cls(
            type=data["type"],
            label=data["label"],
            classes=tuple(data["classes"]),
            target_mean=float(data["target_mean"]),
            target_std=float(data["target_std"]),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "label": self.label,
            "classes": list(self.classes),
            "target_mean": self.target_mean,
            "target_std": self.target_std,
        }

    @property
    def is_classification(self) -> bool:
        return self.type == CLASSIFICATION

    @property
    def predicts(self) -> bool:
        """False for a label-free shared space (`embedding`): nothing to predict, only to embed."""
        return self.type != EMBEDDING

    def require_prediction(self, what: str) -> None:
        """A ConfigError for `what` (predict, evaluate, …) on a model trained without labels."""
        if not self.predicts:
            raise ConfigError(
                f"{what}: this model was trained without labels (a shared space from contrastive stages "
                "only), so it predicts nothing; it embeds (plait embed, Predictor.embed), searches "
                "(plait search) and imputes. Train with `task: {label: COLUMN}` to predict"
            )

    @property
    def n_outputs(self) -> int:
        """The model's output width: one logit per class, or one value."""
        return len(self.classes) if self.is_classification else 1

    # ---------------------------------------------------------------- metrics

    @property
    def headline_metric(self) -> str:
        """The figure reports lead with: accuracy, or RMSE in the target's units."""
        return "accuracy" if self.is_classification else "rmse"

    @property
    def higher_is_better(self) -> bool:
        """Whether a larger headline metric is better (accuracy), or a smaller (RMSE)."""
        return self.is_classification

    @property
    def robustness_metric(self) -> str:
        """The higher-is-better skill that robustness curves and field probes measure: accuracy,
        or R² (comparable across targets, unlike RMSE)."""
        return "accuracy" if self.is_classification else "r2"

    def metrics(self, output: Tensor, target: Tensor) -> dict[str, float]:
        """The task metrics of model outputs (N, K) against encoded targets (N,); regression is
        scored in the target's own units."""
        from plait.metrics import classification_metrics, regression_metrics

        if self.is_classification:
            return classification_metrics(output, target)
        return regression_metrics(self.to_target_units(output), self.to_target_units(target))

    # ---------------------------------------------------------------- targets and answers

    def standardised_on(self, train_target: np.ndarray) -> Task:
        """This task with regression targets standardised by the mean and standard deviation of
        `train_target` (the training rows only); a constant target keeps std 1. Classification
        is returned as it is."""
        if self.is_classification:
            return self
        mean, std = float(train_target.mean()), float(train_target.std())
        return replace(self, target_mean=mean, target_std=std if std > 0.0 else 1.0)

    def encode_targets(self, target: np.ndarray) -> np.ndarray:
        """Targets as the model trains on them: class indices (int64), or standardised values (float32)."""
        if self.is_classification:
            return target.astype("int64")
        return ((target - self.target_mean) / self.target_std).astype("float32")

    def to_target_units(self, values: Tensor) -> Tensor:
        """Regression outputs (N, 1) or standardised targets (N,) -> values in the target's units (N,),
        in float32 (float64 stays float64); classification outputs and targets are returned as
        they are."""
        if self.is_classification:
            return values
        import torch

        x = values.reshape(-1)
        x = x if x.dtype == torch.float64 else x.float()
        return x * self.target_std + self.target_mean

    def probabilities(self, logits: Tensor) -> Tensor:
        """Class probabilities (…, K) from logits (…, K); a regression has none."""
        if not self.is_classification:
            raise ConfigError(f"a regression of '{self.label}' has no class probabilities")
        return logits.float().softmax(dim=-1)

    def answer(self, value: Tensor) -> str | float:
        """An output row (K,) — or one encoded target, a scalar — as the answer: the class name, or
        the value in the target's units."""
        if self.is_classification:
            index = int(value) if value.ndim == 0 else int(value.argmax())
            return self.classes[index]
        return float(value.reshape(-1)[0]) * self.target_std + self.target_mean

    def loss(self, output: Tensor, target: Tensor) -> Tensor:
        """The training loss, a pure function: cross-entropy of logits (B, K) against class indices
        (B,), or the mean squared error of predictions (B, 1) against standardised targets (B,)."""
        from plait.objectives.supervised import classification_loss, regression_loss

        if self.is_classification:
            return classification_loss(output, target)
        return regression_loss(output, target)


def gain(mine: float, theirs: float, higher_is_better: bool) -> float:
    """How much better `mine` scores than `theirs` in the metric's direction (positive: better),
    for a metric where higher is better (accuracy) or lower is (RMSE)."""
    return mine - theirs if higher_is_better else theirs - mine
