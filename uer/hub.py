"""torch.hub entry points (hubconf.py at the repository root): the calls of HF's tutorial, answered with our
tokenizer and models.

    tokenizer = torch.hub.load(repo_dir, "tokenizer", "path/to/hf_folder", source="local")
    model = torch.hub.load(repo_dir, "modelForSequenceClassification", "path/to/hf_folder", source="local")
    logits = model(input_ids, token_type_ids=token_type_ids, attention_mask=attention_mask)

``path``: an HF model folder (config, weights and tokenizer from its files, uer/hf_folder.py) or one of our model
files with ``config_path=`` and ``vocab_path=`` (as :meth:`uer.api.TextEncoder.from_pretrained` takes them). The models
take HF's inputs (``token_type_ids`` 0/1, ``attention_mask`` 1 at real tokens) and return tensors: hidden states
[batch x length x hidden], MLM logits [batch x length x vocabulary], classification logits [batch x labels], and
(start_logits, end_logits) [batch x length] each. Our tokenizers' ``encode`` adds no [CLS]/[SEP] (HF's does).
"""
from __future__ import annotations

import os
from typing import Any

import torch
from torch import nn

from uer.api import load_config, load_model
from uer.errors import UsageError
from uer.model_loader import load_model_weights, load_state_dict
from uer.text.tokenizers import Tokenizer, build_tokenizer


def _segments(input_ids: torch.Tensor, token_type_ids: torch.Tensor | None,
              attention_mask: torch.Tensor | None) -> torch.Tensor:
    """Our segment ids from HF's inputs: token type t -> segment t + 1, padding -> 0."""
    seg = torch.ones_like(input_ids) if token_type_ids is None else token_type_ids + 1
    return seg if attention_mask is None else seg * attention_mask.to(seg.dtype)


class HubEncoder(nn.Module):
    """Our embedding + encoder; returns the last layer's hidden states (HF's ``last_hidden_state``)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None = None,
                attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.model.encode(input_ids, _segments(input_ids, token_type_ids, attention_mask))


class HubMaskedLM(HubEncoder):
    """Our model with its MLM target; returns logits at every position (HF's ``BertForMaskedLM`` logits)."""

    def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None = None,
                attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        hidden = super().forward(input_ids, token_type_ids, attention_mask)
        positions = torch.arange(hidden.shape[0] * hidden.shape[1], device=hidden.device)
        logits = self.model.target.mlm.logits(hidden, positions)
        return logits.view(hidden.shape[0], hidden.shape[1], -1)


class HubSequenceClassifier(nn.Module):
    """Our run_classifier.py head (uer/finetune/tasks/classifier.py); returns logits [batch x labels]."""

    def __init__(self, classifier: nn.Module) -> None:
        super().__init__()
        self.classifier = classifier

    def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None = None,
                attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.classifier.logits({"src": input_ids, "seg": _segments(input_ids, token_type_ids, attention_mask)})


class HubQuestionAnswering(nn.Module):
    """Our run_cmrc.py head (uer/finetune/tasks/mrc.py); returns (start_logits, end_logits)."""

    def __init__(self, extractor: nn.Module) -> None:
        super().__init__()
        self.extractor = extractor

    def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None = None,
                attention_mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        seg = _segments(input_ids, token_type_ids, attention_mask)
        outputs = self.extractor({"src": input_ids, "seg": seg}).outputs
        return outputs["start_logits"], outputs["end_logits"]


def tokenizer(path: str | os.PathLike, tokenizer_name: str | None = None, do_lower_case: bool | None = None,
              merges_path: str | None = None) -> Tokenizer:
    """Our tokenizer of an HF model folder (its vocabulary, merges or sentencepiece model, and casing), or of a
    vocabulary file (``tokenizer_name`` default bert; ``.model`` files are sentencepiece models)."""
    from uer.hf_folder import HFFolder, is_hf_folder

    if is_hf_folder(path):
        options = HFFolder(path).tokenizer_options()
        if not options:
            raise UsageError(f"{path}: no tokenizer files (vocab.txt, vocab.json + merges.txt, sentencepiece.bpe.model)")
        if do_lower_case is not None:
            options["do_lower_case"] = do_lower_case
        name = tokenizer_name or options.pop("tokenizer")
        options.pop("tokenizer", None)
        return build_tokenizer(name, **options)
    path = os.fspath(path)
    if path.endswith(".model"):
        return build_tokenizer(tokenizer_name or "bert", spm_model_path=path, do_lower_case=do_lower_case)
    return build_tokenizer(tokenizer_name or "bert", path, do_lower_case=do_lower_case, merges_path=merges_path)


def _config(path: str | os.PathLike, config_path: str | None, vocab_path: str | None, overrides: dict[str, Any]):
    vocab_size = len(tokenizer(vocab_path or path).vocab)
    return load_config(config_path, vocab_size, model_path=path, **overrides)


def model(path: str | os.PathLike, config_path: str | None = None, vocab_path: str | None = None,
          **overrides: Any) -> HubEncoder:
    """The encoder (embedding + encoder) of ``path``, in eval mode."""
    cfg = _config(path, config_path, vocab_path, overrides)
    return HubEncoder(load_model(cfg, path, with_target=False)).eval()


def modelForMaskedLM(path: str | os.PathLike, config_path: str | None = None, vocab_path: str | None = None,
                     **overrides: Any) -> HubMaskedLM:
    """The encoder with its MLM head; the file must have one (target.mlm.*)."""
    cfg = _config(path, config_path, vocab_path, overrides)
    if "mlm" not in cfg.target:
        raise UsageError(f"{path}: the model's target is {list(cfg.target)}, not mlm")
    built = load_model(cfg, path, with_target=True)
    if not any(key.startswith("target.mlm.") for key in load_state_dict(path)):
        raise UsageError(f"{path}: the model file has no MLM head (target.mlm / cls.predictions)")
    return HubMaskedLM(built).eval()


def modelForSequenceClassification(path: str | os.PathLike, config_path: str | None = None,
                                   vocab_path: str | None = None, labels_num: int | None = None,
                                   **overrides: Any) -> HubSequenceClassifier:
    """Our classifier (pooling ``first``, tanh(output_layer_1), output_layer_2: HF's pooler + classifier); the
    number of labels from the file unless ``labels_num`` is given (a fresh head then, for fine-tuning)."""
    from uer.finetune.tasks.classifier import Classifier

    cfg = _config(path, config_path, vocab_path, overrides)
    state = load_state_dict(path)
    if labels_num is None:
        if "output_layer_2.weight" not in state:
            raise UsageError(f"{path}: no classification head in the file: give labels_num for a fresh one")
        labels_num = int(state["output_layer_2.weight"].shape[0])
    base = load_model(cfg, None, with_target=False)
    head = Classifier(base.embedding, base.encoder, cfg.hidden_size, labels_num)
    load_model_weights(head, path, state=state)
    return HubSequenceClassifier(head).eval()


def modelForQuestionAnswering(path: str | os.PathLike, config_path: str | None = None, vocab_path: str | None = None,
                              **overrides: Any) -> HubQuestionAnswering:
    """Our span extractor (output_layer: HF's qa_outputs); a file without one gets a fresh head (logged)."""
    from uer.finetune.tasks.mrc import SpanExtractor

    cfg = _config(path, config_path, vocab_path, overrides)
    base = load_model(cfg, None, with_target=False)
    head = SpanExtractor(base.embedding, base.encoder, cfg.hidden_size)
    load_model_weights(head, path)
    return HubQuestionAnswering(head).eval()


__all__ = ["tokenizer", "model", "modelForMaskedLM", "modelForSequenceClassification", "modelForQuestionAnswering",
           "HubEncoder", "HubMaskedLM", "HubSequenceClassifier", "HubQuestionAnswering"]
