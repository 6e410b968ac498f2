"""ERNIE 2.0's structure-aware objectives: sentence distance (``sd``) and sentence reordering (``sr``).

Both classify the instance from its first position through a pooler, like ``sp``: ``linear_1`` -> tanh ->
``linear_2`` (keys ``target.sd.linear_{1,2}``, ``target.sr.linear_{1,2}``, in UER-py's style).

* ``sd``: 3 classes for a sentence pair (uer.data.pretrain_instances.SdInstances): 0 = B follows A, 1 = B is
  elsewhere in A's document, 2 = B is from another document. Batch key ``sd_labels``.
* ``sr``: one class per order of 1 .. ``sr_max_segments`` shuffled segments (SrInstances, ``sr_label``).
  Batch key ``sr_labels``.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from uer.targets.base import Target, TargetOutput, register

if TYPE_CHECKING:
    from uer.model_config import ModelConfig


class _PooledClassification(Target):
    """[CLS] -> linear_1 -> tanh -> linear_2; cross-entropy against ``batch[label_key]``."""

    label_key = ""

    def __init__(self, hidden_size: int, labels_num: int) -> None:
        super().__init__()
        self.labels_num = labels_num
        self.linear_1 = nn.Linear(hidden_size, hidden_size)
        self.linear_2 = nn.Linear(hidden_size, labels_num)

    def count(self, batch: dict) -> int:
        return int(batch[self.label_key].numel()) if self.label_key in batch else 0

    def forward(self, hidden: torch.Tensor, batch: dict) -> TargetOutput:
        labels = batch[self.label_key]
        logits = self.linear_2(torch.tanh(self.linear_1(hidden[:, 0])))
        loss_sum = F.cross_entropy(logits.float(), labels, reduction="sum")
        return TargetOutput(loss_sum, (logits.argmax(-1) == labels).sum(), int(labels.numel()))


@register("sd")
class SdTarget(_PooledClassification):
    label_key = "sd_labels"

    @classmethod
    def from_config(cls, cfg: "ModelConfig") -> "SdTarget":
        return cls(cfg.hidden_size, 3)


@register("sr")
class SrTarget(_PooledClassification):
    label_key = "sr_labels"

    @classmethod
    def from_config(cls, cfg: "ModelConfig") -> "SrTarget":
        from uer.data.instances_pairs import sr_labels_num

        return cls(cfg.hidden_size, sr_labels_num(cfg.sr_max_segments))
