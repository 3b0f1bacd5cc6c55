"""Prediction heads: fused features [B, D] → task outputs [B, K] (logits or regression values)."""

from __future__ import annotations

from torch import Tensor, nn

from plait.errors import ConfigError


class MLPHead(nn.Module):
    """`MLPHead(input_dim=64, hidden=128, output_dim=3)`: Linear → GELU → Dropout → Linear."""

    def __init__(self, input_dim: int, hidden: int, output_dim: int, dropout: float = 0.1) -> None:
        super().__init__()
        for name, value in (("input_dim", input_dim), ("hidden", hidden), ("output_dim", output_dim)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"MLPHead: {name} must be a positive integer; got {value!r}")
        if not 0.0 <= dropout < 1.0:
            raise ConfigError(f"MLPHead: dropout must be in [0, 1); got {dropout!r}")
        self.input_dim = input_dim
        self.output_dim = output_dim
        self.net = nn.Sequential(
            nn.Linear(input_dim, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, output_dim)
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)  # (B, input_dim) -> (B, output_dim)
