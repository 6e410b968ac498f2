"""Sentence-pair prediction: next-sentence (BERT) or sentence-order (ALBERT), by the data it gets."""
from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from uer.targets.base import Target, TargetOutput, register

if TYPE_CHECKING:
    from uer.model_config import ModelConfig


@register("sp")
class SpTarget(Target):
    """Classifies the pair from the first position: linear_1 -> tanh (BERT's pooler) -> linear_2.

    Label 1 means "not the true next segment" (random B for NSP, swapped order for SOP), which is
    HuggingFace's seq_relationship convention (index 0 = is next).
    """

    label_key = "sp_labels"

    def __init__(self, hidden_size: int, labels_num: int = 2) -> None:
        super().__init__()
        self.linear_1 = nn.Linear(hidden_size, hidden_size)
        self.linear_2 = nn.Linear(hidden_size, labels_num)

    @classmethod
    def from_config(cls, cfg: "ModelConfig") -> "SpTarget":
        return cls(cfg.hidden_size, 2)

    def count(self, batch: dict) -> int:
        return int(batch["sp_labels"].numel())

    def read_positions(self, batch: dict, seq_length: int) -> torch.Tensor | None:
        labels = batch["sp_labels"]
        return torch.arange(len(labels), device=labels.device) * seq_length  # each instance's first position

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.linear_2(torch.tanh(self.linear_1(hidden[:, 0])))

    def forward(self, hidden: torch.Tensor, batch: dict) -> TargetOutput:
        labels = batch["sp_labels"]
        logits = self.logits(hidden)
        loss_sum = F.cross_entropy(logits.float(), labels, reduction="sum")
        correct = (logits.argmax(-1) == labels).sum()
        return TargetOutput(loss_sum, correct, int(labels.numel()))
