"""``rcnn``: an LSTM, then causal convolutions over its outputs (recurrent-then-convolutional)."""
from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from uer.encoders.base import Encoder, register
from uer.layers.sequence import causal_conv
from uer.layers.dropout import Dropout

if TYPE_CHECKING:
    from uer.model_config import ModelConfig


@register("rcnn")
class RcnnEncoder(Encoder):
    """``rnn`` (LSTM, emb_size -> hidden_size, ``layers_num`` layers) + dropout, then ``conv_1`` and
    ``layers_num - 1`` more causal convolutions (``conv.{i}``), without non-linearity between them.

    UER-py's names and layer counts. UER-py sized ``conv_1`` by emb_size although it reads the LSTM's
    hidden_size outputs (so it only ran with emb_size == hidden_size); here it is sized by hidden_size,
    which gives the same shapes wherever UER-py's worked. Causal throughout: usable with the lm target.
    """

    causal = True

    def __init__(self, emb_size: int, hidden_size: int, layers_num: int, kernel_size: int, dropout: float) -> None:
        super().__init__()
        self.rnn = nn.LSTM(input_size=emb_size, hidden_size=hidden_size, num_layers=layers_num,
                           dropout=dropout if layers_num > 1 else 0.0, batch_first=True)
        self.drop = Dropout(dropout)
        self.conv_1 = nn.Conv2d(1, hidden_size, (kernel_size, hidden_size))
        self.conv = nn.ModuleList([nn.Conv2d(hidden_size, hidden_size, (kernel_size, 1)) for _ in range(layers_num - 1)])

    @classmethod
    def from_config(cls, cfg: "ModelConfig") -> "RcnnEncoder":
        return cls(cfg.emb_size, cfg.hidden_size, cfg.layers_num, cfg.kernel_size, cfg.dropout)

    def forward(self, emb: torch.Tensor, seg: torch.Tensor) -> torch.Tensor:
        output, _ = self.rnn(emb)
        hidden = causal_conv(self.drop(output).transpose(1, 2), self.conv_1)
        for conv in self.conv:
            hidden = causal_conv(hidden, conv)
        return hidden.transpose(1, 2)
