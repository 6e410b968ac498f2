"""Backends (torch or onnxruntime) and the services that turn requests into model batches and answers.

A runner maps padded ids and segments (int64 [B x L], segment 0 = padding) to the model's outputs (float32
numpy arrays, first dimension B). A service tokenizes the texts of the requests of one batch, runs them in
length-sorted chunks of at most ``max_batch_size`` with little padding (:func:`length_chunks`), and splits the
rows back per request. The micro-batcher calls :meth:`TextService.run` on its worker thread only.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from uer.data.finetune_data import Instances, collate, encode_pair
from uer.errors import MissingFileError, UsageError
from uer.finetune.tasks.classifier import softmax
from uer.serving import require
from uer.text.tokenizers import Tokenizer

logger = logging.getLogger("uer.serving")

BACKENDS = ("torch", "onnxruntime")
ONNX_INPUTS = ("src", "seg")
# A gathered batch is cut into chunks of similar lengths whose padding stays below this fraction of their real
# tokens. On a CPU a transformer's forward pass costs about its (padded) tokens, so one batch of 32 sentences of
# 9-64 tokens padded to 64 took as long as the 32 sentences one by one (BERT-tiny and -base, 1 thread), while
# length-sorted chunks took half as long.
PADDING_SLACK = 0.25
# Chunks are padded to a multiple of this (at most 7 padding positions a row): with fewer distinct shapes the
# kernels' per-shape caches stop growing. 360 batches of random sizes, tiny: RSS 284 -> 321 MB and still growing
# with exact widths, 282 -> 302 with multiples of 4, 281 -> 291 (flat after 240 batches) with multiples of 8.
PAD_MULTIPLE = 8


def length_chunks(lengths: np.ndarray, max_batch_size: int, slack: float = PADDING_SLACK) -> list[np.ndarray]:
    """Indices sorted by length (longest first), cut into chunks of at most ``max_batch_size`` whose padded size
    (longest x count) stays within ``1 + slack`` times their real tokens."""
    order = np.argsort(-lengths, kind="stable")
    chunks, start, total = [], 0, 0
    for position, index in enumerate(order):
        length, count = int(lengths[index]), position - start
        if count and (count == max_batch_size or lengths[order[start]] * (count + 1) > (1 + slack) * (total + length)):
            chunks.append(order[start:position])
            start, total = position, 0
        total += length
    if len(order):
        chunks.append(order[start:])
    return chunks


class InputError(ValueError):
    """A request the server cannot answer as sent (HTTP 422); never the server's fault."""

    client_error = True


@dataclass(frozen=True)
class TextPairs:
    """The texts of one request (``texts_b``: second texts of pairs, or None)."""

    texts: list[str]
    texts_b: list[str] | None = None

    def __len__(self) -> int:
        return len(self.texts)


class TorchRunner:
    """A torch module ``(src, seg) -> tensor or tuple of tensors`` on one device, without gradients."""

    backend = "torch"

    def __init__(self, module: nn.Module, device: torch.device) -> None:
        self.module = module.to(device).eval()
        self.device = device

    def __call__(self, src: np.ndarray, seg: np.ndarray) -> list[np.ndarray]:
        with torch.inference_mode():
            out = self.module(torch.from_numpy(src).to(self.device), torch.from_numpy(seg).to(self.device))
        outs = out if isinstance(out, (tuple, list)) else (out,)
        return [o.float().cpu().numpy() for o in outs]


class OnnxRunner:
    """An ONNX file written by scripts/export_onnx.py, run by onnxruntime (inputs ``src``, ``seg``)."""

    backend = "onnxruntime"

    def __init__(self, path: str | os.PathLike, threads: int = 0, device: torch.device | None = None) -> None:
        ort = require("onnxruntime", purpose="--backend onnxruntime")
        if not os.path.isfile(path):
            raise MissingFileError(f"ONNX model not found: {path} (write it with scripts/export_onnx.py)")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads  # 0 = onnxruntime's default (one per core)
        options.inter_op_num_threads = 1
        providers = ["CPUExecutionProvider"]
        if device is not None and device.type == "cuda":
            if "CUDAExecutionProvider" not in ort.get_available_providers():
                raise UsageError("--backend onnxruntime on a GPU needs the onnxruntime-gpu package "
                                   "(this onnxruntime has only the CPU)")
            providers = [("CUDAExecutionProvider", {"device_id": device.index or 0})] + providers
        try:
            self.session = ort.InferenceSession(str(path), options, providers=providers)
        except Exception as err:  # onnxruntime raises its own exception types
            raise UsageError(f"{path}: not a loadable ONNX model ({str(err).splitlines()[0]})") from None
        names = tuple(i.name for i in self.session.get_inputs())
        if names != ONNX_INPUTS:
            raise UsageError(f"{path}: inputs {names}, expected {ONNX_INPUTS} (export with scripts/export_onnx.py)")
        self.path = str(path)
        self.metadata: dict[str, str] = dict(self.session.get_modelmeta().custom_metadata_map)

    def check(self, kind: str, vocab_size: int, seq_length: int) -> dict[str, str]:
        """The metadata export_onnx.py wrote, checked against what the server was given."""
        meta, path = self.metadata, self.path
        if meta.get("uer_kind") != kind:
            found = meta.get("uer_kind")
            raise UsageError(f"{path}: {'an export of kind ' + repr(found) if found else 'not written by export_onnx.py'}"
                             f"; this server needs --kind {kind}")
        if int(meta["vocab_size"]) != vocab_size:
            raise UsageError(f"{path}: exported with a vocabulary of {meta['vocab_size']} tokens; the given "
                             f"vocabulary has {vocab_size}")
        if int(meta["max_seq_length"]) and seq_length > int(meta["max_seq_length"]):
            raise UsageError(f"--seq_length {seq_length} exceeds the exported model's max_seq_length "
                             f"{meta['max_seq_length']}")
        return meta

    def __call__(self, src: np.ndarray, seg: np.ndarray) -> list[np.ndarray]:
        return self.session.run(None, {"src": src, "seg": seg})


class TextService:
    """Tokenize, batch, run and split: what a server does with the requests of one batch.

    Subclasses say what a route is called and how a request's output rows become its answer.
    """

    kind = "model"
    route = "/predict"

    def __init__(self, tokenizer: Tokenizer, seq_length: int, runner: Any, max_batch_size: int,
                 info: dict[str, Any], closing_sep: bool = True) -> None:
        self.tokenizer = tokenizer
        self.closing_sep = closing_sep  # single texts as [CLS] text [SEP] (False: --no_closing_sep, [CLS] text)
        self.seq_length = seq_length
        self.runner = runner
        self.max_batch_size = max_batch_size
        self.info = {"kind": self.kind, "backend": runner.backend, "max_length": seq_length, **info}

    def validate(self, request: TextPairs) -> None:
        """Raise :class:`InputError` for a request this service cannot answer (checked before it is queued)."""

    def encode(self, requests: Sequence[TextPairs]) -> Instances:
        """Every text of ``requests`` as the fine-tuning scripts (and TextEncoder.encode) encode it."""
        sequences = []
        for request in requests:
            texts_b = request.texts_b if request.texts_b is not None else [None] * len(request.texts)
            for a, b in zip(request.texts, texts_b):
                sequences.append(encode_pair(self.tokenizer, a, b, self.seq_length, self.closing_sep))
        return Instances.from_sequences(sequences)

    def outputs(self, data: Instances) -> np.ndarray:
        """The model's (first) output for every instance, [N x ...] in order."""
        result: np.ndarray | None = None
        pad_id = self.tokenizer.vocab.pad_id
        for indices in length_chunks(data.lengths, self.max_batch_size):
            longest = int(data.lengths[indices].max())
            width = min(-(-longest // PAD_MULTIPLE) * PAD_MULTIPLE, max(longest, self.seq_length))
            batch = collate(data, indices, pad_id, pad_to=width)
            out = self.runner(batch["src"].numpy(), batch["seg"].numpy())[0]
            if result is None:
                result = np.zeros((len(data),) + out.shape[1:], dtype=np.float32)
            result[indices] = out
        return result

    def run(self, requests: Sequence[TextPairs]) -> list[Any]:
        """One answer per request (called by the micro-batcher on its worker thread)."""
        data = self.encode(requests)
        rows = self.outputs(data) if len(data) else None
        answers, start = [], 0
        for request in requests:
            part = rows[start:start + len(request)] if rows is not None else None
            answers.append(self.answer(part, request))
            start += len(request)
        return answers

    def answer(self, rows: np.ndarray | None, request: TextPairs) -> Any:  # pragma: no cover - interface
        raise NotImplementedError


class EncoderService(TextService):
    """Vectors [n x hidden_size] per request."""

    kind = "encoder"
    route = "/encode"

    def __init__(self, tokenizer: Tokenizer, seq_length: int, runner: Any, max_batch_size: int, dim: int,
                 info: dict[str, Any]) -> None:
        super().__init__(tokenizer, seq_length, runner, max_batch_size, {"dim": dim, **info})
        self.dim = dim

    def answer(self, rows: np.ndarray | None, request: TextPairs) -> np.ndarray:
        return rows if rows is not None else np.zeros((0, self.dim), dtype=np.float32)


class ClassifierService(TextService):
    """Labels, probabilities and logits per request, as inference/run_classifier_infer.py computes them."""

    kind = "classifier"
    route = "/predict"

    def __init__(self, tokenizer: Tokenizer, seq_length: int, runner: Any, max_batch_size: int, labels_num: int,
                 info: dict[str, Any], closing_sep: bool = True) -> None:
        super().__init__(tokenizer, seq_length, runner, max_batch_size, {"labels_num": labels_num, **info},
                         closing_sep)
        self.labels_num = labels_num

    def answer(self, rows: np.ndarray | None, request: TextPairs) -> list[dict[str, Any]]:
        if rows is None:
            return []
        probs = softmax(rows)
        return [{"label": int(label), "probabilities": p.tolist(), "logits": logit.tolist()}
                for label, p, logit in zip(rows.argmax(-1), probs, rows.astype(np.float64))]
