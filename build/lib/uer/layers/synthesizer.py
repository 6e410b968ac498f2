"""Synthesizer attention (Tay et al. 2020, "Synthesizer: Rethinking Self-Attention in Transformer Models").

Attention weights are *synthesised* instead of computed from query-key dot products: Dense predicts a
row of weights from each token alone, Random learns one weight matrix shared by all inputs. UER-py's
parameter names (``att.F_linear_1``, ``att.F_linear_2``, ``att.R``, ``att.G_linear``, ``att.final_linear``).
"""
from __future__ import annotations

import torch
from torch import nn
from uer.layers.dropout import Dropout


def _masked_softmax(scores: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    if mask is not None:
        # The dtype's lowest value, not -inf: a row with every key masked gives uniform weights, not NaN.
        scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
    return torch.softmax(scores, dim=-1)


class DenseSynthesizerAttention(nn.Module):
    """weights_i = softmax(F_linear_2(relu(F_linear_1(x_i)))) over positions; output = final_linear(weights @ G_linear(x)).

    The weight rows have ``max_seq_length`` entries; a batch of length L uses the first L.
    """

    def __init__(self, hidden_size: int, max_seq_length: int, dropout: float) -> None:
        super().__init__()
        self.F_linear_1 = nn.Linear(hidden_size, max_seq_length)
        self.F_linear_2 = nn.Linear(max_seq_length, max_seq_length)
        self.G_linear = nn.Linear(hidden_size, hidden_size)
        self.final_linear = nn.Linear(hidden_size, hidden_size)
        self.dropout = Dropout(dropout)

    def scores(self, hidden: torch.Tensor) -> torch.Tensor:
        seq_length = hidden.shape[1]
        inter = torch.relu(self.F_linear_1(hidden))
        # Only the first L output columns are needed: slice the weight instead of the result.
        return nn.functional.linear(inter, self.F_linear_2.weight[:seq_length], self.F_linear_2.bias[:seq_length])

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """
        Args:
            hidden: [batch_size x seq_length x hidden_size]
            mask: boolean [batch_size x seq_length x seq_length] (True = may attend), or None.
        """
        probs = self.dropout(_masked_softmax(self.scores(hidden), mask))
        return self.final_linear(torch.matmul(probs, self.G_linear(hidden)))


class RandomSynthesizerAttention(DenseSynthesizerAttention):
    """weights = softmax(R[:L, :L]) with R a learned [max_seq_length x max_seq_length] matrix, the same for every input."""

    def __init__(self, hidden_size: int, max_seq_length: int, dropout: float) -> None:
        nn.Module.__init__(self)
        self.R = nn.Parameter(torch.randn(max_seq_length, max_seq_length))
        self.G_linear = nn.Linear(hidden_size, hidden_size)
        self.final_linear = nn.Linear(hidden_size, hidden_size)
        self.dropout = Dropout(dropout)

    def scores(self, hidden: torch.Tensor) -> torch.Tensor:
        seq_length = hidden.shape[1]
        return self.R[:seq_length, :seq_length].unsqueeze(0).expand(hidden.shape[0], -1, -1)


class SynthesizerLayer(nn.Module):
    """Post-LayerNorm transformer layer with synthesizer attention ``att`` (UER-py's names)."""

    def __init__(self, att: nn.Module, feed_forward: nn.Module, layer_norm_1: nn.Module, layer_norm_2: nn.Module,
                 dropout: float) -> None:
        super().__init__()
        self.att = att
        self.dropout_1 = Dropout(dropout)
        self.layer_norm_1 = layer_norm_1
        self.feed_forward = feed_forward
        self.dropout_2 = Dropout(dropout)
        self.layer_norm_2 = layer_norm_2

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        inter = self.layer_norm_1(hidden + self.dropout_1(self.att(hidden, mask)))
        return self.layer_norm_2(inter + self.dropout_2(self.feed_forward(inter)))


SYNTHESIZERS = {"dense": DenseSynthesizerAttention, "random": RandomSynthesizerAttention}
