"""Masked language modelling."""
from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from uer.layers.activations import str2act
from uer.layers.layer_norm import build_layer_norm
from uer.targets.base import Target, TargetOutput, register

if TYPE_CHECKING:
    from uer.model_config import ModelConfig


@register("mlm")
class MlmTarget(Target):
    """Predicts the original ids at masked positions: linear_1 -> act -> layer_norm -> linear_2.

    Only the masked positions are projected onto the vocabulary (the batch gives their flat indices),
    which is most of the speed difference from models that project every position.
    With factorized embeddings linear_1 maps hidden_size -> emb_size so linear_2 can share the
    [vocab_size x emb_size] word embedding matrix (``--tie_weights``; the builder ties them).
    """

    label_key = "mlm_labels"

    def __init__(self, hidden_size: int, out_size: int, vocab_size: int, act: str, layernorm: str,
                 layernorm_eps: float | None) -> None:
        super().__init__()
        self.linear_1 = nn.Linear(hidden_size, out_size)
        self.act = str2act[act]
        self.layer_norm = build_layer_norm(out_size, layernorm, layernorm_eps)
        self.linear_2 = nn.Linear(out_size, vocab_size)

    @classmethod
    def from_config(cls, cfg: "ModelConfig") -> "MlmTarget":
        out_size = cfg.emb_size if cfg.factorized_embedding_parameterization else cfg.hidden_size
        return cls(cfg.hidden_size, out_size, cfg.vocab_size, cfg.hidden_act, cfg.layernorm, cfg.layernorm_eps)

    def count(self, batch: dict) -> int:
        return int(batch["mlm_labels"].numel())

    def read_positions(self, batch: dict, seq_length: int) -> torch.Tensor | None:
        return batch["mlm_positions"]

    def logits(self, hidden: torch.Tensor, positions: torch.Tensor,
               vocab_ids: torch.Tensor | None = None) -> torch.Tensor:
        """[num_masked x vocab_size] logits at flat ``positions`` of [batch_size*seq_length]; with ``vocab_ids``
        only those columns, [num_masked x len(vocab_ids)] (a prompt's answer words: the same values without
        projecting onto the whole vocabulary)."""
        picked = hidden.reshape(-1, hidden.shape[-1]).index_select(0, positions)
        transformed = self.layer_norm(self.act(self.linear_1(picked)))
        if vocab_ids is None:
            return self.linear_2(transformed)
        bias = None if self.linear_2.bias is None else self.linear_2.bias.index_select(0, vocab_ids)
        return F.linear(transformed, self.linear_2.weight.index_select(0, vocab_ids), bias)

    def forward(self, hidden: torch.Tensor, batch: dict) -> TargetOutput:
        labels = batch["mlm_labels"]
        if labels.numel() == 0:
            zero = hidden.sum() * 0.0  # keeps the graph connected so DDP sees every parameter used
            return TargetOutput(zero, torch.zeros((), device=hidden.device), 0)
        # float32 once for the loss and the accuracy: under bf16 autocast argmax over bf16 logits is 2x slower
        # (and max(-1) 2x faster than argmax on CPU: ~20 ms of a tiny step)
        logits = self.logits(hidden, batch["mlm_positions"]).float()
        loss_sum = F.cross_entropy(logits, labels, reduction="sum")
        correct = (logits.detach().max(-1).indices == labels).sum()
        return TargetOutput(loss_sum, correct, int(labels.numel()))
