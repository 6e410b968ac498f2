"""What a server runs, as torch modules of ``(src, seg) -> outputs``: the same module serves requests on the
torch backend and is what scripts/export_onnx.py exports for the onnxruntime backend.

- :class:`EncoderVectors`: one vector per text from a pre-trained model (``--encode_layer``): the last layer
  pooled over the real tokens (``first`` = [CLS], ``mean``, ``max``, ``last``; exactly
  :meth:`uer.api.TextEncoder.embed`'s vectors) or ``pooler``: the [CLS] position through the pre-training
  head's pooler, ``tanh(target.sp.linear_1(h_cls))`` (BERT's pooler is the first layer of its next-sentence
  head; ALBERT's sentence-order head has the same shape), optionally scaled to unit length.
- :class:`ClassifierLogits`: a fine-tuned classifier's logits (run_classifier.py's model).
"""
from __future__ import annotations

import argparse
import os

import torch
from torch import nn

from uer.api import load_model
from uer.config import ConfigError, model_config_from_args
from uer.finetune.builders import encoder_from_args
from uer.text.tokenizers import tokenizer_from_args
from uer.finetune.tasks.classifier import Classifier
from uer.layers.pooling import encode_and_pool
from uer.model_config import ModelConfig
from uer.model_loader import ModelLoadError, load_model_weights, load_state_dict, normalize_keys
from uer.targets.cls_target import POOLINGS
from uer.text.tokenizers import Tokenizer

ENCODE_LAYERS = ("pooler",) + POOLINGS
POOLER_KEYS = ("target.sp.linear_1.weight", "target.sp.linear_1.bias")


def add_encoder_output_options(parser: argparse.ArgumentParser) -> None:
    """What a vector is (shared with export_onnx.py --kind encoder)."""
    parser.add_argument("--encode_layer", choices=ENCODE_LAYERS, default=None,
                        help="pooler: [CLS] through the pre-training head's pooler (BERT); first: the last layer at "
                             "[CLS]; mean / max / last: over the real tokens of the last layer (default: first; "
                             "with --backend onnxruntime the exported one).")
    parser.add_argument("--normalize", action="store_true", help="Scale every vector to unit length.")


class EncoderVectors(nn.Module):
    """[batch_size x seq_length] ids and segments (0 = padding) -> [batch_size x hidden_size] vectors."""

    def __init__(self, embedding: nn.Module, encoder: nn.Module, encode_layer: str, normalize: bool = False,
                 pooler: nn.Linear | None = None) -> None:
        super().__init__()
        if encode_layer not in ENCODE_LAYERS:
            raise ConfigError(f"--encode_layer {encode_layer!r}: choose one of {', '.join(ENCODE_LAYERS)}")
        if encode_layer == "pooler" and pooler is None:
            raise ConfigError("--encode_layer pooler needs the pre-training head's pooler weights")
        self.embedding = embedding
        self.encoder = encoder
        self.encode_layer = encode_layer
        self.normalize = normalize
        self.pooler = pooler

    def forward(self, src: torch.Tensor, seg: torch.Tensor) -> torch.Tensor:
        if self.encode_layer == "pooler":
            vectors = torch.tanh(self.pooler(encode_and_pool(self.embedding, self.encoder, src, seg, "first")))
        else:
            vectors = encode_and_pool(self.embedding, self.encoder, src, seg, self.encode_layer)
        if self.normalize:  # as TextEncoder.embed(normalize=True)
            vectors = vectors / vectors.norm(dim=-1, keepdim=True).clamp_min(1e-12)
        return vectors


class ClassifierLogits(nn.Module):
    """[batch_size x seq_length] ids and segments -> [batch_size x labels_num] logits of a fine-tuned classifier."""

    def __init__(self, classifier: Classifier) -> None:
        super().__init__()
        self.classifier = classifier

    def forward(self, src: torch.Tensor, seg: torch.Tensor) -> torch.Tensor:
        return self.classifier.logits({"src": src, "seg": seg})


def read_pooler(model_path: str | os.PathLike) -> nn.Linear:
    """BERT's pooler, the sp target's ``linear_1`` (2020-era names ``target.nsp_linear_1``/``sop_linear_1``
    too), read from a model file; a clear error when the file has no such head."""
    path = str(model_path)
    state: dict[str, torch.Tensor] | None = None
    if not path.endswith(".safetensors"):
        try:  # memory-mapped: only the two tensors are read, not a second copy of the model
            state = normalize_keys(torch.load(path, map_location="cpu", weights_only=True, mmap=True))
        except Exception:  # noqa: BLE001 - legacy (non-zip) files cannot be mapped; load_state_dict reports errors
            state = None
    if state is None:
        state = load_state_dict(path)
    missing = [key for key in POOLER_KEYS if key not in state]
    if missing:
        raise ModelLoadError(
            f"{path}: --encode_layer pooler needs the pre-training head's pooler ({POOLER_KEYS[0]}: BERT's "
            "next-sentence or ALBERT's sentence-order head), which this file does not have; "
            f"use --encode_layer first, mean, max or last")
    weight, bias = (state[key].detach().clone().float() for key in POOLER_KEYS)
    pooler = nn.Linear(weight.shape[1], weight.shape[0])
    with torch.no_grad():
        pooler.weight.copy_(weight)
        pooler.bias.copy_(bias)
    return pooler


def encoder_vectors_from_args(args: argparse.Namespace, model_path: str,
                              ) -> tuple[EncoderVectors, Tokenizer, ModelConfig]:
    """The module of the encoder server and of ``export_onnx.py --kind encoder`` (``--encode_layer``,
    ``--normalize``): the model loaded by :func:`uer.api.load_model` (embedding + encoder), its tokenizer,
    and its config."""
    tokenizer = tokenizer_from_args(args)
    cfg = model_config_from_args(args, len(tokenizer.vocab), with_target=False)
    if "pos" in cfg.embedding and args.seq_length > cfg.max_seq_length:
        raise ConfigError(f"--seq_length {args.seq_length} exceeds the model's max_seq_length {cfg.max_seq_length}")
    pooler = read_pooler(model_path) if args.encode_layer == "pooler" else None
    if pooler is not None and pooler.in_features != cfg.hidden_size:
        raise ModelLoadError(f"{model_path}: the pooler is {pooler.in_features} wide, the encoder {cfg.hidden_size}")
    model = load_model(cfg, model_path, with_target=False)  # the pre-training heads are not needed (pooler: above)
    module = EncoderVectors(model.embedding, model.encoder, args.encode_layer, args.normalize, pooler)
    return module.eval(), tokenizer, cfg


def classifier_logits_from_args(args: argparse.Namespace, model_path: str,
                                ) -> tuple[ClassifierLogits, Tokenizer, ModelConfig]:
    """A fine-tuned classifier as inference/run_classifier_infer.py builds it (same flags), every key loaded."""
    tokenizer = tokenizer_from_args(args)
    cfg, embedding, encoder = encoder_from_args(args, len(tokenizer.vocab))
    classifier = Classifier(embedding, encoder, cfg.hidden_size, args.labels_num, args.pooling)
    load_model_weights(classifier, model_path, strict_prefixes=("",))
    return ClassifierLogits(classifier).eval(), tokenizer, cfg
