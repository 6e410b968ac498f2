"""``cnn``: a stack of causal convolutions over positions (UER-py's CNN encoder)."""
from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from uer.encoders.base import Encoder, register
from uer.layers.sequence import causal_conv

if TYPE_CHECKING:
    from uer.model_config import ModelConfig


@register("cnn")
class CnnEncoder(Encoder):
    """``conv_1`` (emb_size -> hidden_size) followed by ``layers_num`` hidden_size convolutions, all causal.

    Keys, shapes and the layer count (conv_1 plus ``layers_num`` more) are UER-py's, and so is the
    absence of a non-linearity between the convolutions: a model trained by UER-py computes the same
    function here. Causal (left-padded) convolutions make it usable with the lm target.
    """

    causal = True

    def __init__(self, emb_size: int, hidden_size: int, layers_num: int, kernel_size: int) -> None:
        super().__init__()
        self.conv_1 = nn.Conv2d(1, hidden_size, (kernel_size, emb_size))
        self.conv = nn.ModuleList([nn.Conv2d(hidden_size, hidden_size, (kernel_size, 1)) for _ in range(layers_num)])

    @classmethod
    def from_config(cls, cfg: "ModelConfig") -> "CnnEncoder":
        return cls(cfg.emb_size, cfg.hidden_size, cfg.layers_num, cfg.kernel_size)

    def forward(self, emb: torch.Tensor, seg: torch.Tensor) -> torch.Tensor:
        hidden = causal_conv(emb.transpose(1, 2), self.conv_1)  # [batch_size x hidden_size x seq_length]
        for conv in self.conv:
            hidden = causal_conv(hidden, conv)
        return hidden.transpose(1, 2)
