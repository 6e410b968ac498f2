"""Recurrent encoders: ``rnn``, ``lstm``, ``gru`` (one torch RNN module, optionally bidirectional)."""
from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from uer.encoders.base import Encoder, register
from uer.layers.sequence import lengths_from_seg
from uer.layers.dropout import Dropout

if TYPE_CHECKING:
    from uer.model_config import ModelConfig


@register("rnn")
class RnnEncoder(Encoder):
    """A multi-layer torch RNN over the embeddings, then dropout.

    Key ``encoder.rnn.*`` (torch's own names: ``weight_ih_l0``, ``weight_hh_l0_reverse``, ...) as in UER-py.
    With ``--bidirectional`` each direction has hidden_size / 2 units and their outputs are concatenated.
    torch's bidirectional RNN feeds layer l+1 with *both* directions of layer l, so a position's
    "forward" half has seen the future after the first layer: use ``bilstm`` (two separate stacks)
    for a bidirectional language model (ELMo), as UER-py's docs explain.

    Padding: a unidirectional RNN is causal, so appended padding cannot reach real positions. The
    bidirectional one runs on a packed sequence, so the backward direction starts at each row's last
    real token rather than at the end of the padding.
    """

    rnn_class: ClassVar[type[nn.RNNBase]] = nn.RNN

    def __init__(self, emb_size: int, hidden_size: int, layers_num: int, dropout: float,
                 bidirectional: bool) -> None:
        super().__init__()
        self.bidirectional = bidirectional
        self.causal = not bidirectional
        self.rnn = self.rnn_class(input_size=emb_size, hidden_size=hidden_size // 2 if bidirectional else hidden_size,
                                  num_layers=layers_num, dropout=dropout if layers_num > 1 else 0.0,
                                  batch_first=True, bidirectional=bidirectional)
        self.drop = Dropout(dropout)

    @classmethod
    def from_config(cls, cfg: "ModelConfig") -> "RnnEncoder":
        return cls(cfg.emb_size, cfg.hidden_size, cfg.layers_num, cfg.dropout, cfg.bidirectional)

    @classmethod
    def config_problems(cls, cfg: "ModelConfig") -> list[str]:
        if cfg.bidirectional and cfg.hidden_size % 2:
            return [f"--bidirectional splits hidden_size {cfg.hidden_size} between two directions: make it even"]
        return []

    def forward(self, emb: torch.Tensor, seg: torch.Tensor) -> torch.Tensor:
        if not self.bidirectional:
            output, _ = self.rnn(emb)
            return self.drop(output)
        lengths = lengths_from_seg(seg).clamp_min(1).cpu()  # pack_padded_sequence wants CPU lengths
        packed = pack_padded_sequence(emb, lengths, batch_first=True, enforce_sorted=False)
        output, _ = self.rnn(packed)
        output, _ = pad_packed_sequence(output, batch_first=True, total_length=emb.shape[1])
        return self.drop(output)


@register("lstm")
class LstmEncoder(RnnEncoder):
    """LSTM (UER-py's ``--encoder lstm``)."""

    rnn_class = nn.LSTM


@register("gru")
class GruEncoder(RnnEncoder):
    """GRU (UER-py's ``--encoder gru``)."""

    rnn_class = nn.GRU
