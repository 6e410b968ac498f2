"""The prediction server's answers of the tasks other than the classifier: a score per text (run_regression.py)
and a label set per text (run_classifier_multi_label.py) from the model's outputs, and the token-level tasks, a
NER tagger (run_ner.py) and a reading-comprehension model (run_cmrc.py), each answered through its task's own prediction function over the whole gathered batch
(``uer.finetune.tasks.ner.predict_entities``: windows of long texts, tags back to characters;
``uer.finetune.tasks.mrc.predict_answers``: windows of long contexts, the best span back to characters), so the
server answers exactly what the inference scripts write.
"""
from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import nn

import numpy as np

from uer.serving.backends import InputError, TextPairs, TextService
from uer.text.tokenizers import Tokenizer


class ScoreService(TextService):
    """``{"score": float}`` per text (pair): a regression model's output, as inference/run_regression_infer.py
    writes it."""

    kind = "regression"

    def answer(self, rows: np.ndarray | None, request: TextPairs) -> list[dict[str, Any]]:
        return [] if rows is None else [{"score": float(row[0])} for row in rows]


class LabelSetService(TextService):
    """``{"labels": [ids], "probabilities": [...], "logits": [...]}`` per text (pair): every label whose sigmoid
    exceeds the threshold, as inference/run_classifier_multi_label_infer.py writes them."""

    kind = "multi_label"

    def __init__(self, tokenizer: Tokenizer, seq_length: int, runner: Any, max_batch_size: int, labels_num: int,
                 threshold: float, info: dict[str, Any], closing_sep: bool = True) -> None:
        super().__init__(tokenizer, seq_length, runner, max_batch_size,
                         {"labels_num": labels_num, "threshold": threshold, **info}, closing_sep)
        self.threshold = threshold

    def answer(self, rows: np.ndarray | None, request: TextPairs) -> list[dict[str, Any]]:
        from uer.finetune.tasks.multi_label import sigmoid

        if rows is None:
            return []
        probs = sigmoid(rows)
        return [{"labels": np.flatnonzero(p > self.threshold).tolist(), "probabilities": p.tolist(),
                 "logits": row.astype(np.float64).tolist()} for p, row in zip(probs, rows)]


class _TorchOnly:
    backend = "torch"


class TaskService(TextService):
    """One call of the task's prediction function per gathered batch; one answer per text."""

    def __init__(self, model: nn.Module, tokenizer: Tokenizer, seq_length: int, max_batch_size: int,
                 device: torch.device, info: dict[str, Any]) -> None:
        super().__init__(tokenizer, seq_length, _TorchOnly(), max_batch_size, info)
        self.model = model.to(device).eval()
        self.device = device

    def predict(self, texts: list[str], texts_b: list[str] | None) -> list[dict]:  # pragma: no cover - interface
        raise NotImplementedError

    def check(self, request: TextPairs) -> None:
        """Raise InputError for a request this task cannot answer."""

    def run(self, requests: Sequence[TextPairs]) -> list[Any]:
        for request in requests:
            self.check(request)
        texts = [t for r in requests for t in r.texts]
        pairs = any(r.texts_b is not None for r in requests)
        texts_b = [t for r in requests for t in (r.texts_b or [""] * len(r))] if pairs else None
        results = self.predict(texts, texts_b) if texts else []
        answers, start = [], 0
        for request in requests:
            answers.append(results[start:start + len(request)])
            start += len(request)
        return answers


class NerService(TaskService):
    """``{"entities": [{"type", "start", "end", "text"}], "tags": [...]}`` per text (offsets into the text)."""

    kind = "ner"

    def __init__(self, model: nn.Module, tokenizer: Tokenizer, seq_length: int, max_batch_size: int,
                 device: torch.device, id2label: list[str], closing_sep: bool, info: dict[str, Any]) -> None:
        super().__init__(model, tokenizer, seq_length, max_batch_size, device, {"labels": id2label, **info})
        self.id2label = id2label
        self.closing_sep = closing_sep

    def check(self, request: TextPairs) -> None:
        if request.texts_b is not None:
            raise InputError("a NER tagger takes single texts: leave out texts_b")

    def predict(self, texts: list[str], texts_b: list[str] | None) -> list[dict]:
        from uer.finetune.tasks.ner import predict_entities

        return predict_entities(self.model, self.tokenizer, texts, self.id2label, self.seq_length,
                                self.max_batch_size, self.device, self.closing_sep)


class MrcService(TaskService):
    """``{"text", "start", "end", "score"}`` per (question, context): the answer span, character offsets into
    the context (end exclusive). ``texts`` are the questions, ``texts_b`` the contexts."""

    kind = "mrc"

    def __init__(self, model: nn.Module, tokenizer: Tokenizer, seq_length: int, max_batch_size: int,
                 device: torch.device, doc_stride: int, max_answer_length: int, info: dict[str, Any]) -> None:
        super().__init__(model, tokenizer, seq_length, max_batch_size, device,
                         {"doc_stride": doc_stride, "max_answer_length": max_answer_length, **info})
        self.doc_stride = doc_stride
        self.max_answer_length = max_answer_length

    def check(self, request: TextPairs) -> None:
        if request.texts_b is None:
            raise InputError("reading comprehension needs texts (the questions) and texts_b (their contexts)")

    def predict(self, texts: list[str], texts_b: list[str] | None) -> list[dict]:
        from uer.finetune.tasks.mrc import predict_answers

        return predict_answers(self.model, self.tokenizer, texts, texts_b, self.seq_length, self.doc_stride,
                               self.max_answer_length, self.max_batch_size, self.device)


class PromptService(TaskService):
    """``{"label", "probabilities", "logits"}`` per text (labels: the prompt file's keys), as
    inference/run_classifier_prompt_infer.py predicts them."""

    kind = "prompt"

    def __init__(self, model: nn.Module, tokenizer: Tokenizer, seq_length: int, max_batch_size: int,
                 device: torch.device, prompt: Any, info: dict[str, Any]) -> None:
        super().__init__(model, tokenizer, seq_length, max_batch_size, device, info)
        self.prompt = prompt

    def check(self, request: TextPairs) -> None:
        if self.prompt.pairs and request.texts_b is None:
            raise InputError(f"prompt {self.prompt.prompt_id!r} takes pairs: give texts_b")

    def predict(self, texts: list[str], texts_b: list[str] | None) -> list[dict]:
        from uer.finetune.tasks.prompt import predict_prompt

        return predict_prompt(self.model, self.prompt, self.tokenizer, texts, texts_b, self.seq_length,
                              self.max_batch_size, self.device)


class SiameseService(TaskService):
    """``{"label", "probabilities", "logits"}`` per pair (texts, texts_b), as
    inference/run_classifier_siamese_infer.py predicts them."""

    kind = "siamese"

    def check(self, request: TextPairs) -> None:
        if request.texts_b is None:
            raise InputError("a siamese classifier takes pairs: give texts_b")

    def predict(self, texts: list[str], texts_b: list[str] | None) -> list[dict]:
        from uer.finetune.tasks.siamese import predict_pairs

        return predict_pairs(self.model, self.tokenizer, texts, texts_b, self.seq_length, self.max_batch_size,
                             self.device)
