"""The embedding layer: sum of parts, then layer norm and dropout."""
from __future__ import annotations

import torch
from torch import nn

from uer.embeddings.base import EmbeddingPart
from uer.layers.dropout import Dropout


class Embedding(nn.Module):
    """Sums its parts (registered as sub-modules under their config names, e.g. ``embedding.word``),
    then applies ``layer_norm`` (optional) and dropout.
    """

    def __init__(self, parts: dict[str, EmbeddingPart], layer_norm: nn.Module | None, dropout: float) -> None:
        super().__init__()
        self.names = list(parts)
        for name, part in parts.items():
            self.add_module(name, part)
        self.layer_norm = layer_norm
        self.dropout = Dropout(dropout)

    def forward(self, src: torch.Tensor, seg: torch.Tensor) -> torch.Tensor:
        """
        Args:
            src: [batch_size x seq_length]
            seg: [batch_size x seq_length]
        Returns:
            [batch_size x seq_length x emb_size]
        """
        emb = None
        for name in self.names:
            part = getattr(self, name)(src, seg)
            emb = part if emb is None else emb + part
        if self.layer_norm is not None:
            emb = self.layer_norm(emb)
        return self.dropout(emb)
