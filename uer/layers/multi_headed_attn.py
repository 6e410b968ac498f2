"""Multi-head self-attention with UER-py's parameter names."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from uer.layers.dropout import dropout


class KVCache:
    """Keys and values of the positions seen so far by one attention application (incremental decoding).

    Generation feeds only the new positions through the encoder; each attention call appends their keys
    and values here and attends over everything stored, so a new token costs one step, not a re-run.
    """

    def __init__(self) -> None:
        self.key: torch.Tensor | None = None  # [batch_size x heads_num x cached_length x head_size]
        self.value: torch.Tensor | None = None

    def __len__(self) -> int:
        return 0 if self.key is None else self.key.shape[2]

    def extend(self, key: torch.Tensor, value: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Append the new positions' keys/values; returns all keys/values stored."""
        if self.key is not None:
            key = torch.cat([self.key, key], dim=2)
            value = torch.cat([self.value, value], dim=2)
        self.key, self.value = key, value
        return key, value


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

    def project_qkv(self, hidden: torch.Tensor, first_only: bool = False
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Queries, keys and values, each [batch_size x heads_num x positions x head_size] (queries: one
        position when ``first_only``).

        With many positions, one matrix product with the weight matrices stacked (they stay separate
        parameters, as checkpoints name them): ~20% faster on CPU than three products, one kernel launch on
        GPU. With few (incremental decoding feeds one position at a time), copying the stacked weights would
        cost about what the products do, so each projection runs on its own.
        """
        batch_size, seq_length, _ = hidden.shape

        def heads(x: torch.Tensor) -> torch.Tensor:  # [B x L x heads*size] -> [B x heads x L x size]
            return x.view(batch_size, x.shape[1], self.heads_num, self.head_size).transpose(1, 2)

        projections = self.linear_layers[1:] if first_only else self.linear_layers
        # Exporting (ONNX with dynamic axes) takes the stacked product: a branch on the shape cannot be exported.
        if batch_size * seq_length < 64 and not torch.compiler.is_exporting():
            projected = [heads(linear(hidden)) for linear in projections]
        else:
            weight = torch.cat([linear.weight for linear in projections])
            bias = None if projections[0].bias is None else torch.cat([linear.bias for linear in projections])
            projected = list(F.linear(hidden, weight, bias).view(batch_size, seq_length, len(projections),
                                                                  self.heads_num, self.head_size)
                             .permute(2, 0, 3, 1, 4).unbind(0))
        if first_only:
            projected.insert(0, heads(self.linear_layers[0](hidden[:, :1])))
        query, key, value = projected
        return query, key, value

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor | None, is_causal: bool = False,
                cache: KVCache | None = None, first_only: bool = False) -> torch.Tensor:
        """
        Args:
            hidden: [batch_size x seq_length x hidden_size]
            mask: additive float mask (0 where attention is allowed, a large negative number where
                not), broadcastable to [batch_size x heads_num x seq_length x keys_length]; None
                attends everywhere.
            is_causal: apply a causal mask (only when ``mask`` is None).
            cache: keys/values of earlier positions; the new ones are appended to it (keys_length =
                cached + seq_length; the caller gives the matching mask).
            first_only: only the first position queries (all positions are still attended to); for a
                last layer whose output is read at the first position only. Needs a mask whose query
                dimension broadcasts (padding only), no causal mask and no cache.
        Returns:
            [batch_size x seq_length x hidden_size], seq_length 1 when ``first_only``
        """
        if first_only and (is_causal or cache is not None or (mask is not None and mask.shape[-2] != 1)):
            raise ValueError("first_only attention needs a padding-only mask, no causal mask and no cache")
        query, key, value = self.project_qkv(hidden, first_only)
        batch_size, seq_length = hidden.shape[0], query.shape[2]
        if cache is not None:
            key, value = cache.extend(key, value)
        dropout_p = self.dropout if self.training else 0.0
        if hidden.is_cuda or (dropout_p == 0.0 and not torch.is_grad_enabled()):
            context = F.scaled_dot_product_attention(query, key, value, attn_mask=mask, dropout_p=dropout_p,
                                                     is_causal=is_causal and mask is None)
        else:
            # On CPU, SDPA's training path falls back to a math kernel that is ~10x slower with attention
            # dropout and ~2x slower with a padding mask than these three ops (torch 2.13, batch 32 x 128,
            # 4 heads); without gradients its fused kernel is ~15% faster than them, hence the condition.
            scores = torch.matmul(query, key.transpose(-1, -2)) * (1.0 / math.sqrt(self.head_size))
            if mask is not None:
                scores = scores + mask
            elif is_causal:
                keys_length = key.shape[2]
                visible = torch.ones(seq_length, keys_length, dtype=torch.bool, device=hidden.device)
                scores = scores.masked_fill(~visible.tril(keys_length - seq_length), float("-inf"))
            probs = F.softmax(scores, dim=-1, dtype=torch.float32).to(value.dtype)
            probs = dropout(probs, dropout_p)
            context = torch.matmul(probs, value)
        context = context.transpose(1, 2).reshape(batch_size, seq_length, self.heads_num * self.head_size)
        return self.final_linear(context)
