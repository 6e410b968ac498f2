"""``gatedcnn``: gated convolutional language-model encoder (Dauphin et al. 2017, "Language Modeling with
Gated Convolutional Networks")."""
from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from uer.encoders.base import Encoder, register
from uer.layers.sequence import causal_conv

if TYPE_CHECKING:
    from uer.model_config import ModelConfig


@register("gatedcnn")
class GatedcnnEncoder(Encoder):
    """``layers_num`` gated linear units h = (X*W + b) * sigmoid(X*V + c), all causal convolutions.

    Layer 1 maps emb_size -> hidden_size (``conv_1``/``gate_1``), layers 2..L are hidden_size ->
    hidden_size (``conv.{i}``/``gate.{i}``). Residual blocks: every ``block_size`` layers after the first,
    the block's input is added to its output (the paper's residual blocks; the first layer's output
    opens the first block).

    Parameter names are UER-py's, including its separate bias tensors ``conv_b1``/``gate_b1``/
    ``conv_b.{i}``/``gate_b.{i}`` ([1 x hidden_size x 1 x 1], added on top of the convolution biases),
    so its ``wikizh_gatedcnn_lm_model.bin``-style checkpoints load. Like UER-py we draw them from N(0, 1):
    with BERT-style N(0, 0.02) word embeddings and no layer norm, zero offsets leave every activation
    near zero at the start and the model barely moves for hundreds of steps; the offsets give the
    gated units O(1) outputs from the first step.
    """

    causal = True

    def __init__(self, emb_size: int, hidden_size: int, layers_num: int, kernel_size: int, block_size: int) -> None:
        super().__init__()
        self.block_size = block_size
        self.conv_1 = nn.Conv2d(1, hidden_size, (kernel_size, emb_size))
        self.gate_1 = nn.Conv2d(1, hidden_size, (kernel_size, emb_size))
        self.conv_b1 = nn.Parameter(torch.randn(1, hidden_size, 1, 1))
        self.gate_b1 = nn.Parameter(torch.randn(1, hidden_size, 1, 1))
        self.conv = nn.ModuleList([nn.Conv2d(hidden_size, hidden_size, (kernel_size, 1)) for _ in range(layers_num - 1)])
        self.gate = nn.ModuleList([nn.Conv2d(hidden_size, hidden_size, (kernel_size, 1)) for _ in range(layers_num - 1)])
        self.conv_b = nn.ParameterList([nn.Parameter(torch.randn(1, hidden_size, 1, 1)) for _ in range(layers_num - 1)])
        self.gate_b = nn.ParameterList([nn.Parameter(torch.randn(1, hidden_size, 1, 1)) for _ in range(layers_num - 1)])

    @classmethod
    def from_config(cls, cfg: "ModelConfig") -> "GatedcnnEncoder":
        return cls(cfg.emb_size, cfg.hidden_size, cfg.layers_num, cfg.kernel_size, cfg.block_size)

    @classmethod
    def config_problems(cls, cfg: "ModelConfig") -> list[str]:
        problems = []
        if cfg.layers_num < 1:
            problems.append("gatedcnn needs layers_num >= 1")
        if cfg.block_size < 1:
            problems.append(f"block_size must be >= 1, got {cfg.block_size}")
        return problems

    @staticmethod
    def _glu(x: torch.Tensor, conv: nn.Conv2d, gate: nn.Conv2d, conv_b: torch.Tensor, gate_b: torch.Tensor) -> torch.Tensor:
        # conv_b/gate_b are [1 x hidden x 1 x 1]; drop the last axis to broadcast over [batch x hidden x length].
        return (causal_conv(x, conv) + conv_b[..., 0]) * torch.sigmoid(causal_conv(x, gate) + gate_b[..., 0])

    def forward(self, emb: torch.Tensor, seg: torch.Tensor) -> torch.Tensor:
        hidden = self._glu(emb.transpose(1, 2), self.conv_1, self.gate_1, self.conv_b1, self.gate_b1)
        residual = hidden
        for i in range(len(self.conv)):
            hidden = self._glu(hidden, self.conv[i], self.gate[i], self.conv_b[i], self.gate_b[i])
            if (i + 1) % self.block_size == 0:
                hidden = hidden + residual
                residual = hidden
        return hidden.transpose(1, 2)  # [batch_size x seq_length x hidden_size]
