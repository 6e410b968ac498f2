"""ALBERT between our (UER-py) key names and HuggingFace's AlbertModel / AlbertForPreTraining.

Ours with ``--factorized_embedding_parameterization --parameter_sharing``: the embedding at emb_size,
``encoder.linear`` (emb_size -> hidden_size, HF's ``embedding_hidden_mapping_in``), one shared layer
``encoder.transformer.*`` (HF's one layer group with one layer), ``target.mlm.*`` (HF's ``predictions``) and
``target.sp.*`` (sentence-order prediction: HF's ``albert.pooler`` + ``sop_classifier``). Kinds: ``albert``
(MLM + SOP, AlbertForPreTraining) and ``mlm`` (AlbertForMaskedLM). A bare AlbertModel file converts with a
warning (no heads). Use the model with an ALBERT config whose ``hidden_act`` is ``gelu_fast`` (HF's default
``gelu_new``) or whatever the HF config names.
"""
from __future__ import annotations

import logging
import re
from typing import Any

import torch

from uer.converters.bert import HF_ACTIVATION, _expand
from uer.converters.common import ConversionError, report_unused
from uer.model_loader import normalize_keys

logger = logging.getLogger(__name__)

HF_LAYER = "albert.encoder.albert_layer_groups.0.albert_layers.0."
KIND_HEADS = {"albert": ("mlm", "sop"), "mlm": ("mlm",)}
HF_ARCHITECTURE = {"albert": "AlbertForPreTraining", "mlm": "AlbertForMaskedLM"}

_ENCODER = _expand(
    (("encoder.linear", "albert.encoder.embedding_hidden_mapping_in"),)
    + tuple((f"encoder.transformer.{ours}", HF_LAYER + theirs) for ours, theirs in (
        ("self_attn.linear_layers.0", "attention.query"), ("self_attn.linear_layers.1", "attention.key"),
        ("self_attn.linear_layers.2", "attention.value"), ("self_attn.final_linear", "attention.dense"),
        ("feed_forward.linear_1", "ffn"), ("feed_forward.linear_2", "ffn_output"))),
    (("embedding.layer_norm", "albert.embeddings.LayerNorm"),
     ("encoder.transformer.layer_norm_1", HF_LAYER + "attention.LayerNorm"),
     ("encoder.transformer.layer_norm_2", HF_LAYER + "full_layer_layer_norm")),
    (("embedding.word.embedding.weight", "albert.embeddings.word_embeddings.weight"),
     ("embedding.pos.embedding.weight", "albert.embeddings.position_embeddings.weight")))
_SEG = ("embedding.seg.embedding.weight", "albert.embeddings.token_type_embeddings.weight")
_HEADS = {
    "mlm": _expand((("target.mlm.linear_1", "predictions.dense"),), (("target.mlm.layer_norm", "predictions.LayerNorm"),),
                   (("target.mlm.linear_2.weight", "predictions.decoder.weight"),
                    ("target.mlm.linear_2.bias", "predictions.bias"))),
    "sop": _expand((("target.sp.linear_1", "albert.pooler"), ("target.sp.linear_2", "sop_classifier.classifier")), ()),
}


def _normalize_hf(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    if "embedding.word.embedding.weight" in normalize_keys(state):
        raise ConversionError("this file already has our (UER) key names; convert it the other way round")
    out = {}
    for key, value in state.items():
        key = re.sub(r"^module\.", "", key)
        if key.startswith(("embeddings.", "encoder.", "pooler.")):  # AlbertModel saves without the prefix
            key = "albert." + key
        if key.endswith(("embeddings.position_ids", "embeddings.token_type_ids")):
            continue
        out[key] = value
    if any(k.startswith("albert.encoder.albert_layer_groups.1.") or ".albert_layers.1." in k for k in out):
        raise ConversionError("the ALBERT file has more than one layer group or inner layer; ours shares one layer")
    return out


def hf_to_uer(hf_state: dict[str, torch.Tensor], kind: str = "albert") -> dict[str, torch.Tensor]:
    """Our state dict from a HuggingFace ALBERT state dict (heads the file lacks are left out, with a warning)."""
    if kind not in KIND_HEADS:
        raise ConversionError(f"unknown ALBERT conversion kind {kind!r} (known: {', '.join(KIND_HEADS)})")
    state = _normalize_hf(hf_state)
    missing = [theirs for _, theirs in _ENCODER + [_SEG] if theirs not in state]
    if missing:
        raise ConversionError(f"the HuggingFace file has no {missing[0]}; is it an ALBERT checkpoint?")
    out = {ours: state[theirs] for ours, theirs in _ENCODER}
    types = state[_SEG[1]]
    if types.shape[0] != 2:
        raise ConversionError(f"{_SEG[1]} has {types.shape[0]} token types; ours needs 2")
    out[_SEG[0]] = torch.cat([types[:1], types], dim=0)  # our row 0 (padding) = HF's type 0, as for BERT
    used = {theirs for _, theirs in _ENCODER + [_SEG]}
    for head in KIND_HEADS[kind]:
        pairs = _HEADS[head]
        if head == "mlm" and "predictions.decoder.weight" not in state and "predictions.bias" in state:
            state["predictions.decoder.weight"] = state["albert.embeddings.word_embeddings.weight"]  # tied
        absent = [theirs for _, theirs in pairs if theirs not in state]
        if absent:
            logger.warning("the HuggingFace file has no complete %s head (%s...): converted without it", head, absent[0])
            continue
        out.update({ours: state[theirs] for ours, theirs in pairs})
        used |= {theirs for _, theirs in pairs} | {"predictions.decoder.bias"}
    report_unused(set(state) - used, "HuggingFace")
    return out


def uer_to_hf(uer_state: dict[str, torch.Tensor], kind: str = "albert") -> dict[str, torch.Tensor]:
    """A HuggingFace AlbertForPreTraining (``albert``) or AlbertForMaskedLM (``mlm``) state dict from ours."""
    if kind not in KIND_HEADS:
        raise ConversionError(f"unknown ALBERT conversion kind {kind!r} (known: {', '.join(KIND_HEADS)})")
    state = normalize_keys(uer_state)
    if "encoder.linear.weight" not in state or any(k.startswith("encoder.transformer.0.") for k in state):
        raise ConversionError("not an ALBERT model: needs factorized embeddings (encoder.linear) and one shared "
                              "layer (encoder.transformer.*, --parameter_sharing)")
    hints = {"mlm": "the model has no MLM head (target.mlm)", "sop": "the model has no sentence-order head "
             "(target.sp; trained with --target mlm?): use --type mlm"}

    def take(ours: str, head: str | None = None) -> torch.Tensor:
        if ours not in state:
            raise ConversionError(f"the UER file has no {ours}" + (f": {hints[head]}" if head else ""))
        return state[ours]

    out = {theirs: take(ours) for ours, theirs in _ENCODER}
    seg = take(_SEG[0])
    if seg.shape[0] != 3:
        raise ConversionError(f"{_SEG[0]} has {seg.shape[0]} rows; ours has 3 (padding, first, second segment)")
    out[_SEG[1]] = seg[1:]
    for head in KIND_HEADS[kind]:
        for ours, theirs in _HEADS[head]:
            if ours == "target.mlm.linear_2.weight" and ours not in state:
                out[theirs] = out["albert.embeddings.word_embeddings.weight"]  # tied, saved once
            else:
                out[theirs] = take(ours, head)
        if head == "mlm":
            out["predictions.decoder.bias"] = out["predictions.bias"]
    used = {ours for ours, _ in _ENCODER + [_SEG]} | {ours for h in KIND_HEADS[kind] for ours, _ in _HEADS[h]}
    report_unused(set(state) - used, "UER", level=logging.INFO)
    return out


def hf_config(hf_state: dict[str, torch.Tensor], kind: str, heads_num: int | None = None, hidden_act: str = "gelu_fast",
              layer_norm_eps: float = 1e-12, layers_num: int | None = None) -> dict[str, Any]:
    """config.json of ``HF_ARCHITECTURE[kind]``; ``layers_num`` (how often the shared layer runs) is not in the
    tensors and must be given (our --config_path or --layers_num)."""
    if layers_num is None:
        raise ConversionError("ALBERT's number of layers is not in its tensors (they are shared): give --config_path "
                              "or --layers_num")
    vocab_size, emb_size = hf_state["albert.embeddings.word_embeddings.weight"].shape
    hidden_size = hf_state["albert.encoder.embedding_hidden_mapping_in.weight"].shape[0]
    heads_num = heads_num or max(1, hidden_size // 64)
    if hidden_act not in HF_ACTIVATION:
        raise ConversionError(f"hidden_act {hidden_act!r} has no HuggingFace name (known: {', '.join(HF_ACTIVATION)})")
    word = hf_state["albert.embeddings.word_embeddings.weight"]
    decoder = hf_state.get("predictions.decoder.weight")
    return {"architectures": [HF_ARCHITECTURE[kind]], "model_type": "albert", "vocab_size": int(vocab_size),
            "embedding_size": int(emb_size), "hidden_size": int(hidden_size), "num_hidden_layers": int(layers_num),
            "num_hidden_groups": 1, "inner_group_num": 1, "num_attention_heads": int(heads_num),
            "intermediate_size": int(hf_state[HF_LAYER + "ffn.weight"].shape[0]), "hidden_act": HF_ACTIVATION[hidden_act],
            "hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0,
            "max_position_embeddings": int(hf_state["albert.embeddings.position_embeddings.weight"].shape[0]),
            "type_vocab_size": 2, "initializer_range": 0.02, "layer_norm_eps": layer_norm_eps, "pad_token_id": 0,
            "tie_word_embeddings": decoder is None or bool(torch.equal(decoder, word))}
