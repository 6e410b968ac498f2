"""ERNIE 2.0's remaining objectives (datasets: uer.data.instances_ernie).

Word-aware, a prediction per token (``linear_1`` -> tanh -> ``linear_2``, cross-entropy over the positions whose
label is not -1):

* ``cap``: was the word capitalised (2 classes, batch key ``cap_labels``);
* ``tdr``: does the token occur in another segment of its document (2 classes, ``tdr_labels``).

Semantic-aware, a prediction per instance from [CLS] through a pooler (as ``sp``, ``sd``, ``sr``):

* ``dr``: the discourse relation between the two sentences (one class per ``RELATIONS``, ``dr_labels``);
* ``ir``: the query-title relevance grade (3 classes, ``ir_labels``);
* ``dlm``: is the response the real one (0) or a replaced one (1) (2 classes, ``dlm_labels``).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from uer.targets.base import Target, TargetOutput, register
from uer.targets.sentence_targets import _PooledClassification

if TYPE_CHECKING:
    from uer.model_config import ModelConfig


class _TokenClassification(Target):
    """A class per labelled position: linear_1 -> tanh -> linear_2 on the hidden state of each position whose
    label (``batch[label_key]``, [batch_size x seq_length]) is not -1."""

    labels_num = 2

    def __init__(self, hidden_size: int) -> None:
        super().__init__()
        self.linear_1 = nn.Linear(hidden_size, hidden_size)
        self.linear_2 = nn.Linear(hidden_size, self.labels_num)

    @classmethod
    def from_config(cls, cfg: "ModelConfig") -> "_TokenClassification":
        return cls(cfg.hidden_size)

    def count(self, batch: dict) -> int:
        return int((batch[self.label_key] >= 0).sum()) if self.label_key in batch else 0

    def forward(self, hidden: torch.Tensor, batch: dict) -> TargetOutput:
        labels = batch[self.label_key]
        keep = labels >= 0
        if not bool(keep.any()):
            zero = hidden.sum() * 0.0  # keeps the graph connected so DDP sees every parameter used
            return TargetOutput(zero, torch.zeros((), device=hidden.device), 0)
        picked, wanted = hidden[keep], labels[keep]
        logits = self.linear_2(torch.tanh(self.linear_1(picked)))
        loss_sum = F.cross_entropy(logits.float(), wanted, reduction="sum")
        return TargetOutput(loss_sum, (logits.argmax(-1) == wanted).sum(), int(wanted.numel()))


@register("cap")
class CapTarget(_TokenClassification):
    label_key = "cap_labels"


@register("tdr")
class TdrTarget(_TokenClassification):
    label_key = "tdr_labels"


@register("dr")
class DrTarget(_PooledClassification):
    label_key = "dr_labels"

    @classmethod
    def from_config(cls, cfg: "ModelConfig") -> "DrTarget":
        from uer.data.instances_ernie import RELATIONS

        return cls(cfg.hidden_size, len(RELATIONS))


@register("ir")
class IrTarget(_PooledClassification):
    label_key = "ir_labels"

    @classmethod
    def from_config(cls, cfg: "ModelConfig") -> "IrTarget":
        from uer.data.instances_ernie import IR_GRADES

        return cls(cfg.hidden_size, IR_GRADES)


@register("dlm")
class DlmTarget(_PooledClassification):
    label_key = "dlm_labels"

    @classmethod
    def from_config(cls, cfg: "ModelConfig") -> "DlmTarget":
        return cls(cfg.hidden_size, 2)
