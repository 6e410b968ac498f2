"""Language modelling: predict the next token."""
from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from uer.targets.base import Target, TargetOutput, register

if TYPE_CHECKING:
    from uer.model_config import ModelConfig


def predict(output_layer: nn.Linear, hidden: torch.Tensor, positions: torch.Tensor,
            labels: torch.Tensor) -> TargetOutput:
    """Cross-entropy (summed) of ``output_layer`` at flat ``positions`` of ``hidden`` against ``labels``.

    Only the positions with a label are projected onto the vocabulary (the largest matrix product of
    the model), so padding costs nothing here.
    """
    if labels.numel() == 0:
        zero = hidden.sum() * 0.0  # keeps the graph connected so DDP sees every parameter used
        return TargetOutput(zero, torch.zeros((), device=hidden.device), 0)
    picked = hidden.reshape(-1, hidden.shape[-1]).index_select(0, positions)
    logits = output_layer(picked)
    loss_sum = F.cross_entropy(logits.float(), labels, reduction="sum")
    correct = (logits.argmax(-1) == labels).sum()
    return TargetOutput(loss_sum, correct, int(labels.numel()))


@register("lm")
class LmTarget(Target):
    """``output_layer`` (hidden_size -> vocab_size; key ``target.lm.output_layer`` as in UER-py) at every
    position that has a next token.

    Batch keys (uer.data.pretrain_loader): ``lm_positions`` [M] flat indices into the [batch_size*seq_length]
    positions, ``lm_labels`` [M] the token that follows each. ``has_lmtarget_bias`` adds a bias (UER-py's
    flag, off by default); ``--tie_weights`` shares the word embedding (when emb_size == hidden_size).
    """

    label_key = "lm_labels"

    def __init__(self, hidden_size: int, vocab_size: int, has_bias: bool = False) -> None:
        super().__init__()
        self.output_layer = nn.Linear(hidden_size, vocab_size, bias=has_bias)

    @classmethod
    def from_config(cls, cfg: "ModelConfig") -> "LmTarget":
        return cls(cfg.hidden_size, cfg.vocab_size, cfg.has_lmtarget_bias)

    def count(self, batch: dict) -> int:
        return int(batch["lm_labels"].numel())

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """[... x vocab_size] next-token logits of every position of ``hidden`` [... x hidden_size]."""
        return self.output_layer(hidden)

    def forward(self, hidden: torch.Tensor, batch: dict) -> TargetOutput:
        return predict(self.output_layer, hidden, batch["lm_positions"], batch["lm_labels"])
