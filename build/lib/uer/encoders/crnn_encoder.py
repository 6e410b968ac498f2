"""``crnn``: causal convolutions, then an LSTM over their outputs (convolutional-then-recurrent)."""
from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from uer.encoders.base import Encoder, register
from uer.layers.sequence import causal_conv
from uer.layers.dropout import Dropout

if TYPE_CHECKING:
    from uer.model_config import ModelConfig


@register("crnn")
class CrnnEncoder(Encoder):
    """``conv_1`` (emb_size -> hidden_size) and ``layers_num - 1`` more causal convolutions (``conv.{i}``),
    then ``rnn`` (LSTM, hidden_size -> hidden_size, ``layers_num`` layers) and dropout.

    UER-py's names and layer counts. UER-py sized the LSTM's input by emb_size although it reads the
    convolutions' hidden_size outputs (it only ran with emb_size == hidden_size); here the input is
    hidden_size, which gives the same shapes wherever UER-py's worked. Causal throughout.
    """

    causal = True

    def __init__(self, emb_size: int, hidden_size: int, layers_num: int, kernel_size: int, dropout: float) -> None:
        super().__init__()
        self.conv_1 = nn.Conv2d(1, hidden_size, (kernel_size, emb_size))
        self.conv = nn.ModuleList([nn.Conv2d(hidden_size, hidden_size, (kernel_size, 1)) for _ in range(layers_num - 1)])
        self.rnn = nn.LSTM(input_size=hidden_size, hidden_size=hidden_size, num_layers=layers_num,
                           dropout=dropout if layers_num > 1 else 0.0, batch_first=True)
        self.drop = Dropout(dropout)

    @classmethod
    def from_config(cls, cfg: "ModelConfig") -> "CrnnEncoder":
        return cls(cfg.emb_size, cfg.hidden_size, cfg.layers_num, cfg.kernel_size, cfg.dropout)

    def forward(self, emb: torch.Tensor, seg: torch.Tensor) -> torch.Tensor:
        hidden = causal_conv(emb.transpose(1, 2), self.conv_1)
        for conv in self.conv:
            hidden = causal_conv(hidden, conv)
        output, _ = self.rnn(hidden.transpose(1, 2))
        return self.drop(output)
