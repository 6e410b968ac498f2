"""Multi-head self-attention with UER-py's parameter names."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class MultiHeadedAttention(nn.Module):
    """Scaled dot-product attention over ``heads_num`` heads.

    ``linear_layers`` holds the query, key and value projections in that order and ``final_linear`` the
    output projection, as UER-py names them (checkpoint compatibility). The score computation goes
    through ``F.scaled_dot_product_attention``, which picks a fused kernel where one exists.
    """

    def __init__(self, hidden_size: int, heads_num: int, head_size: int, dropout: float,
                 has_bias: bool = True) -> None:
        super().__init__()
        self.heads_num = heads_num
        self.head_size = head_size
        inner = heads_num * head_size
        self.linear_layers = nn.ModuleList([nn.Linear(hidden_size, inner, bias=has_bias) for _ in range(3)])
        self.dropout = dropout
        self.final_linear = nn.Linear(inner, hidden_size, bias=has_bias)

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor | None, is_causal: bool = False) -> torch.Tensor:
        """
        Args:
            hidden: [batch_size x seq_length x hidden_size]
            mask: boolean, True where attention is allowed, broadcastable to
                [batch_size x heads_num x seq_length x seq_length]; None attends everywhere.
            is_causal: apply a causal mask (only when ``mask`` is None).
        Returns:
            [batch_size x seq_length x hidden_size]
        """
        batch_size, seq_length, _ = hidden.shape
        query, key, value = (
            linear(hidden).view(batch_size, seq_length, self.heads_num, self.head_size).transpose(1, 2)
            for linear in self.linear_layers
        )
        context = F.scaled_dot_product_attention(
            query, key, value, attn_mask=mask,
            dropout_p=self.dropout if self.training else 0.0,
            is_causal=is_causal and mask is None,
        )
        context = context.transpose(1, 2).reshape(batch_size, seq_length, self.heads_num * self.head_size)
        return self.final_linear(context)
