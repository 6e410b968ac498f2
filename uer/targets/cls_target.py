"""Sentence classification as a pre-training objective (a labelled corpus, ``--labels_num`` classes)."""
from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from uer.layers.pooling import pool
from uer.names import POOLINGS
from uer.targets.base import Target, TargetOutput, register

if TYPE_CHECKING:
    from uer.model_config import ModelConfig



@register("cls")
class ClsTarget(Target):
    """pool -> ``linear_1`` -> tanh -> ``linear_2`` (labels_num); keys ``target.cls.linear_{1,2}`` as UER-py.

    Batch key ``cls_labels`` [batch_size]; the config's ``pooling`` (first, mean, max, last) picks the summary.
    """

    label_key = "cls_labels"

    def __init__(self, hidden_size: int, labels_num: int, pooling: str = "first") -> None:
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"unknown pooling {pooling!r} (known: {', '.join(POOLINGS)})")
        self.pooling = pooling
        self.linear_1 = nn.Linear(hidden_size, hidden_size)
        self.linear_2 = nn.Linear(hidden_size, labels_num)

    @classmethod
    def from_config(cls, cfg: "ModelConfig") -> "ClsTarget":
        return cls(cfg.hidden_size, cfg.labels_num, cfg.pooling)

    def count(self, batch: dict) -> int:
        return int(batch["cls_labels"].numel())

    def logits(self, hidden: torch.Tensor, seg: torch.Tensor) -> torch.Tensor:
        return self.linear_2(torch.tanh(self.linear_1(pool(hidden, seg, self.pooling))))

    def forward(self, hidden: torch.Tensor, batch: dict) -> TargetOutput:
        labels = batch["cls_labels"]
        logits = self.logits(hidden, batch["seg"])
        loss_sum = F.cross_entropy(logits.float(), labels, reduction="sum")
        correct = (logits.argmax(-1) == labels).sum()
        return TargetOutput(loss_sum, correct, int(labels.numel()))
