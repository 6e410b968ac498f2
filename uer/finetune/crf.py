"""Linear-chain conditional random field over per-token emission scores (run_ner.py --crf_target).

Written here rather than taken from pytorch-crf: that package has had no release since 2020, and the
~100 lines below add what it lacks (a BIO-constrained Viterbi, float32 inside autocast). The parameter
names and meanings are pytorch-crf's, which UER-py's --crf_target model uses (``crf.start_transitions``
[T], ``crf.end_transitions`` [T], ``crf.transitions`` [T x T] with ``transitions[i, j]`` the score of tag
``j`` following tag ``i``), so NER models with a CRF move between UER-py and this project.

Sequences are left-aligned: ``mask`` [B x M] is True on a prefix of each row (the tagged tokens); every row
has at least one. The score of a tag path y over emissions e is
``start[y_1] + sum_t e_t[y_t] + sum_t transitions[y_{t-1}, y_t] + end[y_n]``.
"""
from __future__ import annotations

from typing import Mapping

import torch
from torch import nn

# Added to the score of a forbidden transition: exp(-1e4) underflows to 0 in float32, so no forbidden path
# survives a Viterbi max while the arithmetic stays finite (inf - inf would give NaN gradients).
FORBIDDEN = -1e4


def bio_allowed(labels: Mapping[str, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """(allowed start tags [T], allowed transitions [T x T]) of the BIO scheme over ``labels`` (tag -> id):
    ``I-X`` may only follow ``B-X`` or ``I-X`` and may not start a sequence; everything else is free."""
    names = {i: tag for tag, i in labels.items()}
    size = len(names)
    start = torch.ones(size, dtype=torch.bool)
    trans = torch.ones(size, size, dtype=torch.bool)
    for j in range(size):
        tag = names[j]
        if tag.startswith("I-"):
            start[j] = False
            kind = tag[2:]
            for i in range(size):
                trans[i, j] = names[i] in (f"B-{kind}", f"I-{kind}")
    return start, trans


class CRF(nn.Module):
    """Log-likelihood of tag paths and Viterbi decoding; ``allowed`` (from :func:`bio_allowed`) restricts
    decoding to paths without forbidden transitions (training keeps the plain likelihood, so a gold path
    that breaks the scheme still trains)."""

    def __init__(self, tags_num: int, allowed: tuple[torch.Tensor, torch.Tensor] | None = None) -> None:
        super().__init__()
        self.tags_num = tags_num
        # pytorch-crf's initialisation: U(-0.1, 0.1)
        self.start_transitions = nn.Parameter(torch.empty(tags_num).uniform_(-0.1, 0.1))
        self.end_transitions = nn.Parameter(torch.empty(tags_num).uniform_(-0.1, 0.1))
        self.transitions = nn.Parameter(torch.empty(tags_num, tags_num).uniform_(-0.1, 0.1))
        start_pen = torch.zeros(tags_num)
        trans_pen = torch.zeros(tags_num, tags_num)
        if allowed is not None:
            start_pen[~allowed[0]] = FORBIDDEN
            trans_pen[~allowed[1]] = FORBIDDEN
        # Not saved with the model: the constraint is a decoding option, not a weight.
        self.register_buffer("start_penalty", start_pen, persistent=False)
        self.register_buffer("transition_penalty", trans_pen, persistent=False)

    def _check(self, emissions: torch.Tensor, mask: torch.Tensor) -> None:
        if emissions.dim() != 3 or emissions.shape[-1] != self.tags_num:
            raise ValueError(f"emissions must be [B x M x {self.tags_num}], got {tuple(emissions.shape)}")
        if mask.shape != emissions.shape[:2]:
            raise ValueError(f"mask {tuple(mask.shape)} does not match emissions {tuple(emissions.shape[:2])}")
        if mask.shape[1] and not bool(mask[:, 0].all()):
            raise ValueError("every sequence needs at least one tagged position, starting at position 0")

    def log_likelihood(self, emissions: torch.Tensor, tags: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """log p(tags | emissions) per sequence, [B] (float32). ``tags`` [B x M]: anything at masked positions."""
        self._check(emissions, mask)
        emissions = emissions.float()
        mask = mask.bool()
        tags = torch.where(mask, tags, torch.zeros_like(tags))
        return self._path_score(emissions, tags, mask) - self._log_partition(emissions, mask)

    def _path_score(self, emissions: torch.Tensor, tags: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        m = mask.float()
        emit = emissions.gather(-1, tags.unsqueeze(-1)).squeeze(-1)  # [B x M]
        score = self.start_transitions[tags[:, 0]] + (emit * m).sum(1)
        if tags.shape[1] > 1:
            trans = self.transitions[tags[:, :-1], tags[:, 1:]]  # [B x M-1]
            score = score + (trans * m[:, 1:]).sum(1)
        last = tags.gather(1, (mask.sum(1) - 1).unsqueeze(1)).squeeze(1)
        return score + self.end_transitions[last]

    def _log_partition(self, emissions: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        alpha = self.start_transitions + emissions[:, 0]  # [B x T]
        for t in range(1, emissions.shape[1]):
            step = torch.logsumexp(alpha.unsqueeze(2) + self.transitions + emissions[:, t].unsqueeze(1), dim=1)
            alpha = torch.where(mask[:, t:t + 1], step, alpha)
        return torch.logsumexp(alpha + self.end_transitions, dim=1)

    def decode(self, emissions: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The best tag path of each sequence, [B x M] int64 (0 at masked positions)."""
        self._check(emissions, mask)
        return viterbi(emissions.float(), mask.bool(), self.start_transitions + self.start_penalty,
                       self.transitions + self.transition_penalty, self.end_transitions)


def viterbi(emissions: torch.Tensor, mask: torch.Tensor, start: torch.Tensor, transitions: torch.Tensor,
            end: torch.Tensor) -> torch.Tensor:
    """Highest-scoring paths [B x M] under the given start/transition/end scores (also used without a CRF,
    with zero scores plus the BIO penalties, to decode constrained softmax outputs)."""
    batch, length, _ = emissions.shape
    if length == 0:
        return torch.zeros(batch, 0, dtype=torch.long, device=emissions.device)
    score = start + emissions[:, 0]
    backpointers = []
    for t in range(1, length):
        best, idx = (score.unsqueeze(2) + transitions).max(dim=1)  # over the previous tag
        step = best + emissions[:, t]
        keep = mask[:, t:t + 1]
        score = torch.where(keep, step, score)
        # A masked step points every tag at itself, so backtracking passes through it unchanged.
        backpointers.append(torch.where(keep, idx, torch.arange(idx.shape[1], device=idx.device).expand_as(idx)))
    score = score + end
    tag = score.argmax(dim=1)
    path = [tag]
    for idx in reversed(backpointers):
        tag = idx.gather(1, tag.unsqueeze(1)).squeeze(1)
        path.append(tag)
    path.reverse()
    out = torch.stack(path, dim=1)
    return torch.where(mask, out, torch.zeros_like(out))
