"""BERT between our (UER-py) key names and HuggingFace's.

Which heads travel with the encoder is the *kind* of the conversion:

=====================  =============================  ==========================================
kind                   our heads                      HuggingFace class
=====================  =============================  ==========================================
bert                   target.mlm + target.sp         BertForPreTraining
mlm                    target.mlm                     BertForMaskedLM
text_classification    output_layer_1/2 (run_classifier.py, pooling "first")  BertForSequenceClassification
token_classification   output_layer (run_ner.py)      BertForTokenClassification
extractive_qa          output_layer (run_cmrc.py)     BertForQuestionAnswering (``qa_outputs``)
multiple_choice        output_layer_1/2 (run_c3.py    BertForMultipleChoice (pooler + ``classifier``)
                       and run_chid.py, HF's form)
bare                   none (an encoder alone)        BertModel (without its pooler)
=====================  =============================  ==========================================

UER-py's run_c3.py scores a choice with ``output_layer`` straight on the first position, without BERT's
pooler; such a model has no BertForMultipleChoice form (HF applies tanh(pooler) first) and is refused. A
BertForMultipleChoice converted here keeps its pooler as ``output_layer_1`` and run_c3.py uses it.

Reading HF files accepts the key sets of BertModel (no ``bert.`` prefix), BertForPreTraining and
BertForMaskedLM, the old ``LayerNorm.gamma``/``beta`` names, and skips buffers such as
``embeddings.position_ids``. Everything else that is not converted is named in the log.
"""
from __future__ import annotations

import logging
import re
from typing import Any

import torch

from uer.converters.common import ConversionError, infer_layers_num, report_unused
from uer.model_loader import normalize_keys

logger = logging.getLogger(__name__)

KIND_HEADS: dict[str, tuple[str, ...]] = {
    "bert": ("mlm", "sp"),
    "mlm": ("mlm",),
    "text_classification": ("classifier",),
    "token_classification": ("tagger",),
    "extractive_qa": ("span",),
    "multiple_choice": ("choice",),
    "bare": (),
}
HF_ARCHITECTURE = {
    "bert": "BertForPreTraining",
    "mlm": "BertForMaskedLM",
    "text_classification": "BertForSequenceClassification",
    "token_classification": "BertForTokenClassification",
    "extractive_qa": "BertForQuestionAnswering",
    "multiple_choice": "BertForMultipleChoice",
    "bare": "BertModel",
}
# Our activation names -> HF's (gelu_fast is the tanh approximation HF calls gelu_new).
HF_ACTIVATION = {"gelu": "gelu", "gelu_fast": "gelu_new", "relu": "relu", "silu": "silu", "tanh": "tanh",
                 "linear": "linear"}

HF_LAYER = r"^bert\.encoder\.layer\.(\d+)\."
UER_LAYER = r"^encoder\.transformer\.(\d+)\."
# Non-persistent buffers that older HF versions saved; they carry no weights.
HF_BUFFER_SUFFIXES = ("embeddings.position_ids", "embeddings.token_type_ids")

_EMBEDDING = (("embedding.word.embedding.weight", "bert.embeddings.word_embeddings.weight"),
              ("embedding.pos.embedding.weight", "bert.embeddings.position_embeddings.weight"))
_EMBEDDING_NORM = (("embedding.layer_norm", "bert.embeddings.LayerNorm"),)
_LAYER_LINEARS = (("self_attn.linear_layers.0", "attention.self.query"),
                  ("self_attn.linear_layers.1", "attention.self.key"),
                  ("self_attn.linear_layers.2", "attention.self.value"),
                  ("self_attn.final_linear", "attention.output.dense"),
                  ("feed_forward.linear_1", "intermediate.dense"),
                  ("feed_forward.linear_2", "output.dense"))
_LAYER_NORMS = (("layer_norm_1", "attention.output.LayerNorm"), ("layer_norm_2", "output.LayerNorm"))
_HEAD_LINEARS = {
    "mlm": (("target.mlm.linear_1", "cls.predictions.transform.dense"),),
    "sp": (("target.sp.linear_1", "bert.pooler.dense"), ("target.sp.linear_2", "cls.seq_relationship")),
    # UER-py's classifier: output_layer_2(tanh(output_layer_1(h[:, 0]))) is HF's pooler + classifier.
    "classifier": (("output_layer_1", "bert.pooler.dense"), ("output_layer_2", "classifier")),
    "tagger": (("output_layer", "classifier"),),
    "span": (("output_layer", "qa_outputs"),),
    # HF's pooler + a one-score classifier; the keys are run_classifier.py's for the same two layers.
    "choice": (("output_layer_1", "bert.pooler.dense"), ("output_layer_2", "classifier")),
}
_HEAD_NORMS = {"mlm": (("target.mlm.layer_norm", "cls.predictions.transform.LayerNorm"),)}
_HEAD_TENSORS = {"mlm": (("target.mlm.linear_2.bias", "cls.predictions.bias"),)}
_SEG = ("embedding.seg.embedding.weight", "bert.embeddings.token_type_embeddings.weight")
_POOLER = ("target.sp.linear_1", "bert.pooler.dense")
_DECODER = ("target.mlm.linear_2.weight", "cls.predictions.decoder.weight")


def _expand(linears: tuple, norms: tuple, tensors: tuple = ()) -> list[tuple[str, str]]:
    """(our key, HF key) pairs: Linear weight/bias keep their names; our norms' gamma/beta are HF's weight/bias."""
    pairs = list(tensors)
    for ours, theirs in linears:
        pairs += [(f"{ours}.weight", f"{theirs}.weight"), (f"{ours}.bias", f"{theirs}.bias")]
    for ours, theirs in norms:
        pairs += [(f"{ours}.gamma", f"{theirs}.weight"), (f"{ours}.beta", f"{theirs}.bias")]
    return pairs


def encoder_pairs(layers_num: int) -> list[tuple[str, str]]:
    """(our key, HF key) for the embedding (without the segment rows) and every encoder layer."""
    pairs = _expand((), _EMBEDDING_NORM, _EMBEDDING)
    for i in range(layers_num):
        pairs += [(f"encoder.transformer.{i}.{ours}", f"bert.encoder.layer.{i}.{theirs}")
                  for ours, theirs in _expand(_LAYER_LINEARS, _LAYER_NORMS)]
    return pairs


def head_pairs(head: str) -> list[tuple[str, str]]:
    """(our key, HF key) for one head; the MLM decoder weight is handled apart (it is tied)."""
    return _expand(_HEAD_LINEARS.get(head, ()), _HEAD_NORMS.get(head, ()), _HEAD_TENSORS.get(head, ()))


def _check_kind(kind: str) -> tuple[str, ...]:
    if kind not in KIND_HEADS:
        raise ConversionError(f"unknown conversion kind {kind!r} (known: {', '.join(KIND_HEADS)})")
    return KIND_HEADS[kind]


def normalize_hf_keys(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """HF keys of any generation as BertForPreTraining names them; buffers dropped."""
    if "embedding.word.embedding.weight" in normalize_keys(state):
        raise ConversionError("this file already has our (UER) key names; convert it the other way round")
    out = {}
    for key, value in state.items():
        key = re.sub(r"^module\.", "", key)
        if key.startswith(("embeddings.", "encoder.", "pooler.")):  # BertModel saves without the prefix
            key = "bert." + key
        key = re.sub(r"LayerNorm\.gamma$", "LayerNorm.weight", key)  # pytorch-pretrained-bert names
        key = re.sub(r"LayerNorm\.beta$", "LayerNorm.bias", key)
        if key.endswith(HF_BUFFER_SUFFIXES):
            continue
        out[key] = value
    return out


def hf_to_uer(hf_state: dict[str, torch.Tensor], kind: str = "bert",
              layers_num: int | None = None) -> dict[str, torch.Tensor]:
    """Our state dict from a HuggingFace BERT state dict.

    Embedding and encoder tensors must all be there. For the pre-training kinds a head the file does
    not have (BertModel has no MLM head, BertForMaskedLM no next-sentence head) is left out with a
    warning: our loader then gives it a fresh initialisation and says so. Task heads must be there.
    """
    heads = _check_kind(kind)
    state = normalize_hf_keys(hf_state)
    layers_num = infer_layers_num(state, HF_LAYER, layers_num, "HuggingFace")
    used: set[str] = set()

    def take(key: str) -> torch.Tensor:
        if key not in state:
            raise ConversionError(f"the HuggingFace file has no {key}; is it a BERT checkpoint?")
        used.add(key)
        return state[key]

    out = {ours: take(theirs) for ours, theirs in encoder_pairs(layers_num)}
    token_types = take(_SEG[1])
    if token_types.shape[0] != 2:
        raise ConversionError(f"{_SEG[1]} has {token_types.shape[0]} token types; BERT (and our 3-row segment "
                              "embedding: padding, first, second) needs 2")
    # Our row 0 is used only at padding (seg 0), where HF's inputs carry token type 0: copying HF's type-0
    # row there makes even the padding positions compute what HF computes (UER-py wrote zeros, which no
    # real position ever reads). Rows 1 and 2 are HF's types 0 and 1.
    out[_SEG[0]] = torch.cat([token_types[:1], token_types], dim=0)

    for head in heads:
        pairs = head_pairs(head) + ([_DECODER] if head == "mlm" else [])
        if head == "mlm" and _DECODER[1] not in state and "cls.predictions.bias" in state:
            # HF's safetensors files leave out the decoder weight: it is tied to the word embedding.
            state[_DECODER[1]] = state["bert.embeddings.word_embeddings.weight"]
        missing = [theirs for _, theirs in pairs if theirs not in state]
        if missing and (kind not in ("bert", "mlm") or head == "mlm" and len(missing) < len(pairs)):
            raise ConversionError(f"the HuggingFace file lacks {missing[:4]} of the {head} head")
        if missing:
            hint = "a BertForMaskedLM or BertModel file? use --type mlm" if head == "sp" else "a bare BertModel file?"
            logger.warning("the HuggingFace file has no complete %s head (%s): converted without %s", head, hint,
                           [ours for ours, theirs in pairs if theirs in missing])
        for ours, theirs in pairs:
            if theirs in state:
                out[ours] = take(theirs)
        if head == "mlm":
            used.add("cls.predictions.decoder.bias")  # HF ties it to cls.predictions.bias
    if kind == "bare" and _POOLER[1] + ".weight" in state:
        # BertModel's pooler (sentence-transformers folders have one): kept where our model holds BERT's pooler,
        # the first layer of the next-sentence head, so that the way back writes it again
        for suffix in (".weight", ".bias"):
            out[_POOLER[0] + suffix] = take(_POOLER[1] + suffix)
    unused = set(state) - used
    # Heads the chosen kind leaves out on purpose (--type mlm drops the next-sentence head) are no surprise.
    dropped = {theirs for head in ("mlm", "sp") if head not in heads for _, theirs in head_pairs(head)}
    dropped |= {"cls.predictions.decoder.weight", "cls.predictions.decoder.bias"} if "mlm" not in heads else set()
    report_unused(unused & dropped, "HuggingFace", level=logging.INFO)
    report_unused(unused - dropped, "HuggingFace")
    return out


def _check_bert_layout(state: dict[str, torch.Tensor]) -> None:
    if any(key.startswith("encoder.transformer.self_attn.") for key in state):
        raise ConversionError("the model shares one layer's parameters across layers (ALBERT, --parameter_sharing); "
                              "HF's BERT classes cannot hold it")
    if "encoder.linear.weight" in state:
        raise ConversionError("the model uses factorized embeddings (ALBERT, emb_size != hidden_size); "
                              "HF's BERT classes cannot hold it")
    if "encoder.layer_norm.gamma" in state:
        raise ConversionError("the model has a final encoder layer norm (pre-LayerNorm, GPT-2 style); "
                              "BERT is post-LayerNorm")


def uer_to_hf(uer_state: dict[str, torch.Tensor], kind: str = "bert",
              layers_num: int | None = None) -> dict[str, torch.Tensor]:
    """A HuggingFace state dict (the class in ``HF_ARCHITECTURE[kind]``) from ours; every head asked for must exist."""
    heads = _check_kind(kind)
    state = normalize_keys(uer_state)  # 2020-era names too
    _check_bert_layout(state)
    layers_num = infer_layers_num(state, UER_LAYER, layers_num, "UER")
    used: set[str] = set()
    hints = {"sp": "the model has no next-sentence head (trained with --target mlm?): use --type mlm",
             "mlm": "the model has no MLM head (a fine-tuned model?): use "
                    "convert_bert_{text,token}_classification_from_uer_to_huggingface.py",
             "classifier": "not a run_classifier.py model",
             "tagger": "not a run_ner.py model",
             "span": "not a run_cmrc.py model",
             "choice": "not a multiple-choice model with a pooler (output_layer_1/output_layer_2)"}
    if kind == "text_classification":
        logger.info("BertForSequenceClassification pools the first position: its logits equal ours for models "
                    "fine-tuned with --pooling first (the default), not mean/max/last")

    def take(key: str, head: str | None = None) -> torch.Tensor:
        if key not in state:
            raise ConversionError(f"the UER file has no {key}" + (f": {hints[head]}" if head else ""))
        used.add(key)
        return state[key]

    out = {theirs: take(ours) for ours, theirs in encoder_pairs(layers_num)}
    seg = take(_SEG[0])
    if seg.shape[0] != 3:
        raise ConversionError(f"{_SEG[0]} has {seg.shape[0]} rows; ours has 3 (padding, first, second segment)")
    out[_SEG[1]] = seg[1:]  # HF token types 0/1 are our segments 1/2; row 0 (padding) has no HF counterpart
    for head in heads:
        for ours, theirs in head_pairs(head):
            out[theirs] = take(ours, head)
        if head == "mlm":
            # A file may leave out the tied copy; then the output layer is the word embedding.
            decoder = state.get(_DECODER[0], out["bert.embeddings.word_embeddings.weight"])
            used.add(_DECODER[0])
            out[_DECODER[1]] = decoder
            out["cls.predictions.decoder.bias"] = out["cls.predictions.bias"]
    if kind == "multiple_choice" and "output_layer.weight" in state and "output_layer_1.weight" not in state:
        raise ConversionError("the multiple-choice model scores the first position with output_layer directly "
                              "(UER-py's run_c3.py form, no pooler); BertForMultipleChoice applies tanh(pooler) "
                              "first and cannot hold it")
    if kind == "token_classification" and any(key.startswith("crf.") for key in state):
        raise ConversionError("the NER model has a CRF layer (--crf_target), which BertForTokenClassification lacks")
    if kind == "bare":
        # BertModel's own keys have no "bert." prefix. Its pooler is our next-sentence head's first layer when the
        # file has it (a BertModel converted here); else HF initialises it and says so (sentence-embedding
        # pooling does not use it).
        if _POOLER[0] + ".weight" in state:
            for suffix in (".weight", ".bias"):
                out[_POOLER[1] + suffix] = take(_POOLER[0] + suffix)
        else:
            logger.info("bare BertModel: the encoder only; its pooler is not in the UER file")
        out = {key.removeprefix("bert."): value for key, value in out.items()}
    report_unused(set(state) - used, "UER", level=logging.INFO)
    return out


def mlm_weights_tied(hf_state: dict[str, torch.Tensor]) -> bool:
    """Whether the MLM output layer equals the word embedding (HF's tie_word_embeddings)."""
    decoder = hf_state.get(_DECODER[1])
    return decoder is None or torch.equal(decoder, hf_state["bert.embeddings.word_embeddings.weight"])


def hf_config(hf_state: dict[str, torch.Tensor], kind: str, heads_num: int | None = None, hidden_act: str = "gelu",
              layer_norm_eps: float = 1e-12) -> dict[str, Any]:
    """config.json for ``HF_ARCHITECTURE[kind]`` with the sizes read from the converted state dict.

    The number of heads is not in the tensors' shapes: it comes from ``heads_num`` (our --config_path or
    --heads_num), else BERT's convention of 64 dimensions per head (true of every Google BERT size).
    """
    if kind == "bare":
        hf_state = {f"bert.{key}": value for key, value in hf_state.items()}
    vocab_size, hidden_size = hf_state["bert.embeddings.word_embeddings.weight"].shape
    if heads_num is None:
        heads_num = max(1, hidden_size // 64)
        logger.info("heads_num not given: assuming %d (64 dimensions per head)", heads_num)
    if hidden_size % heads_num:
        raise ConversionError(f"hidden_size {hidden_size} is not divisible by heads_num {heads_num}")
    if hidden_act not in HF_ACTIVATION:
        raise ConversionError(f"hidden_act {hidden_act!r} has no HuggingFace name (known: {', '.join(HF_ACTIVATION)})")
    config: dict[str, Any] = {
        "architectures": [HF_ARCHITECTURE[kind]],
        "model_type": "bert",
        "vocab_size": int(vocab_size),
        "hidden_size": int(hidden_size),
        "num_hidden_layers": infer_layers_num(hf_state, HF_LAYER, None, "HuggingFace"),
        "num_attention_heads": int(heads_num),
        "intermediate_size": int(hf_state["bert.encoder.layer.0.intermediate.dense.weight"].shape[0]),
        "hidden_act": HF_ACTIVATION[hidden_act],
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "max_position_embeddings": int(hf_state["bert.embeddings.position_embeddings.weight"].shape[0]),
        "type_vocab_size": 2,
        "initializer_range": 0.02,
        "layer_norm_eps": layer_norm_eps,
        "pad_token_id": 0,
    }
    if kind in ("bert", "mlm"):
        # UER-py trains with untied MLM output weights by default; HF would overwrite them if told they are tied.
        config["tie_word_embeddings"] = mlm_weights_tied(hf_state)
    elif kind in ("text_classification", "token_classification"):
        labels = int(hf_state["classifier.weight"].shape[0])
        config["id2label"] = {str(i): f"LABEL_{i}" for i in range(labels)}
        config["label2id"] = {f"LABEL_{i}": i for i in range(labels)}
    return config
