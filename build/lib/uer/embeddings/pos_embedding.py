"""Learned absolute position embedding."""
from __future__ import annotations

import torch
from torch import nn

from uer.embeddings.base import EmbeddingPart, register


@register("pos")
class PosEmbedding(EmbeddingPart):
    """One learned vector per position up to ``max_seq_length``."""

    def __init__(self, emb_size: int, max_seq_length: int, **_: object) -> None:
        super().__init__()
        self.max_seq_length = max_seq_length
        self.embedding = nn.Embedding(max_seq_length, emb_size)

    def forward(self, src: torch.Tensor, seg: torch.Tensor) -> torch.Tensor:
        seq_length = src.shape[1]
        if seq_length > self.max_seq_length:
            raise ValueError(f"sequence of length {seq_length} exceeds max_seq_length {self.max_seq_length} "
                             "of the position embedding (lower --seq_length or use a config with a larger one)")
        # [1 x seq_length x emb_size], broadcast over the batch by the sum in Embedding.
        return self.embedding.weight[:seq_length].unsqueeze(0)
