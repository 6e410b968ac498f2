"""Bidirectional recurrent encoders made of two separate stacks: ``birnn``, ``bilstm``, ``bigru`` (ELMo)."""
from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import torch
from torch import nn

from uer.encoders.base import Encoder, register
from uer.layers.sequence import lengths_from_seg, reverse_padded
from uer.layers.dropout import Dropout

if TYPE_CHECKING:
    from uer.model_config import ModelConfig


@register("birnn")
class BirnnEncoder(Encoder):
    """A forward stack and a backward stack that never exchange information; outputs concatenated.

    Output ``[..., :hidden_size/2]`` at position t has seen tokens 0..t only and ``[..., hidden_size/2:]``
    tokens t..end only, which is what the bilm target (ELMo) needs; ``lstm --bidirectional`` mixes the
    directions between layers and cannot be used for that. Keys ``encoder.rnn_forward.*`` and
    ``encoder.rnn_backward.*`` as in UER-py.

    The backward stack reads each row reversed within its own length (padding stays at the end), so
    appended padding never changes an output at a real position.
    """

    rnn_class: ClassVar[type[nn.RNNBase]] = nn.RNN

    def __init__(self, emb_size: int, hidden_size: int, layers_num: int, dropout: float) -> None:
        super().__init__()

        def stack() -> nn.RNNBase:
            return self.rnn_class(input_size=emb_size, hidden_size=hidden_size // 2, num_layers=layers_num,
                                  dropout=dropout if layers_num > 1 else 0.0, batch_first=True)

        self.rnn_forward = stack()
        self.rnn_backward = stack()
        self.drop = Dropout(dropout)

    @classmethod
    def from_config(cls, cfg: "ModelConfig") -> "BirnnEncoder":
        return cls(cfg.emb_size, cfg.hidden_size, cfg.layers_num, cfg.dropout)

    @classmethod
    def config_problems(cls, cfg: "ModelConfig") -> list[str]:
        if cfg.hidden_size % 2:
            return [f"{cfg.encoder} splits hidden_size {cfg.hidden_size} between two directions: make it even"]
        return []

    def forward(self, emb: torch.Tensor, seg: torch.Tensor) -> torch.Tensor:
        lengths = lengths_from_seg(seg)
        forward, _ = self.rnn_forward(emb)
        backward, _ = self.rnn_backward(reverse_padded(emb, lengths))
        backward = reverse_padded(backward, lengths)
        return torch.cat([self.drop(forward), self.drop(backward)], dim=2)


@register("bilstm")
class BilstmEncoder(BirnnEncoder):
    """Two separate LSTM stacks (ELMo's encoder)."""

    rnn_class = nn.LSTM


@register("bigru")
class BigruEncoder(BirnnEncoder):
    """Two separate GRU stacks."""

    rnn_class = nn.GRU
