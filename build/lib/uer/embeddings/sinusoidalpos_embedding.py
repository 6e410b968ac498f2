"""Fixed sinusoidal position encoding ("Attention Is All You Need"), no parameters."""
from __future__ import annotations

import math

import torch

from uer.embeddings.base import EmbeddingPart, register


@register("sinusoidalpos")
class SinusoidalposEmbedding(EmbeddingPart):
    """PE[p, 2i] = sin(p / 10000^(2i/d)), PE[p, 2i+1] = cos(p / 10000^(2i/d)), positions from 0.

    A non-persistent buffer: nothing is saved in checkpoints (UER-py stores nothing for it either),
    and it follows the module to its device. An odd emb_size gets a zero last column.
    """

    def __init__(self, emb_size: int, max_seq_length: int, **_: object) -> None:
        super().__init__()
        self.max_seq_length = max_seq_length
        position = torch.arange(max_seq_length, dtype=torch.float64)[:, None]
        inv_freq = torch.exp(torch.arange(0, emb_size - 1, 2, dtype=torch.float64) * -(math.log(10000.0) / emb_size))
        table = torch.zeros(max_seq_length, emb_size, dtype=torch.float64)
        table[:, 0:2 * len(inv_freq):2] = torch.sin(position * inv_freq)
        table[:, 1:2 * len(inv_freq):2] = torch.cos(position * inv_freq)
        self.register_buffer("table", table.float(), persistent=False)

    def forward(self, src: torch.Tensor, seg: torch.Tensor) -> torch.Tensor:
        seq_length = src.shape[1]
        if seq_length > self.max_seq_length:
            raise ValueError(f"sequence of length {seq_length} exceeds max_seq_length {self.max_seq_length} "
                             "of the sinusoidal position encoding (raise max_seq_length in the config)")
        return self.table[:seq_length].unsqueeze(0)
