"""Model = embedding + encoder + target (UER-py's five-part model without a decoder)."""
from __future__ import annotations

import torch
from torch import nn

from uer.embeddings.embedding import Embedding
from uer.encoders.base import Encoder
from uer.targets.base import TargetOutput, Targets


class Model(nn.Module):
    """Attribute names ``embedding``, ``encoder``, ``target`` are the first part of every checkpoint key."""

    def __init__(self, embedding: Embedding, encoder: Encoder, target: Targets | None,
                 task_embedding: nn.Embedding | None = None) -> None:
        super().__init__()
        self.embedding = embedding
        self.encoder = encoder
        self.target = target
        if task_embedding is not None:  # ERNIE 2.0: a learned vector per pre-training task (--task_embedding)
            self.task_embedding = task_embedding

    def encode(self, src: torch.Tensor, seg: torch.Tensor, task: torch.Tensor | None = None,
               positions: torch.Tensor | None = None) -> torch.Tensor:
        """[batch_size x seq_length] ids and segments -> [batch_size x seq_length x hidden_size]. With a task
        embedding, ``task`` ([batch_size] task ids, default 0) adds its vector to every position's embedding.
        ``positions`` (flat, sorted, distinct): only they are computed by the last layer, the rest are zeros
        (an encoder that cannot do this computes all)."""
        emb = self.embedding(src, seg)
        if hasattr(self, "task_embedding"):
            if task is None:
                task = torch.zeros(src.shape[0], dtype=torch.long, device=src.device)
            emb = emb + self.task_embedding(task)[:, None, :]
        if positions is not None and getattr(self.encoder, "supports_first_only", False):
            return self.encoder(emb, seg, positions=positions)
        return self.encoder(emb, seg)

    def forward(self, batch: dict) -> dict[str, TargetOutput]:
        # The objectives read few positions (MLM: the masked ones, sentence prediction: [CLS]): the last layer
        # computes only those (exact; the share of the work saved is ~85% of one layer for BERT's 15% masking).
        positions = self.target.read_positions(batch, batch["src"].shape[1])
        hidden = self.encode(batch["src"], batch["seg"], batch.get("task_ids"), positions)
        return self.target(hidden, batch)
