"""Stacking: per-field decisions combined by a meta-learner fitted on held-out rows.

Each field decides on its own (`head_f(pooled_f)` -> [B, K]) and is trained to be good alone
(`trains_fields_alone`: the trainer adds each field's own loss). Until `fit_held_out` has run, the
decisions of the PRESENT fields are averaged uniformly. `fit_held_out` then fits a linear
meta-learner on the validation rows' decisions (scikit-learn's StackingClassifier, with presence):
    features = [t(d_1) * present_1, …, t(d_M) * present_M, present_1, …, present_M]   (B, M*K + M)
    fused    = features @ W.T + b                                                       (B, K)
with t = log_softmax for classification and the raw decision for regression, L2-regularised and
fitted by full-batch LBFGS (deterministic). The held-out rows are joined by copies of themselves with
one present field marked absent, so the meta-learner has seen every field go missing. An absent
field's features are exactly zero, so its input cannot change the output. A sample with no field
present gets a learned fallback. The fitted W, b and `meta_fitted` are buffers: they round-trip
through state_dict.

weights [B, M]: uniform over present fields before fitting; afterwards each field's share of the
meta-learner's output, |its term of features @ W.T| summed over outputs (centred over classes for
classification, where a shift shared by every class changes nothing).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from plait.errors import ConfigError, DataError
from plait.fusion.base import (
    check_fusion_args,
    check_positive,
    gather_present,
    softmax_over_present,
    stack_present,
)
from plait.fusion.hooks import check_hook_inputs
from plait.fusion.late import decision_heads
from plait.modes import evaluating
from plait.task import REGRESSION, TASK_TYPES
from plait.types import EncoderOutput, FusionOutput

_NAME = "stacking fusion"


class StackingFusion(nn.Module):
    """`StackingFusion(field_to_dim={"photo": 64, "note": 64}, output_dim=3, hidden=64, meta_l2=1e-3)`.

    output_dim is the number of task outputs (classes, or 1 for regression).
    """

    decision_level: ClassVar[bool] = True
    trains_fields_alone: ClassVar[bool] = True
    meta_weight: Tensor
    meta_bias: Tensor
    meta_fitted: Tensor
    meta_log_softmax: Tensor

    def __init__(
        self,
        field_to_dim: Mapping[str, int],
        output_dim: int,
        hidden: int = 64,
        dropout: float = 0.1,
        meta_l2: float = 1e-3,
    ) -> None:
        super().__init__()
        check_fusion_args(_NAME, field_to_dim, output_dim, dropout)
        check_positive(_NAME, "hidden", hidden)
        if isinstance(meta_l2, bool) or not isinstance(meta_l2, int | float) or not meta_l2 >= 0.0:
            raise ConfigError(f"{_NAME}: option 'meta_l2' must be a number ≥ 0; got {meta_l2!r}")
        self.field_order: tuple[str, ...] = tuple(field_to_dim)
        self.field_to_dim = dict(field_to_dim)
        self.output_dim = output_dim
        self.meta_l2 = float(meta_l2)
        self.heads = decision_heads(field_to_dim, output_dim, hidden, dropout)  # as late fusion's
        self.fallback = nn.Parameter(torch.zeros(output_dim))  # the output when no field is present
        m, k = len(self.field_order), output_dim
        self.register_buffer("meta_weight", torch.zeros(k, m * k + m))
        self.register_buffer("meta_bias", torch.zeros(k))
        self.register_buffer("meta_fitted", torch.tensor(False))
        self.register_buffer("meta_log_softmax", torch.tensor(False))  # classification: t = log_softmax

    def per_field_outputs(self, inputs: Mapping[str, EncoderOutput]) -> dict[str, Tensor]:
        """Each field's own decision [B, output_dim], as given (rows of absent samples are meaningless)."""
        return {f: head(inputs[f].pooled) for f, head in zip(self.field_order, self.heads, strict=True)}

    def forward(self, inputs: Mapping[str, EncoderOutput], present: Mapping[str, Tensor]) -> FusionOutput:
        pooled, mask = gather_present(inputs, present, self.field_order)
        decisions = self._decisions(pooled, mask)  # (B, M, K), zero where absent
        if bool(self.meta_fitted):
            terms = self._terms(decisions, mask)  # (B, M, K)
            mixed = terms.sum(dim=1) + self.meta_bias  # (B, K)
            weights = self._influence(terms, mask)
        else:
            weights = softmax_over_present(torch.zeros_like(mask, dtype=decisions.dtype), mask)
            mixed = (weights.unsqueeze(-1) * decisions).sum(dim=1)  # (B, M, K) -> (B, K)
        any_present = mask.any(dim=1, keepdim=True)  # (B, 1)
        fused = torch.where(any_present, mixed, self.fallback.expand_as(mixed))
        return FusionOutput(fused=fused, weights=weights)

    def _decisions(self, pooled: list[Tensor], mask: Tensor) -> Tensor:
        raw = torch.stack([head(p) for head, p in zip(self.heads, pooled, strict=True)], dim=1)  # (B, M, K)
        # head(0) is not 0: zero the decision itself, not just the input
        return torch.where(mask.unsqueeze(-1), raw, torch.zeros_like(raw))

    def _features(self, decisions: Tensor, mask: Tensor, log_softmax: bool) -> Tensor:
        """t(d_f) * present_f per field (B, M, K)."""
        t = F.log_softmax(decisions, dim=-1) if log_softmax else decisions
        return t * mask.unsqueeze(-1).to(t.dtype)

    def _terms(self, decisions: Tensor, mask: Tensor) -> Tensor:
        """Each field's additive term in features @ W.T: (B, M, K); zero for absent fields."""
        m, k = mask.shape[1], self.output_dim
        feats = self._features(decisions, mask, bool(self.meta_log_softmax))  # (B, M, K)
        w_dec = self.meta_weight[:, : m * k].reshape(k, m, k)  # (K_out, M, K_in)
        w_flag = self.meta_weight[:, m * k :].T  # (M, K_out)
        return torch.einsum("bmi,omi->bmo", feats, w_dec) + mask.unsqueeze(-1).to(feats.dtype) * w_flag

    def _influence(self, terms: Tensor, mask: Tensor) -> Tensor:
        """Per-field share [B, M] of |term|; uniform over present fields where every term is 0."""
        if bool(self.meta_log_softmax):
            terms = terms - terms.mean(dim=-1, keepdim=True)
        size = terms.abs().sum(dim=-1) * mask.to(terms.dtype)  # (B, M)
        total = size.sum(dim=1, keepdim=True)
        uniform = softmax_over_present(torch.zeros_like(size), mask)
        return torch.where(total > 0, size / total.clamp_min(torch.finfo(size.dtype).tiny), uniform)

    def fit_held_out(
        self, pooled: Mapping[str, Tensor], present: Mapping[str, Tensor], target: Tensor, task_type: str
    ) -> None:
        """Fit the meta-learner on held-out rows: pooled[f] [N, D_f], present[f] [N], target
        LongTensor[N] of class indices or FloatTensor[N] (standardised) for regression."""
        n = check_hook_inputs(_NAME, "fit_held_out", self.field_to_dim, pooled, present)
        classification = self._check_target(target, task_type, n)
        device, dtype = self.fallback.device, self.fallback.dtype
        mask = stack_present(present, self.field_order).bool().to(device)  # (N, M)
        # dropout off: the meta-learner sees the decisions it will combine
        with evaluating(self), torch.no_grad():
            inputs = [
                torch.where(mask[:, i : i + 1], pooled[f].to(device=device, dtype=dtype), 0.0)
                for i, f in enumerate(self.field_order)
            ]
            decisions = self._decisions(inputs, mask)  # (N, M, K)
        x, y = self._meta_rows(decisions.double().cpu(), mask.cpu(), target.cpu(), classification)
        if x.shape[0] == 0:
            raise DataError(
                f"{_NAME}.fit_held_out: none of the {n} held-out rows has a field present; "
                "the meta-learner needs rows with at least one field"
            )
        weight, bias = _fit_linear(x, y, self.output_dim, classification, self.meta_l2)
        self.meta_weight.copy_(weight)
        self.meta_bias.copy_(bias)
        self.meta_fitted.fill_(True)
        self.meta_log_softmax.fill_(classification)

    def _check_target(self, target: Tensor, task_type: str, n: int) -> bool:
        """True for classification; raise when target does not fit task_type and output_dim."""
        where = f"{_NAME}.fit_held_out"
        if task_type not in TASK_TYPES:
            raise ConfigError(f"{where}: task_type must be one of {TASK_TYPES}; got {task_type!r}")
        if tuple(target.shape) != (n,):
            raise DataError(f"{where}: target has shape {tuple(target.shape)}; expected [{n}], one per row")
        if task_type == REGRESSION:
            if self.output_dim != 1:
                raise DataError(f"{where}: regression needs output_dim 1; this fusion has {self.output_dim}")
            return False
        if target.is_floating_point() or (
            n > 0 and not 0 <= int(target.min()) <= int(target.max()) < self.output_dim
        ):
            raise DataError(
                f"{where}: classification targets must be integer class indices in [0, {self.output_dim}); "
                f"got {target.dtype} values {target.unique().tolist()[:10]}"
            )
        return True

    def _meta_rows(
        self, decisions: Tensor, mask: Tensor, target: Tensor, classification: bool
    ) -> tuple[Tensor, Tensor]:
        """Features (R, M*K + M) and targets of the held-out rows plus leave-one-field-out copies
        (each present field of a row with ≥ 2 present fields marked absent once). Rows with no
        field present are left out: the fallback answers those."""
        n, m = mask.shape
        variants = [(torch.arange(n), mask)]  # (rows, their presence)
        if m > 1:
            several = mask.sum(dim=1) >= 2
            for i in range(m):
                rows = (several & mask[:, i]).nonzero().squeeze(1)
                dropped = mask[rows].clone()
                dropped[:, i] = False
                variants.append((rows, dropped))
        feats, targets = [], []
        for rows, variant in variants:
            keep = variant.any(dim=1)
            rows, variant = rows[keep], variant[keep]
            d = torch.where(variant.unsqueeze(-1), decisions[rows], 0.0)  # (R_v, M, K)
            f = self._features(d, variant, classification)
            feats.append(torch.cat([f.flatten(1), variant.to(f.dtype)], dim=1))  # (R_v, M*K + M)
            targets.append(target[rows])
        return torch.cat(feats), torch.cat(targets)


def _fit_linear(x: Tensor, y: Tensor, k: int, classification: bool, l2: float) -> tuple[Tensor, Tensor]:
    """Minimise mean cross-entropy (or MSE) of x [R, F] @ W.T + b plus l2 * ||W||² by full-batch
    LBFGS from zero (a convex problem: the result does not depend on a seed). Returns W [K, F], b [K]."""
    weight = torch.zeros(k, x.shape[1], dtype=x.dtype, requires_grad=True)
    bias = torch.zeros(k, dtype=x.dtype, requires_grad=True)
    optimizer = torch.optim.LBFGS(
        [weight, bias],
        lr=1.0,
        max_iter=100,
        tolerance_grad=1e-7,
        tolerance_change=1e-10,
        history_size=20,
        line_search_fn="strong_wolfe",
    )

    def closure() -> Tensor:
        optimizer.zero_grad()
        out = x @ weight.T + bias  # (R, K)
        fit = F.cross_entropy(out, y.long()) if classification else F.mse_loss(out.squeeze(1), y.to(x.dtype))
        loss = fit + l2 * weight.pow(2).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        optimizer.step(closure)
    return weight.detach(), bias.detach()
