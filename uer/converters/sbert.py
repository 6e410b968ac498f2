"""Sentence-BERT <-> HuggingFace / sentence-transformers: the BERT tower of a sentence-transformers model (its
``BertModel`` weights, ``model.safetensors`` or ``pytorch_model.bin`` in the model folder) and our siamese
file (run_classifier_siamese.py's layout: ``embedding.embedding_{0,1}.*``, ``encoder.encoder_{0,1}.*``, the
spelling of UER-py's SBERT converters).

HF -> ours writes the tower twice (both names hold the same tensors: tied towers, stored once in a .bin file)
and keeps BertModel's pooler as ``target.sp.linear_1`` (BERT's pooler is the first layer of its next-sentence
head, where our BERT converter puts it too), so the round trip gives back every tensor. Ours -> HF writes
tower 0 (and the pooler when the file has it) as a bare ``BertModel``. Sentence-transformers' pooling (mean,
in its ``1_Pooling/config.json``) is --pooling in our commands.
"""
from __future__ import annotations

import logging
import re

import torch

from uer.converters import bert
from uer.converters.common import ConversionError, report_unused
from uer.model_loader import normalize_keys

logger = logging.getLogger(__name__)

POOLER = (("target.sp.linear_1.weight", "pooler.dense.weight"), ("target.sp.linear_1.bias", "pooler.dense.bias"))


def hf_to_uer(hf_state: dict[str, torch.Tensor], layers_num: int | None = None) -> dict[str, torch.Tensor]:
    """Our siamese state dict (both towers) from a sentence-transformers / HF BertModel state dict."""
    state = bert.normalize_hf_keys(hf_state)
    pooler = {ours: state.pop("bert." + theirs) for ours, theirs in POOLER if "bert." + theirs in state}
    tower = bert.hf_to_uer(state, "bare", layers_num)
    out = {}
    for key, value in tower.items():
        head, _, rest = key.partition(".")
        out[f"{head}.{head}_0.{rest}"] = value
        out[f"{head}.{head}_1.{rest}"] = value
    out.update(pooler)
    return out


def uer_to_hf(uer_state: dict[str, torch.Tensor], layers_num: int | None = None) -> dict[str, torch.Tensor]:
    """A HF BertModel state dict (tower 0, and the pooler when present) from our siamese file (either spelling)
    or a single-tower file."""
    from uer.finetune.tasks.siamese import TOWER_KEYS, tower_state

    state = tower_state(normalize_keys(uer_state), "the UER file")
    if not any(TOWER_KEYS.match(key) for key in state):
        raise ConversionError("the UER file has no tower (embedding.embedding_0.*, encoder.encoder_0.*)")
    tower, other = {}, {}
    for key, value in state.items():
        match = TOWER_KEYS.match(key)
        if match and match.group(2) == "0":
            tower[match.group(1) + "." + key[match.end():]] = value
        elif match:
            other[match.group(1) + "." + key[match.end():]] = value
    if any(key in tower and not torch.equal(tower[key], value) for key, value in other.items()):
        logger.warning("the two towers differ (tie_weights false): writing tower 0 (text_a's)")
    out = bert.uer_to_hf(tower, "bare", layers_num)
    for ours, theirs in POOLER:
        if ours in state:
            out[theirs] = state[ours]
    used = {key for key in state if TOWER_KEYS.match(key)} | {ours for ours, _ in POOLER}
    report_unused([key for key in state if key not in used and not re.match(r"^classifier\.", key)], "UER")
    if "classifier.weight" in state:
        logger.info("the siamese classifier (classifier.*) has no place in a sentence-transformers model: left out")
    return out
