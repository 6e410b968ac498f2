"""Task heads over the encoder: UER-py's two-layer classifier (single- and multi-task).

Attribute names are checkpoint keys: ``embedding.*`` and ``encoder.*`` as in pre-training, then
``output_layer_1``/``output_layer_2`` (run_classifier.py, run_dbqa.py) or ``output_layers_1.{i}``/
``output_layers_2.{i}`` (run_classifier_mt.py), exactly as UER-py names them, so fine-tuned models move
both ways between UER-py and this project.

A head's ``forward(batch)`` returns a :class:`uer.finetune.contract.HeadOutput`: the per-instance loss
([batch_size], or None when the batch carries no labels), ``outputs["logits"]`` and the statistics
``correct``/``count`` the loop sums and reports as accuracy.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from uer.finetune.contract import HeadOutput
# One pooling for the pre-training cls target and the fine-tuning heads. It ignores padding (seg == 0), which
# UER-py does not (it pools over its fixed padding; its "last" is usually a padding position): results then do
# not depend on how a batch is padded, which dynamic padding needs. "first" is identical to UER-py's.
from uer.names import POOLINGS
from uer.targets.cls_target import pool


def classification_loss(logits: torch.Tensor, label: torch.Tensor, soft_tgt: torch.Tensor | None,
                        soft_alpha: float) -> torch.Tensor:
    """Per-instance loss: cross-entropy to the hard label, or with soft targets (distillation)
    ``soft_alpha * MSE(logits, teacher logits) + (1 - soft_alpha) * cross-entropy``.

    The MSE is averaged over the labels of an instance, so its batch mean equals UER-py's ``nn.MSELoss()``.
    """
    logits = logits.float()
    loss = F.cross_entropy(logits, label, reduction="none")
    if soft_tgt is not None:
        mse = (logits - soft_tgt.float()).pow(2).mean(dim=-1)
        loss = soft_alpha * mse + (1.0 - soft_alpha) * loss
    return loss


def classification_output(logits: torch.Tensor, batch: dict[str, torch.Tensor], soft_alpha: float) -> HeadOutput:
    """The contract's output of a classifier: per-instance loss and accuracy statistics when the batch has
    labels, the logits always."""
    if "label" not in batch:
        return HeadOutput(None, {"logits": logits})
    label = batch["label"]
    loss = classification_loss(logits, label, batch.get("soft_tgt"), soft_alpha)
    correct = (logits.argmax(-1) == label).float()
    return HeadOutput(loss, {"logits": logits}, {"correct": correct, "count": torch.ones_like(correct)})


def encode_and_pool(embedding: nn.Module, encoder: nn.Module, src: torch.Tensor, seg: torch.Tensor,
                    pooling: str) -> torch.Tensor:
    """[batch_size x hidden_size]: the encoder's output pooled. With ``first`` pooling a transformer encoder
    computes its last layer for the first position only (exact, and much less work for shallow models)."""
    if pooling == "first" and getattr(encoder, "supports_first_only", False):
        return encoder(embedding(src, seg), seg, first_only=True)[:, 0]
    return pool(encoder(embedding(src, seg), seg), seg, pooling)


class Classifier(nn.Module):
    """Pooled encoder output -> tanh(output_layer_1) -> output_layer_2 -> logits (UER-py's classifier)."""

    def __init__(self, embedding: nn.Module, encoder: nn.Module, hidden_size: int, labels_num: int,
                 pooling: str = "first", soft_alpha: float = 0.5) -> None:
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"unknown pooling {pooling!r}; choose one of {POOLINGS}")
        self.embedding = embedding
        self.encoder = encoder
        self.pooling = pooling
        self.labels_num = labels_num
        self.soft_alpha = soft_alpha
        self.output_layer_1 = nn.Linear(hidden_size, hidden_size)
        self.output_layer_2 = nn.Linear(hidden_size, labels_num)

    def logits(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """[batch_size x labels_num]"""
        pooled = encode_and_pool(self.embedding, self.encoder, batch["src"], batch["seg"], self.pooling)
        return self.output_layer_2(torch.tanh(self.output_layer_1(pooled)))

    def forward(self, batch: dict[str, torch.Tensor]) -> HeadOutput:
        return classification_output(self.logits(batch), batch, self.soft_alpha)


class MultitaskClassifier(nn.Module):
    """Shared embedding and encoder, one two-layer classifier per task; ``batch["task"]`` picks the head.

    Every instance of a batch belongs to the same task (the loop never mixes datasets in a batch).
    """

    def __init__(self, embedding: nn.Module, encoder: nn.Module, hidden_size: int, labels_nums: list[int],
                 pooling: str = "first") -> None:
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"unknown pooling {pooling!r}; choose one of {POOLINGS}")
        self.embedding = embedding
        self.encoder = encoder
        self.pooling = pooling
        self.labels_nums = list(labels_nums)
        self.output_layers_1 = nn.ModuleList([nn.Linear(hidden_size, hidden_size) for _ in labels_nums])
        self.output_layers_2 = nn.ModuleList([nn.Linear(hidden_size, n) for n in labels_nums])

    def forward(self, batch: dict[str, torch.Tensor]) -> HeadOutput:
        task = int(batch["task"][0])
        pooled = encode_and_pool(self.embedding, self.encoder, batch["src"], batch["seg"], self.pooling)
        logits = self.output_layers_2[task](torch.tanh(self.output_layers_1[task](pooled)))
        return classification_output(logits, batch, 0.0)  # no soft targets: the script refuses --soft_targets
