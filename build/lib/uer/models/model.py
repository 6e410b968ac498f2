"""Model = embedding + encoder + target (UER-py's five-part model without a decoder)."""
from __future__ import annotations

import torch
from torch import nn

from uer.embeddings.embedding import Embedding
from uer.encoders.base import Encoder
from uer.targets.base import TargetOutput, Targets


class Model(nn.Module):
    """Attribute names ``embedding``, ``encoder``, ``target`` are the first part of every checkpoint key."""

    def __init__(self, embedding: Embedding, encoder: Encoder, target: Targets | None) -> None:
        super().__init__()
        self.embedding = embedding
        self.encoder = encoder
        self.target = target

    def encode(self, src: torch.Tensor, seg: torch.Tensor) -> torch.Tensor:
        """[batch_size x seq_length] ids and segments -> [batch_size x seq_length x hidden_size]."""
        return self.encoder(self.embedding(src, seg), seg)

    def forward(self, batch: dict) -> dict[str, TargetOutput]:
        hidden = self.encode(batch["src"], batch["seg"])
        return self.target(hidden, batch)
