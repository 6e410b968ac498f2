"""Layer normalisation, in the two numerical variants users' checkpoints need.

Both normalise in float32 whatever the input (under bfloat16/float16 autocast too) and return float32, as CUDA
autocast does for its own layer norm: the statistics need float32, and the residual stream between layers then
stays float32 while the matrix products run in the low precision.

Parameters are named ``gamma``/``beta`` (not ``weight``/``bias``) because UER-py checkpoints key them
that way; renaming them would break loading of every existing model file.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from uer.names import LAYERNORM_VARIANTS


class LayerNorm(nn.Module):
    """Standard layer norm: biased variance, epsilon inside the square root.

    This is what Google's and HuggingFace's BERT compute, so their weights reproduce exactly.
    """

    def __init__(self, hidden_size: int, eps: float = 1e-12) -> None:
        super().__init__()
        self.eps = eps
        self.gamma = nn.Parameter(torch.ones(hidden_size))
        self.beta = nn.Parameter(torch.zeros(hidden_size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x.float(), (x.shape[-1],), self.gamma, self.beta, self.eps)


class UerLayerNorm(nn.Module):
    """UER-py's own variant: unbiased standard deviation, epsilon added to it (not to the variance).

    Models pre-trained by UER-py were trained with this; their activations differ from the standard
    variant by up to about 1e-2, so select it (config ``"layernorm": "uer"``) to reproduce them.
    """

    def __init__(self, hidden_size: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.eps = eps
        self.gamma = nn.Parameter(torch.ones(hidden_size))
        self.beta = nn.Parameter(torch.zeros(hidden_size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.float()
        mean = x.mean(-1, keepdim=True)
        std = x.std(-1, keepdim=True)  # unbiased (n - 1)
        return self.gamma * (x - mean) / (std + self.eps) + self.beta


def build_layer_norm(hidden_size: int, variant: str = "standard", eps: float | None = None) -> nn.Module:
    """Layer norm of the chosen variant; ``eps`` defaults to the variant's usual value."""
    if variant == "standard":
        return LayerNorm(hidden_size, 1e-12 if eps is None else eps)
    if variant == "uer":
        return UerLayerNorm(hidden_size, 1e-6 if eps is None else eps)
    raise ValueError(f"unknown layer norm variant {variant!r} (expected one of {', '.join(LAYERNORM_VARIANTS)})")
