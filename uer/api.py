"""The programmatic API: build, load and use a model without an argparse command line.

    from uer.api import TextEncoder

    encoder = TextEncoder.from_pretrained("models/demo_bert_model.bin-300", vocab_path="models/google_zh_vocab.txt",
                                          config_path="models/bert/tiny_config.json")
    vectors = encoder.embed(["今天天气很好", "这本书很好看"], pooling="mean")   # numpy [2 x hidden_size]

The pieces, for notebooks, servers and tools:

- :func:`load_config`: a JSON config of either UER-py generation plus keyword overrides (they win over the
  JSON, as flags do on the command line), legacy spellings normalised exactly as on the command line
  (``encoder="bert"``, ``target="albert"``, ``embedding="word_pos_seg"``); returns a validated ``ModelConfig``.
- :func:`load_model`: the one loader of inference scripts, tools and servers: ``build_model`` + the weights of
  a ``.bin``/``.safetensors`` file of any key generation, in eval mode.
- :class:`TextEncoder`: a loaded model with its tokenizer: ``encode`` (texts -> ``Instances``),
  ``hidden_states`` (per-token vectors without padding) and ``embed`` (one pooled vector per text).
- :func:`resolve_device`: the one ``--device`` convention (``auto``, ``cpu``, ``cuda``, ``cuda:N``).
"""
from __future__ import annotations

import os
from typing import Any, Sequence

import numpy as np
import torch

from uer.config import ConfigError
from uer.data.finetune_data import Instances, collate, encode_pair, length_sorted_batches
from uer.model_builder import build_model
from uer.model_config import ModelConfig
from uer.model_loader import load_model_weights, load_state_dict
from uer.models.model import Model
from uer.layers.pooling import pool
from uer.names import POOLINGS
from uer.text.tokenizers import Tokenizer, build_tokenizer
from uer.utils.quantize import quantize_for_inference

__all__ = ["POOLINGS", "TextEncoder", "load_config", "load_model", "resolve_device"]


def load_config(config_path: str | os.PathLike | None = None, vocab_size: int | None = None,
                model_path: str | os.PathLike | None = None, **overrides: Any) -> ModelConfig:
    """A validated ModelConfig from a JSON file (optional) and keyword overrides named like the JSON's keys and
    the command line's flags (``hidden_size=256``, ``encoder="bert"``, ``target=["mlm"]``, ``labels_num=3``).

    Without ``config_path`` the declared defaults apply (BERT-base sizes). ``vocab_size`` is required (take it
    from the vocabulary: ``len(tokenizer.vocab)``). ``model_path``: an HF model folder there gives the config
    when ``config_path`` is None (its config.json, HF's keys mapped onto ours).
    """
    from uer.hf_folder import is_hf_folder

    if vocab_size is None or vocab_size <= 0:
        raise ConfigError("load_config needs vocab_size (the number of tokens of the model's vocabulary)")
    known = set(ModelConfig.__dataclass_fields__) | {"remove_transformer_bias", "data_processor"}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ConfigError(f"load_config: unknown option {unknown[0]!r}")
    if config_path is None and model_path is not None and is_hf_folder(model_path):
        config_path = os.path.join(os.fspath(model_path), "config.json")
    if config_path is None:
        return ModelConfig.from_dict(overrides, vocab_size)
    return ModelConfig.from_json(config_path, vocab_size, **overrides)


def resolve_device(spec: str | torch.device | None = "auto") -> torch.device:
    """``auto`` (or None): the first GPU when CUDA is available, else the CPU; ``cpu``; ``cuda``; ``cuda:N``."""
    if isinstance(spec, torch.device):
        return spec
    if spec in (None, "", "auto"):
        return torch.device("cuda", 0) if torch.cuda.is_available() else torch.device("cpu")
    try:
        device = torch.device(spec)
    except RuntimeError:
        raise ConfigError(f"--device {spec!r}: expected auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"--device {spec}: CUDA is not available on this machine (use --device cpu)")
        index = 0 if device.index is None else device.index
        if index >= torch.cuda.device_count():
            raise ConfigError(f"--device {spec}: only {torch.cuda.device_count()} GPU(s) visible")
        device = torch.device("cuda", index)
    return device


def load_model(cfg: ModelConfig, model_path: str | os.PathLike | None = None, with_target: bool | None = None,
               device: str | torch.device = "cpu") -> Model:
    """Build the model of ``cfg`` and load ``model_path`` into it (eval mode, on ``device``).

    ``with_target``: build the pre-training heads of ``cfg.target`` too; None = when the file has ``target.*``
    keys. The embedding and encoder keys must match the config exactly; head keys that differ are reported.
    Without ``model_path`` the model keeps its fresh initialisation.
    """
    state = load_state_dict(model_path) if model_path is not None else None
    if with_target is None:
        # (a BertModel's pooler alone, kept as target.sp.linear_1, is no pre-training head)
        with_target = state is not None and any(key.startswith("target.") and not key.startswith("target.sp.linear_1.")
                                                for key in state)
    model = build_model(cfg, with_target=with_target and bool(cfg.target))
    if state is not None:
        load_model_weights(model, model_path, state=state)
    return model.to(resolve_device(device)).eval()


class TextEncoder:
    """A pre-trained model and its tokenizer, ready to turn texts into vectors."""

    def __init__(self, model: Model, tokenizer: Tokenizer, cfg: ModelConfig, seq_length: int = 128,
                 device: str | torch.device = "cpu", closing_sep: bool = True) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.closing_sep = closing_sep  # single texts: [CLS] text [SEP], or [CLS] text (--no_closing_sep)
        self.cfg = cfg
        self.device = resolve_device(device)
        self.model.to(self.device).eval()
        bounded = "pos" in cfg.embedding or cfg.encoder == "synt"
        self.seq_length = min(seq_length, cfg.max_seq_length) if bounded else seq_length

    @classmethod
    def from_pretrained(cls, model_path: str | os.PathLike | None, vocab_path: str | None = None,
                        config_path: str | os.PathLike | None = None, spm_model_path: str | None = None,
                        tokenizer: str | None = None, device: str | torch.device = "auto",
                        seq_length: int | None = None, closing_sep: bool | None = None,
                        do_lower_case: bool | None = None, merges_path: str | None = None,
                        quantize: str = "none", **overrides: Any) -> "TextEncoder":
        """Load a model file or an HF model folder (``None``: random initialisation) with its vocabulary and config.

        From an HF folder (uer/hf_folder.py) the config, tokenizer, vocabulary and casing come from its files;
        arguments given here win. ``do_lower_case`` None: from the folder's tokenizer_config.json, else from the
        vocabulary. A model fine-tuned by this project has a record next to it (``MODEL.json``,
        :mod:`uer.model_meta`): what is not given here (config, tokenizer, seq_length, the closing [SEP]) comes from
        it, and a value that contradicts it is an error. Otherwise the defaults are the bert tokenizer, 128 tokens
        and ``[CLS] text [SEP]``. ``quantize="int8"``: dynamic int8 linear layers for CPU inference
        (:mod:`uer.utils.quantize`). ``overrides`` are model options as in :func:`load_config`.
        """
        from uer import model_meta
        from uer.hf_folder import HFFolder, is_hf_folder

        if is_hf_folder(model_path):
            found = HFFolder(model_path).tokenizer_options()
            if not vocab_path and not spm_model_path:
                vocab_path, spm_model_path = found.get("vocab_path"), found.get("spm_model_path")
                merges_path = merges_path or found.get("merges_path")
                tokenizer = tokenizer or found.get("tokenizer")
            if do_lower_case is None:
                do_lower_case = found.get("do_lower_case")
        if not vocab_path and not spm_model_path:
            raise ConfigError("give vocab_path (or spm_model_path): the vocabulary the model was trained with")
        record = model_meta.read(model_path) if model_path and not is_hf_folder(model_path) else None
        where = model_meta.record_path(model_path) if record is not None else ""
        tokenizer = model_meta.resolve(record, "tokenizer", tokenizer, "bert", where)
        seq_length = model_meta.resolve(record, "seq_length", seq_length, 128, where)
        no_closing_sep = model_meta.resolve(record, "no_closing_sep", None if closing_sep is None else not closing_sep,
                                            False, where)
        tok = build_tokenizer(tokenizer, vocab_path, spm_model_path, do_lower_case, merges_path)
        if record is not None:
            model_meta.check_vocabulary(record, tok.vocab, model_path)
        cfg = load_config(config_path, len(tok.vocab), model_path=model_path,
                          **model_meta.recorded_config(record, config_path, overrides, where))
        device = resolve_device(device)
        model = quantize_for_inference(load_model(cfg, model_path, device=device), quantize, device)
        return cls(model, tok, cfg, seq_length, device, not no_closing_sep)

    @property
    def hidden_size(self) -> int:
        return self.cfg.hidden_size

    def encode(self, texts: Sequence[str], texts_b: Sequence[str] | None = None) -> Instances:
        """Token ids of ``texts`` (pairs with ``texts_b``), as the fine-tuning scripts encode them."""
        if texts_b is not None and len(texts_b) != len(texts):
            raise ValueError(f"texts_b has {len(texts_b)} texts for {len(texts)} texts")
        pairs = zip(texts, texts_b if texts_b is not None else [None] * len(texts))
        return Instances.from_sequences(encode_pair(self.tokenizer, a, b, self.seq_length, self.closing_sep)
                                        for a, b in pairs)

    def _batches(self, data: Instances, batch_size: int):
        pad_id = self.tokenizer.vocab.pad_id
        with torch.inference_mode():
            for indices in length_sorted_batches(data.lengths, batch_size):
                batch = collate(data, indices, pad_id)
                src, seg = batch["src"].to(self.device), batch["seg"].to(self.device)
                yield indices, self.model.encode(src, seg), seg

    def hidden_states(self, texts: Sequence[str], texts_b: Sequence[str] | None = None,
                      batch_size: int = 64) -> list[np.ndarray]:
        """The last layer's output of each text, [length_i x hidden_size] float32, without padding."""
        data = self.encode(texts, texts_b)
        out: list[np.ndarray | None] = [None] * len(data)
        lengths = data.lengths
        for indices, hidden, _ in self._batches(data, batch_size):
            hidden = hidden.float().cpu().numpy()
            for row, i in enumerate(indices):
                out[i] = hidden[row, :lengths[i]].copy()
        return out  # type: ignore[return-value]

    def embed(self, texts: Sequence[str], texts_b: Sequence[str] | None = None, pooling: str = "first",
              normalize: bool = False, batch_size: int = 64) -> np.ndarray:
        """One vector per text, [N x hidden_size] float32: the last layer pooled over the real tokens
        (``first`` = [CLS], ``mean``, ``max``, ``last``), optionally scaled to unit length."""
        if pooling not in POOLINGS:
            raise ValueError(f"unknown pooling {pooling!r} (known: {', '.join(POOLINGS)})")
        data = self.encode(texts, texts_b)
        out = np.zeros((len(data), self.cfg.hidden_size), dtype=np.float32)
        for indices, hidden, seg in self._batches(data, batch_size):
            out[indices] = pool(hidden, seg, pooling).float().cpu().numpy()
        if normalize:
            out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return out
