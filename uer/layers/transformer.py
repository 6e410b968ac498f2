"""Transformer layers: BERT's post-LayerNorm layer and the pre-LayerNorm layer of GPT-2."""
from __future__ import annotations

import torch
from torch import nn

from uer.layers.dropout import Dropout
from uer.layers.multi_headed_attn import KVCache, query_rows


class TransformerLayer(nn.Module):
    """Self-attention and feed-forward, each followed by dropout, a residual and a layer norm.

    Sub-modules are passed in (style: the builder decides, the layer only wires them), under the names
    UER-py checkpoints use: ``self_attn``, ``layer_norm_1``, ``feed_forward``, ``layer_norm_2``.
    """

    def __init__(self, self_attn: nn.Module, feed_forward: nn.Module, layer_norm_1: nn.Module,
                 layer_norm_2: nn.Module, dropout: float) -> None:
        super().__init__()
        self.self_attn = self_attn
        self.dropout_1 = Dropout(dropout)
        self.layer_norm_1 = layer_norm_1
        self.feed_forward = feed_forward
        self.dropout_2 = Dropout(dropout)
        self.layer_norm_2 = layer_norm_2

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor | None, is_causal: bool = False,
                cache: KVCache | None = None, queries: slice | torch.Tensor | None = None) -> torch.Tensor:
        """
        Args:
            hidden: [batch_size x seq_length x hidden_size]
            mask: additive attention mask (see MultiHeadedAttention), or None.
            cache: keys/values of earlier positions (incremental decoding), or None.
            queries: compute the outputs of these positions only (they attend to all): ``FIRST_POSITION``,
                an index [batch_size x Q], or None for all (see uer.layers.multi_headed_attn.query_rows).
        Returns:
            [batch_size x seq_length x hidden_size], seq_length the number of query positions
        """
        residual = query_rows(hidden, queries)
        attended = self.self_attn(hidden, mask, is_causal, cache, queries)
        inter = self.layer_norm_1(residual + self.dropout_1(attended))
        return self.layer_norm_2(inter + self.dropout_2(self.feed_forward(inter)))


class PreNormTransformerLayer(TransformerLayer):
    """GPT-2's ordering (``layernorm_positioning: pre``): the layer norms come before attention and
    feed-forward, the residual path stays unnormalised; the encoder adds a final layer norm.

    Same sub-modules and checkpoint names as :class:`TransformerLayer`, so only the wiring differs.
    """

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor | None, is_causal: bool = False,
                cache: KVCache | None = None, queries: slice | torch.Tensor | None = None) -> torch.Tensor:
        residual = query_rows(hidden, queries)
        inter = residual + self.dropout_1(self.self_attn(self.layer_norm_1(hidden), mask, is_causal, cache, queries))
        return inter + self.dropout_2(self.feed_forward(self.layer_norm_2(inter)))
