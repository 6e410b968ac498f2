"""Pooling: the encoder's per-token output -> one vector per sequence (pre-training cls target, fine-tuning heads,
TextEncoder, servers).

Pooling ignores padding (seg == 0), which UER-py does not (it pools over its fixed padding; its "last" is usually
a padding position): a sequence's vector then does not depend on the batch it lands in, which dynamic padding
needs. "first" is identical to UER-py's.
"""
from __future__ import annotations

import torch
from torch import nn

from uer.names import POOLINGS


def pool(hidden: torch.Tensor, seg: torch.Tensor, pooling: str) -> torch.Tensor:
    """[batch_size x hidden_size] summary of each row's real (seg > 0) positions.

    UER-py pools over the padded width; pooling only real positions keeps a sentence's vector
    independent of the batch it lands in (the same for "first").
    """
    real = (seg > 0).unsqueeze(-1)
    if pooling == "first":
        return hidden[:, 0]
    if pooling == "mean":
        return (hidden * real).sum(1) / real.sum(1).clamp_min(1)
    if pooling == "max":
        return hidden.masked_fill(~real, torch.finfo(hidden.dtype).min).max(1).values
    if pooling == "last":
        last = (seg > 0).sum(1).clamp_min(1) - 1
        return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]
    raise ValueError(f"unknown pooling {pooling!r} (known: {', '.join(POOLINGS)})")


def encode_and_pool(embedding: nn.Module, encoder: nn.Module, src: torch.Tensor, seg: torch.Tensor,
                    pooling: str) -> torch.Tensor:
    """[batch_size x hidden_size]: the encoder's output pooled. With ``first`` pooling a transformer encoder
    computes its last layer for the first position only (exact, and much less work for shallow models)."""
    if pooling == "first" and getattr(encoder, "supports_first_only", False):
        return encoder(embedding(src, seg), seg, first_only=True)[:, 0]
    return pool(encoder(embedding(src, seg), seg), seg, pooling)
