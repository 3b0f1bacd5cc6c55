"""The encoder half of the contract checks (plait.testing.conformance re-exports check_encoder).

from plait.testing.conformance import check_encoder
check_encoder(encoder, x, present, mask)
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from plait.modes import evaluating
from plait.testing.checks import ATOL as _ATOL
from plait.testing.checks import require as _require
from plait.types import EncoderOutput


def check_encoder(encoder: nn.Module, x: Tensor, present: Tensor, mask: Tensor | None = None) -> None:
    """Run the encoder contract on one collated batch x with presence present [B] (it needs at
    least one present and one absent sample) and the step mask [B, L] the modality produced."""
    present = present.bool()
    if bool(present.all()) or not bool(present.any()):
        raise ValueError("check_encoder needs a batch with at least one present and one absent sample")
    name = type(encoder).__name__
    norms = [type(m).__name__ for m in encoder.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    _require(
        not norms, f"{name} uses {norms}; absent zero-filled rows poison batch statistics, use LayerNorm"
    )
    dim = getattr(encoder, "output_dim", None)
    _require(isinstance(dim, int), f"{name} must declare an integer output_dim; got {dim!r}")
    with evaluating(encoder):
        out = _check_encoder_output(encoder, x, present, mask, f"{name}")
        _check_encoder_output(encoder, x, torch.zeros_like(present), mask, f"{name} (every sample absent)")
        _check_encoder_absent_ignored(encoder, x, present, mask, out, name)
        _check_encoder_gradient(encoder, x, present, mask, name)


def _check_encoder_output(
    encoder: nn.Module, x: Tensor, present: Tensor, mask: Tensor | None, where: str
) -> EncoderOutput:
    with torch.no_grad():
        out = encoder(x, present, mask)
    _require(isinstance(out, EncoderOutput), f"{where}: must return EncoderOutput; got {type(out).__name__}")
    b, dim = present.shape[0], encoder.output_dim
    tokens, pooled = out.tokens, out.pooled
    _require(
        tokens.dim() == 3 and tokens.shape[0] == b and tokens.shape[2] == dim,
        f"{where}: tokens have shape {tuple(tokens.shape)}; expected [{b}, L, {dim}]",
    )
    _require(
        tuple(pooled.shape) == (b, dim),
        f"{where}: pooled has shape {tuple(pooled.shape)}; expected [{b}, {dim}]",
    )
    _require(bool(torch.isfinite(tokens).all()), f"{where}: tokens hold NaN or inf")
    _require(bool(torch.isfinite(pooled).all()), f"{where}: pooled holds NaN or inf")
    _require(
        bool((pooled[~present] == 0).all()),
        f"{where}: pooled must be exactly zero for absent samples (use zero_absent)",
    )
    if out.token_mask is not None:
        _require(
            out.token_mask.dtype == torch.bool and tuple(out.token_mask.shape) == tuple(tokens.shape[:2]),
            f"{where}: token_mask must be a BoolTensor of shape {tuple(tokens.shape[:2])}; "
            f"got {out.token_mask.dtype} {tuple(out.token_mask.shape)}",
        )
    return out


def _check_encoder_absent_ignored(
    encoder: nn.Module, x: Tensor, present: Tensor, mask: Tensor | None, out: EncoderOutput, name: str
) -> None:
    # Give absent samples another sample's (valid) input: token ids stay in range, shapes stay.
    donor = int(present.nonzero()[0, 0])
    x2 = x.clone()
    x2[~present] = x[donor]
    mask2 = None
    if mask is not None:
        mask2 = mask.clone()
        mask2[~present] = mask[donor]
    with torch.no_grad():
        out2 = encoder(x2, present, mask2)
    same = bool(torch.allclose(out.tokens[present], out2.tokens[present], atol=_ATOL)) and bool(
        torch.allclose(out.pooled[present], out2.pooled[present], atol=_ATOL)
    )
    _require(same, f"{name}: changing an absent sample's input changed the outputs of present samples")
    _require(
        bool((out2.pooled[~present] == 0).all()),
        f"{name}: an absent sample's pooled vector is not zero once its input holds real values",
    )


def _check_encoder_gradient(
    encoder: nn.Module, x: Tensor, present: Tensor, mask: Tensor | None, name: str
) -> None:
    params = [p for p in encoder.parameters() if p.requires_grad]
    if not params:
        return  # a frozen encoder has nothing to train
    encoder.zero_grad(set_to_none=True)
    out = encoder(x, present, mask)
    # a random projection, not a plain sum: through a final LayerNorm a sum has zero gradient
    direction = torch.randn(out.pooled.shape[1], generator=torch.Generator().manual_seed(0))
    (out.pooled[present] * direction).sum().backward()
    reached = any(p.grad is not None and bool((p.grad != 0).any()) for p in params)
    encoder.zero_grad(set_to_none=True)
    _require(reached, f"{name}: no gradient flows from a present sample's pooled vector to any parameter")
