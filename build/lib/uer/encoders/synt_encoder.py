"""``synt``: a transformer whose attention is a Synthesizer (dense or random; config key ``synt_type``)."""
from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from uer.encoders.attn_encoder import padding_and_causal_mask
from uer.encoders.base import Encoder, register
from uer.layers.activations import str2act
from uer.layers.layer_norm import build_layer_norm
from uer.layers.position_ffn import PositionwiseFeedForward
from uer.layers.synthesizer import SYNTHESIZERS, SynthesizerLayer

if TYPE_CHECKING:
    from uer.model_config import ModelConfig


@register("synt")
class SyntEncoder(Encoder):
    """``layers_num`` :class:`SynthesizerLayer` (keys ``encoder.synthesizer.{i}.*``, as UER-py).

    The synthesised weight matrices are ``max_seq_length`` wide (UER-py sized them by the data's
    seq_length: set max_seq_length to that value to load its checkpoints). Padding keys are masked;
    ``mask: causal`` also masks later positions.
    """

    def __init__(self, layers: list[SynthesizerLayer], mask: str, max_seq_length: int) -> None:
        super().__init__()
        self.causal = mask == "causal"
        self.max_seq_length = max_seq_length
        self.synthesizer = nn.ModuleList(layers)

    @classmethod
    def from_config(cls, cfg: "ModelConfig") -> "SyntEncoder":
        attention = SYNTHESIZERS[cfg.synt_type]
        layers = [SynthesizerLayer(
            att=attention(cfg.hidden_size, cfg.max_seq_length, cfg.dropout),
            feed_forward=PositionwiseFeedForward(cfg.hidden_size, cfg.feedforward_size, str2act[cfg.hidden_act]),
            layer_norm_1=build_layer_norm(cfg.hidden_size, cfg.layernorm, cfg.layernorm_eps),
            layer_norm_2=build_layer_norm(cfg.hidden_size, cfg.layernorm, cfg.layernorm_eps),
            dropout=cfg.dropout) for _ in range(cfg.layers_num)]
        return cls(layers, cfg.mask, cfg.max_seq_length)

    @classmethod
    def config_problems(cls, cfg: "ModelConfig") -> list[str]:
        problems = []
        if cfg.synt_type not in SYNTHESIZERS:
            problems.append(f"unknown synt_type {cfg.synt_type!r} (known: {', '.join(sorted(SYNTHESIZERS))})")
        if cfg.emb_size != cfg.hidden_size:
            problems.append(f"the synt encoder needs emb_size ({cfg.emb_size}) == hidden_size ({cfg.hidden_size})")
        return problems

    def forward(self, emb: torch.Tensor, seg: torch.Tensor) -> torch.Tensor:
        if emb.shape[1] > self.max_seq_length:
            raise ValueError(f"sequence of length {emb.shape[1]} exceeds the synthesizer's max_seq_length "
                             f"{self.max_seq_length}")
        mask = padding_and_causal_mask(seg, self.causal)
        mask = None if mask is None else mask[:, 0]  # [batch_size x L x L]
        hidden = emb
        for layer in self.synthesizer:
            hidden = layer(hidden, mask)
        return hidden
