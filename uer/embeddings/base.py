"""Base class and registry of embedding parts."""
from __future__ import annotations

import torch
from torch import nn

from uer.names import EMBEDDINGS
from uer.registry import make_register

str2embedding: dict[str, type] = {}


class EmbeddingPart(nn.Module):
    """One summand of the input embedding (word, position, segment ...)."""

    def forward(self, src: torch.Tensor, seg: torch.Tensor) -> torch.Tensor:  # pragma: no cover - interface
        """
        Args:
            src: [batch_size x seq_length] token ids.
            seg: [batch_size x seq_length] segment ids (0 padding, 1 first, 2 second).
        Returns:
            [batch_size x seq_length x emb_size]
        """
        raise NotImplementedError


register = make_register(str2embedding, EmbeddingPart, EMBEDDINGS)
