"""Contract checks a plug-in author can run on a fusion or an encoder (like scikit-learn's
`check_estimator`). Each check raises AssertionError with a message saying what was violated.

    from plait.testing.conformance import check_fusion, check_encoder
    check_fusion(MyFusion, heads=2)      # options are passed to the constructor

The encoder checks live in plait.testing.encoder_conformance; check_encoder is re-exported here.

A fusion with the optional hooks of plait.fusion.base (looked up with getattr, as the trainer does)
is checked before and after them: `prepare(pooled, present)` gets random pooled outputs with some
rows absent, then `fit_held_out(pooled, present, target, task_type)` gets random class targets
(regression targets when output_dim is 1). Each hook must leave the tensors it is given unchanged
and be deterministic (a second call on the same data leaves the same state); afterwards the whole
mask contract (outputs, absent fields ignored, gradients) must still hold, and the state round-trip
check covers what the hooks decided. A fusion with `trains_fields_alone = True` must have
`per_field_outputs(inputs)` giving a finite [B, output_dim] per field.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Any, cast

import torch
from torch import Tensor, nn

from plait.task import CLASSIFICATION, REGRESSION
from plait.testing.checks import ATOL as _ATOL
from plait.testing.checks import require as _require
from plait.testing.encoder_conformance import check_encoder
from plait.types import EncoderOutput, FusionOutput

# Field layouts of 1, 2 and 3 fields of different widths; every presence pattern is tried on each.
_LAYOUTS: tuple[dict[str, int], ...] = ({"a": 5}, {"a": 5, "b": 7}, {"a": 5, "b": 7, "c": 3})


# ---------------------------------------------------------------- fusions


def check_fusion(cls: type, output_dim: int = 8, **options: Any) -> None:
    """Run the fusion contract on `cls(field_to_dim, output_dim, **options)` for 1, 2 and 3
    fields and every subset of present fields, including none."""
    for layout in _LAYOUTS:
        _check_layout(cls, dict(layout), output_dim, options)


def _build(
    cls: type, field_to_dim: dict[str, int], output_dim: int, options: Mapping[str, Any], seed: int
) -> Any:
    torch.manual_seed(seed)
    fusion = cls(dict(field_to_dim), output_dim, **options)
    name = cls.__name__
    _require(isinstance(fusion, nn.Module), f"{name} must be an nn.Module; got {type(fusion).__name__}")
    _require(
        isinstance(getattr(cls, "decision_level", None), bool),
        f"{name} must declare a class attribute decision_level: ClassVar[bool]",
    )
    _require(
        getattr(fusion, "output_dim", None) == output_dim,
        f"{name}.output_dim is {getattr(fusion, 'output_dim', None)!r}; expected {output_dim}",
    )
    _require(
        tuple(getattr(fusion, "field_order", ())) == tuple(field_to_dim),
        f"{name}.field_order is {getattr(fusion, 'field_order', None)!r}; expected {tuple(field_to_dim)} "
        "(the insertion order of field_to_dim)",
    )
    return fusion


def _make_inputs(
    field_to_dim: Mapping[str, int], present: Tensor, seed: int, requires_grad: bool = False
) -> tuple[dict[str, EncoderOutput], dict[str, Tensor]]:
    """Random encoder outputs for presence matrix present [B, M]: fields have 2, 3, 4… tokens;
    the second field carries a token mask (real tokens only, none for absent samples)."""
    gen = torch.Generator().manual_seed(seed)
    b = present.shape[0]
    inputs, masks = {}, {}
    for i, (f, dim) in enumerate(field_to_dim.items()):
        keep = present[:, i].float()
        tokens = (torch.randn(b, 2 + i, dim, generator=gen) * keep[:, None, None]).requires_grad_(
            requires_grad
        )
        pooled = (torch.randn(b, dim, generator=gen) * keep[:, None]).requires_grad_(requires_grad)
        token_mask = None
        if i == 1:
            token_mask = present[:, i : i + 1].expand(b, 2 + i).clone()
            token_mask[::2, -1] = False  # padding on every other sample
        inputs[f] = EncoderOutput(tokens=tokens, pooled=pooled, token_mask=token_mask)
        masks[f] = present[:, i].clone()
    return inputs, masks


def _check_output(fusion: Any, out: object, present: Tensor, where: str, output_dim: int) -> FusionOutput:
    _require(
        isinstance(out, FusionOutput), f"{where}: forward must return FusionOutput; got {type(out).__name__}"
    )
    out = cast(FusionOutput, out)
    b, m = present.shape
    fused, weights = out.fused, out.weights
    _require(
        tuple(fused.shape) == (b, output_dim),
        f"{where}: fused has shape {tuple(fused.shape)}; expected {(b, output_dim)}",
    )
    _require(bool(torch.isfinite(fused).all()), f"{where}: fused holds NaN or inf")
    if weights is None:
        return out
    _require(
        tuple(weights.shape) == (b, m),
        f"{where}: weights have shape {tuple(weights.shape)}; expected {(b, m)}",
    )
    _require(bool(torch.isfinite(weights).all()), f"{where}: weights hold NaN or inf")
    _require(bool((weights >= 0).all()), f"{where}: weights must be ≥ 0; got {weights.tolist()}")
    absent_mass = weights.detach().masked_select(~present)
    _require(
        bool((absent_mass.abs() <= _ATOL).all()),
        f"{where}: absent fields must get weight 0; got {weights.tolist()} for presence {present.tolist()}",
    )
    any_present = present.any(dim=1)
    sums = weights.detach().sum(dim=1)[any_present]
    _require(
        bool(torch.allclose(sums, torch.ones_like(sums), atol=1e-4)),
        f"{where}: weights of a sample with a present field must sum to 1; got sums {sums.tolist()}",
    )
    return out


def _check_layout(
    cls: type, field_to_dim: dict[str, int], output_dim: int, options: Mapping[str, Any]
) -> None:
    name = f"{cls.__name__} with fields {field_to_dim}"
    fusion = _build(cls, field_to_dim, output_dim, options, seed=0)
    patterns = torch.tensor(list(itertools.product([False, True], repeat=len(field_to_dim))))  # (2^M, M)
    _check_mask_contract(fusion, field_to_dim, output_dim, patterns, name)
    _check_per_field_outputs(fusion, field_to_dim, output_dim, patterns, name)
    for hook in _HOOKS:
        if callable(getattr(fusion, hook, None)):
            _check_hook(fusion, hook, field_to_dim, output_dim, name)
            # whatever the hook decided, the mask contract still holds
            _check_mask_contract(fusion, field_to_dim, output_dim, patterns, f"{name} after {hook}")
    _check_state_round_trip(cls, fusion, field_to_dim, output_dim, options, patterns, name)


def _check_mask_contract(
    fusion: Any, field_to_dim: dict[str, int], output_dim: int, patterns: Tensor, name: str
) -> None:
    for training in (True, False):
        fusion.train(training)
        inputs, present = _make_inputs(field_to_dim, patterns, seed=1)
        mode = "train" if training else "eval"
        _check_output(
            fusion, fusion(inputs, present), patterns, f"{name} ({mode}, every pattern)", output_dim
        )
        for pattern in patterns:
            same = pattern.unsqueeze(0).expand(3, -1).clone()  # a whole batch with one pattern
            inputs, present = _make_inputs(field_to_dim, same, seed=2)
            where = f"{name} ({mode}, batch where every sample has presence {pattern.tolist()})"
            _check_output(fusion, fusion(inputs, present), same, where, output_dim)
    fusion.eval()
    _check_gradients(fusion, field_to_dim, patterns, name)
    _check_absent_ignored(fusion, field_to_dim, patterns, name)


# ---------------------------------------------------------------- optional hooks

_HOOKS = ("prepare", "fit_held_out")  # in the order the trainer calls them
_HOOK_ROWS = 40


def _hook_data(field_to_dim: Mapping[str, int], seed: int) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    """Pooled outputs [N, D_f] (zero where absent) and presence [N] per field, about a third absent;
    the first row has every field, the second none."""
    gen = torch.Generator().manual_seed(seed)
    present = torch.rand(_HOOK_ROWS, len(field_to_dim), generator=gen) < 0.65  # (N, M)
    present[0], present[1] = True, False
    pooled = {
        f: torch.randn(_HOOK_ROWS, dim, generator=gen) * present[:, i : i + 1]
        for i, (f, dim) in enumerate(field_to_dim.items())
    }
    return pooled, {f: present[:, i].clone() for i, f in enumerate(field_to_dim)}


def _hook_args(hook: str, field_to_dim: Mapping[str, int], output_dim: int) -> tuple[Any, ...]:
    pooled, present = _hook_data(field_to_dim, seed=11 if hook == "prepare" else 12)
    if hook == "prepare":
        return pooled, present
    gen = torch.Generator().manual_seed(13)
    if output_dim > 1:
        return pooled, present, torch.randint(0, output_dim, (_HOOK_ROWS,), generator=gen), CLASSIFICATION
    return pooled, present, torch.randn(_HOOK_ROWS, generator=gen), REGRESSION


def _check_hook(fusion: Any, hook: str, field_to_dim: dict[str, int], output_dim: int, name: str) -> None:
    """Call the hook twice on the same random data, in train mode (the trainer may call it so)."""
    args = _hook_args(hook, field_to_dim, output_dim)
    given = _tensors(args)
    kept = [t.clone() for t in given]
    fusion.train()
    getattr(fusion, hook)(*args)
    _require(
        all(torch.equal(a, b) for a, b in zip(given, kept, strict=True)),
        f"{name}: {hook} modified the tensors it was given; work on copies",
    )
    first = {k: v.clone() for k, v in fusion.state_dict().items()}
    getattr(fusion, hook)(*args)
    second = fusion.state_dict()
    changed = [k for k, v in first.items() if not torch.equal(v, second[k])]
    _require(
        not changed,
        f"{name}: calling {hook} twice on the same data left different state in {changed}; "
        "a hook must be deterministic (no dropout, no unseeded randomness)",
    )


def _tensors(args: tuple[Any, ...]) -> list[Tensor]:
    found: list[Tensor] = []
    for arg in args:
        if isinstance(arg, Tensor):
            found.append(arg)
        elif isinstance(arg, Mapping):
            found.extend(v for v in arg.values() if isinstance(v, Tensor))
    return found


def _check_per_field_outputs(
    fusion: Any, field_to_dim: dict[str, int], output_dim: int, patterns: Tensor, name: str
) -> None:
    if not getattr(type(fusion), "trains_fields_alone", False):
        return
    per_field = getattr(fusion, "per_field_outputs", None)
    if not callable(per_field):  # not _require: mypy narrows the type on a plain raise
        raise AssertionError(
            f"{name}: trains_fields_alone is True but has no per_field_outputs(inputs) method"
        )
    inputs, _ = _make_inputs(field_to_dim, patterns, seed=9)
    with torch.no_grad():
        outputs = per_field(inputs)
    _require(
        isinstance(outputs, Mapping) and set(outputs) == set(field_to_dim),
        f"{name}: per_field_outputs must return a dict with one entry per field {list(field_to_dim)}",
    )
    for f, out in outputs.items():
        _require(
            isinstance(out, Tensor) and tuple(out.shape) == (patterns.shape[0], output_dim),
            f"{name}: per_field_outputs['{f}'] must have shape {(patterns.shape[0], output_dim)}",
        )
        _require(bool(torch.isfinite(out).all()), f"{name}: per_field_outputs['{f}'] holds NaN or inf")


def _check_gradients(fusion: Any, field_to_dim: dict[str, int], patterns: Tensor, name: str) -> None:
    inputs, present = _make_inputs(field_to_dim, patterns, seed=3, requires_grad=True)
    out = fusion(inputs, present)
    gen = torch.Generator().manual_seed(4)
    loss = (out.fused * torch.randn(out.fused.shape, generator=gen)).sum()
    if out.weights is not None:
        loss = loss + (out.weights * torch.randn(out.weights.shape, generator=gen)).sum()
    loss.backward()
    for i, f in enumerate(field_to_dim):
        rows = patterns[:, i]
        grads = [g for g in (inputs[f].pooled.grad, inputs[f].tokens.grad) if g is not None]
        per_sample = sum((g.abs().flatten(1).sum(dim=1) for g in grads), torch.zeros(len(rows)))  # (B,)
        _require(
            bool((per_sample[rows] > 0).any()),
            f"{name}: no gradient reaches the pooled vector or tokens of present field '{f}'",
        )
        _require(
            bool((per_sample[~rows] == 0).all()),
            f"{name}: gradient reaches field '{f}' in samples where it is absent "
            f"(per-sample gradient norms {per_sample.tolist()}, present {rows.tolist()}); mask absent fields",
        )


def _check_absent_ignored(fusion: Any, field_to_dim: dict[str, int], patterns: Tensor, name: str) -> None:
    inputs, present = _make_inputs(field_to_dim, patterns, seed=5)
    gen = torch.Generator().manual_seed(6)
    changed = {}
    for i, (f, enc) in enumerate(inputs.items()):
        absent = ~patterns[:, i]
        tokens = torch.where(
            absent[:, None, None], 10 * torch.randn(enc.tokens.shape, generator=gen), enc.tokens
        )
        pooled = torch.where(absent[:, None], 10 * torch.randn(enc.pooled.shape, generator=gen), enc.pooled)
        changed[f] = EncoderOutput(tokens=tokens, pooled=pooled, token_mask=enc.token_mask)
    with torch.no_grad():
        before, after = fusion(inputs, present), fusion(changed, present)
    _require(
        bool(torch.allclose(before.fused, after.fused, atol=_ATOL)),
        f"{name}: changing the inputs of ABSENT fields changed the fused output; "
        "the presence mask is not honoured",
    )
    if before.weights is not None:
        _require(
            bool(torch.allclose(before.weights, after.weights, atol=_ATOL)),
            f"{name}: changing the inputs of ABSENT fields changed the weights; "
            "the presence mask is not honoured",
        )


def _check_state_round_trip(
    cls: type,
    fusion: Any,
    field_to_dim: dict[str, int],
    output_dim: int,
    options: Mapping[str, Any],
    patterns: Tensor,
    name: str,
) -> None:
    fresh = _build(cls, field_to_dim, output_dim, options, seed=7)
    fresh.load_state_dict(fusion.state_dict())
    fresh.eval()
    inputs, present = _make_inputs(field_to_dim, patterns, seed=8)
    with torch.no_grad():
        a, b = fusion(inputs, present), fresh(inputs, present)
    same = bool(torch.allclose(a.fused, b.fused, atol=_ATOL)) and (
        (a.weights is None) == (b.weights is None)
        and (a.weights is None or bool(torch.allclose(a.weights, b.weights, atol=_ATOL)))
    )
    _require(
        same,
        f"{name}: a fresh instance loaded with state_dict() gives different outputs in eval mode; "
        "keep all learned state in parameters or buffers",
    )


__all__ = ["check_encoder", "check_fusion"]
