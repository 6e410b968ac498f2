"""Segment embedding with UER-py's three rows."""
from __future__ import annotations

import torch
from torch import nn

from uer.embeddings.base import EmbeddingPart, register


@register("seg")
class SegEmbedding(EmbeddingPart):
    """Row 0 is padding, 1 the first segment, 2 the second (HF's token_type 0/1 are our rows 1/2)."""

    def __init__(self, emb_size: int, **_: object) -> None:
        super().__init__()
        self.embedding = nn.Embedding(3, emb_size)

    def forward(self, src: torch.Tensor, seg: torch.Tensor) -> torch.Tensor:
        return self.embedding(seg)
