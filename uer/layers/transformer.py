"""BERT's post-LayerNorm transformer layer."""
from __future__ import annotations

import torch
from torch import nn


class TransformerLayer(nn.Module):
    """Self-attention and feed-forward, each followed by dropout, a residual and a layer norm.

    Sub-modules are passed in (style: the builder decides, the layer only wires them), under the names
    UER-py checkpoints use: ``self_attn``, ``layer_norm_1``, ``feed_forward``, ``layer_norm_2``.
    """

    def __init__(self, self_attn: nn.Module, feed_forward: nn.Module, layer_norm_1: nn.Module,
                 layer_norm_2: nn.Module, dropout: float) -> None:
        super().__init__()
        self.self_attn = self_attn
        self.dropout_1 = nn.Dropout(dropout)
        self.layer_norm_1 = layer_norm_1
        self.feed_forward = feed_forward
        self.dropout_2 = nn.Dropout(dropout)
        self.layer_norm_2 = layer_norm_2

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor | None, is_causal: bool = False) -> torch.Tensor:
        """
        Args:
            hidden: [batch_size x seq_length x hidden_size]
            mask: boolean attention mask (see MultiHeadedAttention), or None.
        Returns:
            [batch_size x seq_length x hidden_size]
        """
        inter = self.layer_norm_1(hidden + self.dropout_1(self.self_attn(hidden, mask, is_causal)))
        return self.layer_norm_2(inter + self.dropout_2(self.feed_forward(inter)))
