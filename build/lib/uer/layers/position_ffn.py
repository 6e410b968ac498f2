"""The position-wise feed-forward block of a transformer layer."""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn


class PositionwiseFeedForward(nn.Module):
    """linear_1 -> activation -> linear_2 (UER-py parameter names)."""

    def __init__(self, hidden_size: int, feedforward_size: int,
                 act: Callable[[torch.Tensor], torch.Tensor], has_bias: bool = True) -> None:
        super().__init__()
        self.linear_1 = nn.Linear(hidden_size, feedforward_size, bias=has_bias)
        self.act = act
        self.linear_2 = nn.Linear(feedforward_size, hidden_size, bias=has_bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear_2(self.act(self.linear_1(x)))
