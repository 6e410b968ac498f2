"""Token embedding."""
from __future__ import annotations

import torch
from torch import nn

from uer.embeddings.base import EmbeddingPart, register


@register("word")
class WordEmbedding(EmbeddingPart):
    """Looks up token ids; key ``embedding.word.embedding.weight`` as in UER-py."""

    def __init__(self, vocab_size: int, emb_size: int, **_: object) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, emb_size)

    def forward(self, src: torch.Tensor, seg: torch.Tensor) -> torch.Tensor:
        return self.embedding(src)
