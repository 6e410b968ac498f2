"""Activation functions by config name (``hidden_act``)."""
from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F


def gelu_fast(x: torch.Tensor) -> torch.Tensor:
    """The tanh approximation of GELU (GPT-2's)."""
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))


str2act: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "gelu": F.gelu,  # exact erf form, as BERT
    "gelu_fast": gelu_fast,
    "relu": F.relu,
    "silu": F.silu,
    "tanh": torch.tanh,
    "linear": lambda x: x,
}
