"""Helpers for right-padded batches (padding is appended; ``seg == 0`` marks it)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def lengths_from_seg(seg: torch.Tensor) -> torch.Tensor:
    """[batch_size] number of real (non-padding) positions of each row."""
    return (seg > 0).sum(dim=1)


def reverse_padded(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Reverse each row's first ``lengths[b]`` positions and leave its padding in place.

    Flipping the whole padded tensor (as UER-py does) would put the padding first, in front of the
    real tokens of a backward RNN, so outputs would change with the amount of padding; this does not.
    The function is its own inverse.

    Args:
        x: [batch_size x seq_length x ...]
        lengths: [batch_size]
    """
    seq_length = x.shape[1]
    positions = torch.arange(seq_length, device=x.device)[None, :]
    lengths = lengths.to(x.device)[:, None]
    index = torch.where(positions < lengths, lengths - 1 - positions, positions)  # [batch_size x seq_length]
    index = index.view(*index.shape, *([1] * (x.dim() - 2))).expand_as(x)
    return x.gather(1, index)


def causal_conv(x: torch.Tensor, conv: nn.Conv2d) -> torch.Tensor:
    """UER-py's convolution over positions, which sees only the current and earlier positions.

    UER-py stores these convolutions as ``nn.Conv2d`` over a [1 x seq_length x emb_size] "image"
    (kernel ``(kernel_size, emb_size)``) or over [hidden_size x seq_length x 1] (kernel ``(kernel_size, 1)``);
    we keep those modules, so keys and shapes match its checkpoints, and run them as the equivalent,
    faster 1-d convolution. ``kernel_size - 1`` zeros go in front, so output t depends on inputs
    t-k+1..t: appended padding never reaches a real position and a language model never sees the
    next token.

    Args:
        x: [batch_size x (in_channels * kernel_width) x seq_length]
        conv: Conv2d with weight [out_channels x in_channels x kernel_size x kernel_width]
    Returns:
        [batch_size x out_channels x seq_length]
    """
    out_channels, in_channels, kernel_size, width = conv.weight.shape
    weight = conv.weight.permute(0, 1, 3, 2).reshape(out_channels, in_channels * width, kernel_size)
    return F.conv1d(F.pad(x, (kernel_size - 1, 0)), weight, conv.bias)
