"""GPT-2 between HuggingFace's GPT2LMHeadModel and our transformer encoder with causal mask, pre-LayerNorm
layers, a final encoder layer norm and the lm target (models/gpt2/config.json).

HF's GPT-2 stores its projections as ``Conv1D`` weights, [in x out] (the transpose of a torch Linear
weight), and the query, key and value projections as one ``c_attn`` matrix [hidden x 3*hidden], which
ours keeps as three Linear layers. Buffers (``attn.bias``, ``attn.masked_bias``: the causal mask) are skipped.
"""
from __future__ import annotations

import logging
import re
from typing import Any

import torch

from uer.converters.bert import HF_ACTIVATION
from uer.converters.common import ConversionError, infer_layers_num, report_unused
from uer.model_loader import normalize_keys

logger = logging.getLogger(__name__)

HF_LAYER = r"^transformer\.h\.(\d+)\."
UER_LAYER = r"^encoder\.transformer\.(\d+)\."
_BUFFER = re.compile(r"^transformer\.h\.\d+\.attn\.(bias|masked_bias)$")
# (ours, HF, transpose): Conv1D weights are [in x out]
_LAYER = (("layer_norm_1.gamma", "ln_1.weight", False), ("layer_norm_1.beta", "ln_1.bias", False),
          ("self_attn.final_linear.weight", "attn.c_proj.weight", True), ("self_attn.final_linear.bias", "attn.c_proj.bias", False),
          ("layer_norm_2.gamma", "ln_2.weight", False), ("layer_norm_2.beta", "ln_2.bias", False),
          ("feed_forward.linear_1.weight", "mlp.c_fc.weight", True), ("feed_forward.linear_1.bias", "mlp.c_fc.bias", False),
          ("feed_forward.linear_2.weight", "mlp.c_proj.weight", True), ("feed_forward.linear_2.bias", "mlp.c_proj.bias", False))
_TOP = (("embedding.word.embedding.weight", "transformer.wte.weight"),
        ("embedding.pos.embedding.weight", "transformer.wpe.weight"),
        ("encoder.layer_norm.gamma", "transformer.ln_f.weight"), ("encoder.layer_norm.beta", "transformer.ln_f.bias"))
_OUTPUT = ("target.lm.output_layer.weight", "lm_head.weight")


def hf_to_uer(hf_state: dict[str, torch.Tensor], layers_num: int | None = None) -> dict[str, torch.Tensor]:
    """Ours from a GPT2LMHeadModel (or GPT2Model, without the ``transformer.`` prefix) state dict."""
    state = {}
    for key, value in hf_state.items():
        key = re.sub(r"^module\.", "", key)
        if key.startswith(("wte.", "wpe.", "h.", "ln_f.")):  # GPT2Model saves without the prefix
            key = "transformer." + key
        if not _BUFFER.match(key):
            state[key] = value
    layers_num = infer_layers_num(state, HF_LAYER, layers_num, "HuggingFace GPT-2")
    used: set[str] = set()

    def take(key: str) -> torch.Tensor:
        if key not in state:
            raise ConversionError(f"the HuggingFace file has no {key}; is it a GPT-2 checkpoint?")
        used.add(key)
        return state[key]

    out = {ours: take(theirs) for ours, theirs in _TOP}
    for i in range(layers_num):
        ours, theirs = f"encoder.transformer.{i}.", f"transformer.h.{i}."
        for our_name, their_name, transpose in _LAYER:
            value = take(theirs + their_name)
            out[ours + our_name] = value.t().contiguous() if transpose else value
        # c_attn: [hidden x 3*hidden] -> query, key, value Linear weights [hidden x hidden] each
        weights = take(theirs + "attn.c_attn.weight").chunk(3, dim=1)
        biases = take(theirs + "attn.c_attn.bias").chunk(3, dim=0)
        for j in range(3):
            out[f"{ours}self_attn.linear_layers.{j}.weight"] = weights[j].t().contiguous()
            out[f"{ours}self_attn.linear_layers.{j}.bias"] = biases[j].contiguous()
    # HF's safetensors leave out lm_head.weight: it is tied to the word embedding.
    out[_OUTPUT[0]] = state.get(_OUTPUT[1], out["embedding.word.embedding.weight"])
    used.add(_OUTPUT[1])
    report_unused(set(state) - used, "HuggingFace GPT-2")
    return out


def uer_to_hf(uer_state: dict[str, torch.Tensor], layers_num: int | None = None) -> dict[str, torch.Tensor]:
    """A GPT2LMHeadModel state dict from ours."""
    state = normalize_keys(uer_state)
    if "encoder.layer_norm.gamma" not in state:
        raise ConversionError("the model has no final encoder layer norm: not a pre-LayerNorm (GPT-2) model "
                              "(a BERT-style model converts with convert_bert_from_uer_to_huggingface.py)")
    if "target.lm.output_layer.bias" in state:
        raise ConversionError("the lm target has a bias (--has_lmtarget_bias); GPT-2's lm_head has none")
    if "embedding.seg.embedding.weight" in state or "embedding.layer_norm.gamma" in state:
        raise ConversionError("GPT-2 has neither segment embeddings nor an embedding layer norm; this model has")
    layers_num = infer_layers_num(state, UER_LAYER, layers_num, "UER")
    used: set[str] = set()

    def take(key: str) -> torch.Tensor:
        if key not in state:
            raise ConversionError(f"the UER file has no {key}")
        used.add(key)
        return state[key]

    out = {theirs: take(ours) for ours, theirs in _TOP}
    for i in range(layers_num):
        ours, theirs = f"encoder.transformer.{i}.", f"transformer.h.{i}."
        for our_name, their_name, transpose in _LAYER:
            value = take(ours + our_name)
            out[theirs + their_name] = value.t().contiguous() if transpose else value
        out[theirs + "attn.c_attn.weight"] = torch.cat(
            [take(f"{ours}self_attn.linear_layers.{j}.weight").t() for j in range(3)], dim=1)
        out[theirs + "attn.c_attn.bias"] = torch.cat([take(f"{ours}self_attn.linear_layers.{j}.bias") for j in range(3)])
    out[_OUTPUT[1]] = state.get(_OUTPUT[0], out["transformer.wte.weight"])
    used.add(_OUTPUT[0])
    report_unused(set(state) - used, "UER", level=logging.INFO)
    return out


def hf_config(hf_state: dict[str, torch.Tensor], heads_num: int | None = None, hidden_act: str = "gelu_fast",
              layer_norm_eps: float = 1e-5) -> dict[str, Any]:
    """config.json for GPT2LMHeadModel; heads default to 64 dimensions each (every GPT-2 size)."""
    if hidden_act not in HF_ACTIVATION:
        raise ConversionError(f"hidden_act {hidden_act!r} has no HuggingFace name (known: {', '.join(HF_ACTIVATION)})")
    vocab_size, hidden_size = hf_state["transformer.wte.weight"].shape
    heads_num = heads_num or max(1, hidden_size // 64)
    if hidden_size % heads_num:
        raise ConversionError(f"hidden_size {hidden_size} is not divisible by heads_num {heads_num}")
    return {
        "architectures": ["GPT2LMHeadModel"], "model_type": "gpt2",
        "vocab_size": int(vocab_size), "n_embd": int(hidden_size), "n_head": int(heads_num),
        "n_layer": infer_layers_num(hf_state, HF_LAYER, None, "HuggingFace GPT-2"),
        "n_positions": int(hf_state["transformer.wpe.weight"].shape[0]),
        "n_inner": int(hf_state["transformer.h.0.mlp.c_fc.weight"].shape[1]),
        "activation_function": HF_ACTIVATION[hidden_act], "layer_norm_epsilon": layer_norm_eps,
        "resid_pdrop": 0.1, "embd_pdrop": 0.1, "attn_pdrop": 0.1, "initializer_range": 0.02,
        "tie_word_embeddings": bool(torch.equal(hf_state["lm_head.weight"], hf_state["transformer.wte.weight"])),
    }
