"""Bidirectional language modelling (ELMo): a forward and a backward LM over the two halves of the encoder output."""
from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from uer.targets.base import Target, TargetOutput, register
from uer.targets.lm_target import predict

if TYPE_CHECKING:
    from uer.model_config import ModelConfig


@register("bilm")
class BilmTarget(Target):
    """The first hidden_size/2 features predict the next token, the last hidden_size/2 the previous one.

    Meant for ``bilstm``/``bigru``/``birnn``, whose halves are a left-to-right and a right-to-left
    stack that never see the token they predict. The two directions share ``output_layer``
    ([vocab_size x hidden_size/2], key ``target.bilm.output_layer``, as UER-py and ELMo tie the softmax).
    The reported loss/accuracy average both directions.

    Batch keys: ``lm_positions``/``lm_labels`` (next token) and ``lm_backward_positions``/
    ``lm_backward_labels`` (previous token), flat indices as for the lm target.
    """

    label_key = "lm_labels"

    def __init__(self, hidden_size: int, vocab_size: int, has_bias: bool = False) -> None:
        super().__init__()
        self.half = hidden_size // 2
        self.output_layer = nn.Linear(self.half, vocab_size, bias=has_bias)

    @classmethod
    def from_config(cls, cfg: "ModelConfig") -> "BilmTarget":
        if cfg.hidden_size % 2:
            raise ValueError(f"the bilm target splits hidden_size {cfg.hidden_size} into two directions: make it even")
        return cls(cfg.hidden_size, cfg.vocab_size, cfg.has_lmtarget_bias)

    def count(self, batch: dict) -> int:
        return int(batch["lm_labels"].numel() + batch["lm_backward_labels"].numel())

    def forward(self, hidden: torch.Tensor, batch: dict) -> TargetOutput:
        forward = predict(self.output_layer, hidden[..., :self.half], batch["lm_positions"], batch["lm_labels"])
        backward = predict(self.output_layer, hidden[..., self.half:], batch["lm_backward_positions"],
                           batch["lm_backward_labels"])
        return TargetOutput(forward.loss_sum + backward.loss_sum, forward.correct + backward.correct,
                            forward.count + backward.count)
