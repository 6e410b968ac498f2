"""The BERT-style transformer encoder (post-LayerNorm), with the masks BERT and GPT use."""
from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from uer.encoders.base import Encoder, register
from uer.layers.activations import str2act
from uer.layers.layer_norm import build_layer_norm
from uer.layers.multi_headed_attn import MultiHeadedAttention
from uer.layers.position_ffn import PositionwiseFeedForward
from uer.layers.transformer import TransformerLayer

if TYPE_CHECKING:
    from uer.utils.config import ModelConfig

MASKS = ("fully_visible", "causal")


@register("transformer")
class TransformerEncoder(Encoder):
    """A stack of :class:`TransformerLayer`.

    Keys follow UER-py: ``encoder.transformer.{i}.*`` per layer, or ``encoder.transformer.*`` (one
    layer applied ``layers_num`` times) with parameter sharing; ``encoder.linear`` projects
    emb_size -> hidden_size under factorized embedding parameterization (ALBERT).
    """

    def __init__(self, layers: list[TransformerLayer] | TransformerLayer, layers_num: int, mask: str,
                 linear: nn.Module | None = None) -> None:
        super().__init__()
        if mask not in MASKS:
            raise ValueError(f"unknown mask {mask!r}; expected one of {MASKS}")
        self.mask = mask
        self.layers_num = layers_num
        self.parameter_sharing = isinstance(layers, TransformerLayer)
        self.transformer = layers if self.parameter_sharing else nn.ModuleList(layers)
        if linear is not None:
            self.linear = linear

    @classmethod
    def from_config(cls, cfg: "ModelConfig") -> "TransformerEncoder":
        head_size = cfg.hidden_size // cfg.heads_num

        def make_layer() -> TransformerLayer:
            return TransformerLayer(
                self_attn=MultiHeadedAttention(cfg.hidden_size, cfg.heads_num, head_size, cfg.dropout, cfg.has_bias),
                feed_forward=PositionwiseFeedForward(cfg.hidden_size, cfg.feedforward_size, str2act[cfg.hidden_act],
                                                     cfg.has_bias),
                layer_norm_1=build_layer_norm(cfg.hidden_size, cfg.layernorm, cfg.layernorm_eps),
                layer_norm_2=build_layer_norm(cfg.hidden_size, cfg.layernorm, cfg.layernorm_eps),
                dropout=cfg.dropout,
            )

        layers = make_layer() if cfg.parameter_sharing else [make_layer() for _ in range(cfg.layers_num)]
        linear = nn.Linear(cfg.emb_size, cfg.hidden_size) if cfg.factorized_embedding_parameterization else None
        return cls(layers, cfg.layers_num, cfg.mask, linear)

    def attention_mask(self, seg: torch.Tensor) -> torch.Tensor | None:
        """Boolean [batch_size x 1 x L x L] mask (True = may attend) from padding (seg == 0) and the mask type.

        Returns None when nothing needs masking, which lets attention use its fastest kernel.
        """
        key_visible = seg > 0  # [B x L]
        if self.mask == "fully_visible":
            if bool(key_visible.all()):
                return None
            return key_visible[:, None, None, :]
        seq_length = seg.shape[1]
        causal = torch.ones(seq_length, seq_length, dtype=torch.bool, device=seg.device).tril()
        return causal[None, None, :, :] & key_visible[:, None, None, :]

    def forward(self, emb: torch.Tensor, seg: torch.Tensor) -> torch.Tensor:
        hidden = self.linear(emb) if hasattr(self, "linear") else emb
        mask = self.attention_mask(seg)
        for i in range(self.layers_num):
            layer = self.transformer if self.parameter_sharing else self.transformer[i]
            hidden = layer(hidden, mask)
        return hidden
