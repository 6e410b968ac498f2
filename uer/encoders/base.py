"""Base class and registry of encoders."""
from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from uer.registry import make_register

if TYPE_CHECKING:
    from uer.utils.config import ModelConfig

str2encoder: dict[str, type] = {}


class Encoder(nn.Module):
    """Maps embeddings to contextual hidden states.

    Subclasses implement ``from_config`` (the builder's single entry point) and ``forward``.
    """

    @classmethod
    def from_config(cls, cfg: "ModelConfig") -> "Encoder":  # pragma: no cover - interface
        raise NotImplementedError

    def forward(self, emb: torch.Tensor, seg: torch.Tensor) -> torch.Tensor:  # pragma: no cover - interface
        """
        Args:
            emb: [batch_size x seq_length x emb_size]
            seg: [batch_size x seq_length] (0 marks padding)
        Returns:
            [batch_size x seq_length x hidden_size]
        """
        raise NotImplementedError


register = make_register(str2encoder, Encoder)
