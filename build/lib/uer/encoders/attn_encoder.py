"""``attn``: a stack of multi-head self-attention layers without feed-forward blocks (UER-py's AttnEncoder)."""
from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from uer.encoders.base import Encoder, register
from uer.layers.multi_headed_attn import MultiHeadedAttention

if TYPE_CHECKING:
    from uer.model_config import ModelConfig


def padding_and_causal_mask(seg: torch.Tensor, causal: bool) -> torch.Tensor | None:
    """Boolean [batch_size x 1 x L x L] (True = may attend): keys that are not padding, and not later
    positions when ``causal``; None when nothing is masked (lets attention use its fastest kernel)."""
    key_visible = seg > 0
    if not causal:
        return None if bool(key_visible.all()) else key_visible[:, None, None, :]
    seq_length = seg.shape[1]
    lower = torch.ones(seq_length, seq_length, dtype=torch.bool, device=seg.device).tril()
    return lower[None, None] & key_visible[:, None, None, :]


@register("attn")
class AttnEncoder(Encoder):
    """``layers_num`` attention layers applied one after the other (keys ``encoder.self_attn.{i}.*``).

    As in UER-py there is no feed-forward block, residual connection or layer norm between them, so
    its checkpoints compute the same function here. ``mask: causal`` (``--mask causal``) makes it a
    left-to-right encoder for the lm target.
    """

    def __init__(self, hidden_size: int, heads_num: int, layers_num: int, dropout: float, has_bias: bool,
                 mask: str) -> None:
        super().__init__()
        self.causal = mask == "causal"
        self.self_attn = nn.ModuleList([MultiHeadedAttention(hidden_size, heads_num, hidden_size // heads_num, dropout,
                                                             has_bias) for _ in range(layers_num)])

    @classmethod
    def from_config(cls, cfg: "ModelConfig") -> "AttnEncoder":
        return cls(cfg.hidden_size, cfg.heads_num, cfg.layers_num, cfg.dropout, cfg.has_bias, cfg.mask)

    @classmethod
    def config_problems(cls, cfg: "ModelConfig") -> list[str]:
        problems = []
        if cfg.heads_num <= 0 or cfg.hidden_size % cfg.heads_num:
            problems.append(f"hidden_size {cfg.hidden_size} is not divisible by heads_num {cfg.heads_num}")
        if cfg.emb_size != cfg.hidden_size:
            problems.append(f"the attn encoder needs emb_size ({cfg.emb_size}) == hidden_size ({cfg.hidden_size})")
        return problems

    def forward(self, emb: torch.Tensor, seg: torch.Tensor) -> torch.Tensor:
        allowed = padding_and_causal_mask(seg, self.causal)
        # MultiHeadedAttention takes an additive mask; -10000 as the transformer encoder (finite in float16).
        mask = None if allowed is None else (~allowed).to(emb.dtype) * -10000.0
        hidden = emb
        for attn in self.self_attn:
            hidden = attn(hidden, mask)
        return hidden
