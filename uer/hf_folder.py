"""HuggingFace model folders as inputs: ``--pretrained_model_path`` / ``--load_model_path`` / ``uer.api`` accept them.

A folder written by HF's ``save_pretrained`` (``config.json`` + ``model.safetensors`` or ``pytorch_model.bin``, or a
sharded ``*.index.json`` + shards, + tokenizer files) of a BERT, RoBERTa, XLM-R, ALBERT or GPT-2 model (a
sentence-transformers folder's root holds a BertModel) gives:

- :meth:`HFFolder.uer_config`: our JSON config's keys (sizes, activation, layer-norm epsilon, max positions and the
  architecture: embedding, encoder, mask, layer-norm positioning), merged by :mod:`uer.config` as if it were the
  ``--config_path`` file (an explicit flag that contradicts it is an error);
- :meth:`HFFolder.tokenizer_options`: ``--tokenizer``, ``--vocab_path`` / ``--merges_path`` / ``--spm_model_path``
  and ``--do_lower_case`` from the tokenizer files;
- :meth:`HFFolder.uer_state_dict`: our state dict, through the converters' key tables (uer/converters/).

A single ``.safetensors`` / ``.bin`` file with HF key names is converted on the fly by
:func:`uer.model_loader.load_state_dict` (the key names tell the model family, see :func:`hf_family_of_keys`).

This module imports no torch at import time (uer.config and the option parsers use it).
"""
from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from uer.errors import UserError

logger = logging.getLogger(__name__)

WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
INDEX_FILES = ("model.safetensors.index.json", "pytorch_model.bin.index.json")
# HF model_type -> the converter family (uer/converters/<family>.py)
FAMILIES = {"bert": "bert", "roberta": "roberta", "xlm-roberta": "roberta", "camembert": "roberta",
            "albert": "albert", "gpt2": "gpt2"}
# HF activation names -> ours (HF's gelu_new / gelu_pytorch_tanh are the tanh approximation we call gelu_fast)
ACTIVATIONS = {"gelu": "gelu", "gelu_new": "gelu_fast", "gelu_fast": "gelu_fast", "gelu_pytorch_tanh": "gelu_fast",
               "relu": "relu", "silu": "silu", "swish": "silu", "tanh": "tanh", "linear": "linear"}
# HF config keys -> ours, per family (GPT-2 spells them its own way)
_SIZE_KEYS = {
    "bert": {"hidden_size": "hidden_size", "num_hidden_layers": "layers_num", "num_attention_heads": "heads_num",
             "intermediate_size": "feedforward_size", "hidden_act": "hidden_act", "layer_norm_eps": "layernorm_eps",
             "max_position_embeddings": "max_seq_length", "embedding_size": "emb_size", "vocab_size": "vocab_size"},
    "gpt2": {"n_embd": "hidden_size", "n_layer": "layers_num", "n_head": "heads_num", "n_inner": "feedforward_size",
             "activation_function": "hidden_act", "layer_norm_epsilon": "layernorm_eps",
             "n_positions": "max_seq_length", "vocab_size": "vocab_size"},
}
# Keys of HF configs that carry no model size (training, generation, tokenizer bookkeeping): not reported.
HF_BOOKKEEPING = {"architectures", "model_type", "_name_or_path", "transformers_version", "torch_dtype", "dtype",
                  "hidden_dropout_prob", "attention_probs_dropout_prob", "initializer_range", "pad_token_id",
                  "bos_token_id", "eos_token_id", "type_vocab_size", "position_embedding_type", "use_cache",
                  "gradient_checkpointing", "classifier_dropout", "id2label", "label2id", "problem_type",
                  "tie_word_embeddings", "resid_pdrop", "embd_pdrop", "attn_pdrop", "summary_type", "summary_use_proj",
                  "summary_activation", "summary_proj_to_labels", "summary_first_dropout", "task_specific_params",
                  "num_hidden_groups", "inner_group_num", "n_ctx", "scale_attn_weights", "reorder_and_upcast_attn",
                  "scale_attn_by_inverse_layer_idx", "finetuning_task", "output_past", "is_decoder",
                  "add_cross_attention", "chunk_size_feed_forward", "layer_norm_eps", "layer_norm_epsilon"}


class HFFolderError(UserError, ValueError):
    """An HF model folder (or config) that cannot be used as asked; the message names the file."""


def is_hf_folder(path: str | os.PathLike | None) -> bool:
    """A folder holding an HF ``config.json`` (with ``model_type``)."""
    if not path or not os.path.isdir(path):
        return False
    return is_hf_config_file(Path(path) / "config.json")


def is_hf_config_file(path: str | os.PathLike) -> bool:
    """An HF ``config.json``: a JSON object with ``model_type`` or HF's size keys (ours has none of them)."""
    path = Path(path)
    if not path.is_file() or path.suffix != ".json":
        return False
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, ValueError):
        return False
    return is_hf_config(data)


def is_hf_config(data: Any) -> bool:
    return isinstance(data, dict) and ("model_type" in data or "num_hidden_layers" in data or "n_layer" in data)


def hf_family(config: dict[str, Any], source: str) -> str:
    model_type = config.get("model_type")
    if model_type is None:  # old configs without model_type: the spelling tells
        model_type = "gpt2" if "n_layer" in config else "bert"
    if model_type not in FAMILIES:
        raise HFFolderError(f"{source}: model_type {model_type!r} is not supported (supported: {', '.join(FAMILIES)})")
    return FAMILIES[model_type]


def uer_config_from_hf(config: dict[str, Any], source: str) -> dict[str, Any]:
    """Our JSON config keys for an HF config.json (sizes and architecture); unknown HF keys are logged once."""
    family = hf_family(config, source)
    names = _SIZE_KEYS["gpt2" if family == "gpt2" else "bert"]
    out: dict[str, Any] = {ours: config[theirs] for theirs, ours in names.items() if config.get(theirs) is not None}
    if "hidden_act" in out:
        if out["hidden_act"] not in ACTIVATIONS:
            raise HFFolderError(f"{source}: activation {out['hidden_act']!r} is not supported "
                                f"(supported: {', '.join(ACTIVATIONS)})")
        out["hidden_act"] = ACTIVATIONS[out["hidden_act"]]
    if config.get("position_embedding_type", "absolute") != "absolute":
        raise HFFolderError(f"{source}: position_embedding_type {config['position_embedding_type']!r} is not "
                            "supported (absolute positions only)")
    if family == "gpt2":
        out.setdefault("feedforward_size", 4 * out["hidden_size"])  # GPT-2's n_inner: null means 4 x n_embd
        out.setdefault("hidden_act", "gelu_fast")
        out.setdefault("layernorm_eps", 1e-5)
        out.update(emb_size=out["hidden_size"], embedding=["word", "pos"], remove_embedding_layernorm=True,
                   encoder="transformer", mask="causal", layernorm_positioning="pre", target=["lm"],
                   data_processor="lm", tie_weights=bool(config.get("tie_word_embeddings", True)))
    else:
        out.setdefault("layernorm_eps", 1e-12)
        out.setdefault("emb_size", out.get("hidden_size", 768))
        out.update(embedding=["word", "pos", "seg"], encoder="transformer", mask="fully_visible",
                   layernorm_positioning="post")
        if family == "roberta":
            # RoBERTa's position ids start after the padding id (fairseq): the first pad_token_id + 1 rows are unused
            out["max_seq_length"] = out["max_seq_length"] - int(config.get("pad_token_id", 1)) - 1
            out.update(target=["mlm"], data_processor="mlm")
        elif family == "albert":
            if config.get("num_hidden_groups", 1) != 1 or config.get("inner_group_num", 1) != 1:
                raise HFFolderError(f"{source}: ALBERT with more than one layer group or inner layer is not supported")
            out.update(factorized_embedding_parameterization=True, parameter_sharing=True, target=["mlm", "sp"],
                       data_processor="albert")
        else:
            out.update(target=["mlm", "sp"], data_processor="bert")
    unknown = sorted(set(config) - set(names) - HF_BOOKKEEPING)
    if unknown:
        logger.info("%s: HF config keys without a counterpart here (not used): %s", source, unknown)
    return out


class HFFolder:
    """One HF model folder: its config, weights and tokenizer files."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        config_file = self.path / "config.json"
        if not config_file.is_file():
            raise HFFolderError(f"{self.path}: a folder without config.json (an HF model folder needs it)")
        try:
            self.config: dict[str, Any] = json.loads(config_file.read_text(encoding="utf-8-sig"))
        except ValueError as err:
            raise HFFolderError(f"{config_file}: invalid JSON ({err})") from None
        self.family = hf_family(self.config, str(config_file))
        self.model_type = self.config.get("model_type", self.family)

    def __repr__(self) -> str:
        return f"HFFolder({str(self.path)!r}, model_type={self.model_type!r})"

    # ------------------------------------------------------------------ config
    def uer_config(self) -> dict[str, Any]:
        out = uer_config_from_hf(self.config, str(self.path / "config.json"))
        if self.family in ("bert", "albert") and self.conversion_kind() == "mlm":  # a MaskedLM has no sentence head
            out.update(target=["mlm"], data_processor="mlm")
        return out

    @property
    def architecture(self) -> str:
        names = self.config.get("architectures") or []
        return names[0] if names else ""

    # ------------------------------------------------------------------ tokenizer
    def _tokenizer_config(self) -> dict[str, Any]:
        path = self.path / "tokenizer_config.json"
        if not path.is_file():
            return {}
        try:
            data = json.loads(path.read_text(encoding="utf-8-sig"))
        except ValueError as err:
            raise HFFolderError(f"{path}: invalid JSON ({err})") from None
        return data if isinstance(data, dict) else {}

    def tokenizer_options(self) -> dict[str, Any]:
        """``tokenizer``, ``vocab_path`` / ``merges_path`` / ``spm_model_path`` and ``do_lower_case`` of the folder;
        empty when it has no tokenizer files we read."""
        files = {name: self.path / name for name in ("vocab.txt", "vocab.json", "merges.txt", "sentencepiece.bpe.model",
                                                        "spiece.model")}
        config = self._tokenizer_config()
        if files["vocab.txt"].is_file():
            lower = config.get("do_lower_case")
            out: dict[str, Any] = {"tokenizer": "bert", "vocab_path": str(files["vocab.txt"])}
            if lower is not None:
                out["do_lower_case"] = bool(lower)
            return out
        if files["vocab.json"].is_file() and files["merges.txt"].is_file():
            return {"tokenizer": "bpe", "vocab_path": str(files["vocab.json"]), "merges_path": str(files["merges.txt"])}
        if files["sentencepiece.bpe.model"].is_file():
            return {"tokenizer": "xlmroberta", "spm_model_path": str(files["sentencepiece.bpe.model"])}
        return {}

    # ------------------------------------------------------------------ weights
    def weight_files(self) -> list[Path]:
        """The weights file, or every shard of a sharded checkpoint (from its index)."""
        for name in WEIGHT_FILES:
            if (self.path / name).is_file():
                return [self.path / name]
        for name in INDEX_FILES:
            index = self.path / name
            if index.is_file():
                try:
                    weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
                except (ValueError, KeyError, TypeError) as err:
                    raise HFFolderError(f"{index}: not a sharded-checkpoint index ({err})") from None
                shards = sorted(set(weight_map.values()))
                missing = [shard for shard in shards if not (self.path / shard).is_file()]
                if missing:
                    raise HFFolderError(f"{index}: shard {missing[0]} is missing from the folder")
                return [self.path / shard for shard in shards]
        raise HFFolderError(f"{self.path}: no weights ({', '.join(WEIGHT_FILES)} or a sharded {INDEX_FILES[0]})")

    def hf_state_dict(self) -> dict:
        """The folder's weights with HF's key names (shards merged)."""
        from uer.model_loader import load_state_dict

        state: dict = {}
        for path in self.weight_files():
            state.update(load_state_dict(path, normalize=False, convert_hf=False))
        return state

    def conversion_kind(self) -> str:
        """Which heads travel with the encoder, from ``architectures`` (the converters' ``kind``)."""
        return kind_of_architecture(self.family, self.architecture)

    def uer_state_dict(self) -> dict:
        """Our state dict (keys as UER-py names them) from the folder's weights."""
        return hf_state_to_uer(self.hf_state_dict(), self.family, self.conversion_kind(), self.config)


# HF architecture suffix -> the converters' kind
_ARCHITECTURE_KINDS = {"ForPreTraining": "bert", "ForMaskedLM": "mlm", "ForSequenceClassification": "text_classification",
                       "ForTokenClassification": "token_classification", "ForQuestionAnswering": "extractive_qa",
                       "ForMultipleChoice": "multiple_choice", "LMHeadModel": "lm", "Model": "bare"}


def kind_of_architecture(family: str, architecture: str) -> str:
    for suffix, kind in _ARCHITECTURE_KINDS.items():
        if architecture.endswith(suffix):
            if family == "albert" and kind == "bert":
                return "albert"
            return kind
    return "bare"


def hf_family_of_keys(keys) -> str | None:
    """The HF model family a state dict's key names belong to; None when they are not HF's."""
    keys = list(keys)
    if any(k.startswith(("embedding.", "encoder.transformer", "target.", "output_layer")) for k in keys):
        return None  # ours
    for family, prefixes in (("roberta", ("roberta.",)), ("albert", ("albert.", "encoder.albert_layer_groups")),
                             ("gpt2", ("transformer.h.", "h.0.", "wte.")),
                             ("bert", ("bert.", "embeddings.word_embeddings", "encoder.layer."))):
        if any(k.startswith(prefixes) for k in keys):
            return family
    return None


def _kind_of_keys(family: str, keys) -> str:
    """The conversion kind a bare HF file's keys show (heads present)."""
    keys = set(keys)
    if family == "gpt2":
        return "lm"
    if family == "albert":
        return "albert" if any(k.startswith("sop_classifier.") for k in keys) else "mlm"
    if any(k.startswith("cls.seq_relationship.") for k in keys):
        return "bert"
    if any(k.startswith(("cls.predictions.", "lm_head.")) for k in keys):
        return "mlm"
    if any(k.startswith("qa_outputs.") for k in keys):
        return "extractive_qa"
    if any(k.startswith(("classifier.", "bert.classifier")) for k in keys):
        raise HFFolderError("an HF task model file alone does not say its task (sequence or token classification): "
                            "give the folder with its config.json, or convert it with "
                            "scripts/convert_bert_*_from_huggingface_to_uer.py")
    return "bare"


def hf_state_to_uer(state: dict, family: str | None = None, kind: str | None = None,
                    config: dict[str, Any] | None = None) -> dict:
    """Our state dict from an HF one: the converter of ``family`` with heads ``kind`` (both guessed from the keys
    when not given)."""
    family = family or hf_family_of_keys(state)
    if family is None:
        raise HFFolderError("not an HF state dict (no key of BERT, RoBERTa, ALBERT or GPT-2)")
    kind = kind or _kind_of_keys(family, state)
    if family == "bert":
        from uer.converters import bert

        return bert.hf_to_uer(state, kind)
    if family == "roberta":
        from uer.converters import roberta

        return roberta.hf_to_uer(state, kind, pad_token_id=int((config or {}).get("pad_token_id", 1)))
    if family == "albert":
        from uer.converters import albert

        return albert.hf_to_uer(state, kind if kind in ("albert", "mlm") else "mlm")
    from uer.converters import gpt2

    return gpt2.hf_to_uer(state)


# ---------------------------------------------------------------------------------------------- writing
# Our tokenizer -> the HF tokenizer class whose files we write (by model family for byte-level BPE)
_SPECIAL_NAMES = ("unk", "sep", "pad", "cls", "mask")


def write_tokenizer_files(folder: str | os.PathLike, tokenizer: Any, model_type: str, max_length: int) -> list[str]:
    """The tokenizer files AutoTokenizer reads for ``tokenizer`` (ours): vocab.txt (WordPiece), vocab.json +
    merges.txt (byte-level BPE) or sentencepiece.bpe.model (XLM-R), with tokenizer_config.json (class, casing,
    special tokens, model_max_length) and special_tokens_map.json. Returns the names written."""
    from uer.text.tokenizers import BertTokenizer, BPETokenizer, XLMRobertaTokenizer
    from uer.utils.io import atomic_write_bytes, atomic_write_text

    folder = Path(folder)
    vocab = tokenizer.vocab
    specials = {f"{role}_token": vocab.i2w[getattr(vocab, f"{role}_id")] for role in _SPECIAL_NAMES}
    config: dict[str, Any] = {"model_max_length": int(max_length), **specials}
    written = []
    if isinstance(tokenizer, BPETokenizer):
        table = {token: i for i, token in enumerate(vocab.i2w)}
        atomic_write_text(folder / "vocab.json", json.dumps(table, ensure_ascii=False) + "\n")
        atomic_write_bytes(folder / "merges.txt", Path(tokenizer.merges_path).read_bytes())
        written += ["vocab.json", "merges.txt"]
        if FAMILIES.get(model_type) == "roberta":
            config.update(tokenizer_class="RobertaTokenizer", bos_token="<s>", eos_token="</s>")
        else:
            config.update(tokenizer_class="GPT2Tokenizer", bos_token=specials["cls_token"],
                          eos_token=specials["sep_token"])
            for key in ("cls_token", "sep_token", "mask_token"):
                config.pop(key)
    elif isinstance(tokenizer, XLMRobertaTokenizer):
        atomic_write_bytes(folder / "sentencepiece.bpe.model", Path(tokenizer.spm_model_path).read_bytes())
        written.append("sentencepiece.bpe.model")
        config.update(tokenizer_class="XLMRobertaTokenizer", bos_token="<s>", eos_token="</s>")
    elif isinstance(tokenizer, BertTokenizer) and tokenizer.sp_model is None:
        vocab.save(folder / "vocab.txt")
        written.append("vocab.txt")
        config.update(tokenizer_class="BertTokenizer", do_lower_case=bool(tokenizer.do_lower_case),
                      tokenize_chinese_chars=True, strip_accents=None)
    else:
        raise HFFolderError(f"{type(tokenizer).__name__}"
                            + (" over a sentencepiece model" if getattr(tokenizer, "sp_model", None) else "")
                            + " has no HF tokenizer form here (WordPiece vocab.txt, byte-level BPE and XLM-R do)")
    atomic_write_text(folder / "tokenizer_config.json", json.dumps(config, indent=2, ensure_ascii=False) + "\n")
    special_map = {key: value for key, value in config.items() if key.endswith("_token")}
    atomic_write_text(folder / "special_tokens_map.json", json.dumps(special_map, indent=2, ensure_ascii=False) + "\n")
    return written + ["tokenizer_config.json", "special_tokens_map.json"]


def save_hf_folder(state: dict, folder: str | os.PathLike, cfg: Any, tokenizer: Any = None, kind: str = "bare",
                   model_type: str = "bert", labels: list[str] | None = None) -> Path:
    """Write our state dict as a complete HF folder: model.safetensors, config.json (sizes, activation and layer-norm
    epsilon from ``cfg``, our ModelConfig) and the tokenizer files of ``tokenizer`` (ours; None: none written).

    ``kind``: the converters' kind (``text_classification`` for a run_classifier.py model, ``bare``, ``mlm``, ...);
    ``model_type``: bert, roberta or xlm-roberta (what the model was loaded as); ``labels``: id2label names.
    """
    from uer.converters import bert, roberta
    from uer.converters.common import write_state

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if cfg.hidden_act not in ("gelu", "gelu_fast", "relu", "silu", "tanh", "linear"):
        raise HFFolderError(f"activation {cfg.hidden_act!r} has no HF name")
    if cfg.layernorm_variant != "standard":
        raise HFFolderError("the model uses UER-py's layer norm variant; HF computes the standard one")
    eps = cfg.layernorm_eps if cfg.layernorm_eps is not None else (1e-5 if model_type != "bert" else 1e-12)
    family = FAMILIES.get(model_type)
    if family == "bert":
        hf_state = bert.uer_to_hf(state, kind)
        config = bert.hf_config(hf_state, kind, cfg.heads_num, cfg.hidden_act, eps)
    elif family == "roberta":
        hf_state = roberta.uer_to_hf(state, kind)
        config = roberta.hf_config(hf_state, kind, model_type, cfg.heads_num, cfg.hidden_act, eps)
    else:
        raise HFFolderError(f"save_hf_folder writes BERT, RoBERTa and XLM-R models, not {model_type!r}")
    if labels is not None and "id2label" in config:
        if len(labels) != len(config["id2label"]):
            raise HFFolderError(f"{len(labels)} label names for {len(config['id2label'])} outputs")
        config["id2label"] = {str(i): name for i, name in enumerate(labels)}
        config["label2id"] = {name: i for i, name in enumerate(labels)}
    if tokenizer is not None and len(tokenizer.vocab) != config["vocab_size"]:
        raise HFFolderError(f"the vocabulary has {len(tokenizer.vocab)} tokens, the model {config['vocab_size']}")
    write_state(hf_state, folder / "model.safetensors")
    from uer.utils.io import atomic_write_text

    atomic_write_text(folder / "config.json", json.dumps(config, indent=2, sort_keys=True) + "\n")
    if tokenizer is not None:
        positions = config["max_position_embeddings"] - (2 if family == "roberta" else 0)
        write_tokenizer_files(folder, tokenizer, model_type, positions)
    return folder
