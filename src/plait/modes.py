"""`evaluating(module)`: a module in eval mode for a block, put back in the mode it was in after."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from torch import nn


@contextmanager
def evaluating(module: nn.Module) -> Iterator[None]:
    """Dropout off and normalisation in inference mode inside the block; the module's training
    mode is restored on the way out, whatever happened inside."""
    was_training = module.training
    module.eval()
    try:
        yield
    finally:
        module.train(was_training)
