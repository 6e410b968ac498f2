"""RoBERTa and XLM-R between HuggingFace's key names and ours, through BERT's tables (uer/converters/bert.py).

The encoder is BERT's; three things differ, and this module handles only them:

- key names: ``roberta.`` for ``bert.``, ``lm_head.{dense,layer_norm,decoder,bias}`` for ``cls.predictions.*``, and
  the classification head ``classifier.dense`` + ``classifier.out_proj`` (tanh between, on the first token: the
  same computation as BERT's pooler + classifier, hence our output_layer_1/2);
- positions: fairseq numbers them from ``pad_token_id + 1`` (2), so HF's first two position rows are never used;
  ours start at 0: rows ``[pad_token_id + 1:]`` are ours, and on the way back the unused rows are written as zeros;
- one token type: our three segment rows all get HF's single row (RoBERTa has no sentence B embedding; a
  transformers-default config with 2 types converts as BERT's, and back to 1 row when the two rows are equal).

Kinds: ``mlm`` (RobertaForMaskedLM), ``text_classification``, ``token_classification``, ``extractive_qa`` and
``bare`` (RobertaModel, its pooler kept as ``target.sp.linear_1`` as for BERT).
"""
from __future__ import annotations

import re
from typing import Any

import torch

from uer.converters import bert
from uer.converters.common import ConversionError

KINDS = ("mlm", "text_classification", "token_classification", "extractive_qa", "bare")
HF_ARCHITECTURE = {"mlm": "RobertaForMaskedLM", "text_classification": "RobertaForSequenceClassification",
                   "token_classification": "RobertaForTokenClassification",
                   "extractive_qa": "RobertaForQuestionAnswering", "bare": "RobertaModel"}
# RoBERTa name -> BERT name (key prefixes)
_RENAMES = (("roberta.", "bert."), ("lm_head.dense.", "cls.predictions.transform.dense."),
            ("lm_head.layer_norm.", "cls.predictions.transform.LayerNorm."),
            ("lm_head.decoder.", "cls.predictions.decoder."), ("lm_head.bias", "cls.predictions.bias"))
_CLASSIFIER_RENAMES = (("classifier.dense.", "bert.pooler.dense."), ("classifier.out_proj.", "classifier."))
_POSITIONS = "bert.embeddings.position_embeddings.weight"
_TYPES = "bert.embeddings.token_type_embeddings.weight"


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ConversionError(f"unknown RoBERTa conversion kind {kind!r} (known: {', '.join(KINDS)})")


def _rename(key: str, renames) -> str:
    for old, new in renames:
        if key.startswith(old):
            return new + key[len(old):]
    return key


def hf_to_uer(hf_state: dict[str, torch.Tensor], kind: str = "mlm", pad_token_id: int = 1) -> dict[str, torch.Tensor]:
    """Our state dict from a HuggingFace RoBERTa / XLM-R state dict."""
    _check_kind(kind)
    state = {}
    for key, value in hf_state.items():
        key = re.sub(r"^module\.", "", key)
        if key.startswith(("embeddings.", "encoder.", "pooler.")):  # RobertaModel saves without the prefix
            key = "roberta." + key
        key = _rename(key, _RENAMES + (_CLASSIFIER_RENAMES if kind == "text_classification" else ()))
        state[key] = value
    if _POSITIONS not in state or _TYPES not in state:
        raise ConversionError("the HuggingFace file has no roberta.embeddings position / token type embeddings; "
                              "is it a RoBERTa checkpoint?")
    offset = pad_token_id + 1
    state[_POSITIONS] = state[_POSITIONS][offset:]
    types = state[_TYPES]
    if types.shape[0] not in (1, 2):
        raise ConversionError(f"{_TYPES} has {types.shape[0]} token types; RoBERTa has 1 (transformers' default "
                              "config 2)")
    state[_TYPES] = types.expand(2, -1).clone() if types.shape[0] == 1 else types
    return bert.hf_to_uer(state, "mlm" if kind == "mlm" else kind)


def uer_to_hf(uer_state: dict[str, torch.Tensor], kind: str = "mlm", pad_token_id: int = 1) -> dict[str, torch.Tensor]:
    """A HuggingFace RoBERTa state dict (the class of ``HF_ARCHITECTURE[kind]``) from ours."""
    _check_kind(kind)
    state = bert.uer_to_hf(uer_state, kind)
    prefix = "" if kind == "bare" else "bert."
    out = {}
    back = tuple((new, old) for old, new in _RENAMES)
    back_classifier = tuple((new, old) for old, new in _CLASSIFIER_RENAMES) if kind == "text_classification" else ()
    for key, value in state.items():
        if kind == "bare":
            out[key] = value
            continue
        out[_rename(key, back_classifier + back)] = value
    positions_key = prefix.replace("bert.", "roberta.") + "embeddings.position_embeddings.weight"
    types_key = prefix.replace("bert.", "roberta.") + "embeddings.token_type_embeddings.weight"
    positions = out[positions_key]
    out[positions_key] = torch.cat([positions.new_zeros(pad_token_id + 1, positions.shape[1]), positions])
    if torch.equal(out[types_key][0], out[types_key][1]):
        out[types_key] = out[types_key][:1].clone()  # RoBERTa's one token type (else transformers' 2-type form)
    out.pop("lm_head.decoder.bias", None)  # tied to lm_head.bias
    return out


def hf_config(hf_state: dict[str, torch.Tensor], kind: str, model_type: str = "roberta", heads_num: int | None = None,
              hidden_act: str = "gelu", layer_norm_eps: float = 1e-5, pad_token_id: int = 1) -> dict[str, Any]:
    """config.json of ``HF_ARCHITECTURE[kind]`` (model_type ``roberta`` or ``xlm-roberta``)."""
    as_bert = {_rename("roberta." + key if kind == "bare" else key,
                       (("roberta.", "bert."), ("classifier.out_proj.", "classifier."))): value
               for key, value in hf_state.items()}
    # the sizes (and the labels of the classification kinds) as BERT's config reads them
    sizes_kind = kind if kind in ("text_classification", "token_classification") else "extractive_qa"
    config = bert.hf_config(as_bert, sizes_kind, heads_num, hidden_act, layer_norm_eps)
    architecture = HF_ARCHITECTURE[kind]
    if model_type == "xlm-roberta":
        architecture = architecture.replace("Roberta", "XLMRoberta")
    config.pop("tie_word_embeddings", None)
    types = as_bert["bert.embeddings.token_type_embeddings.weight"].shape[0]
    config.update(architectures=[architecture], model_type=model_type, type_vocab_size=int(types), pad_token_id=pad_token_id,
                  bos_token_id=0, eos_token_id=2)
    if kind == "mlm":
        decoder = hf_state.get("lm_head.decoder.weight")
        config["tie_word_embeddings"] = decoder is None or bool(
            torch.equal(decoder, hf_state["roberta.embeddings.word_embeddings.weight"]))
    return config
