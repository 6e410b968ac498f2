"""Loading model files safely, with UER-py's key generations and clear errors.

Never unpickles arbitrary objects: ``.bin`` files go through ``torch.load(weights_only=True)`` and
``.safetensors`` through safetensors. Keys are never ignored silently (UER-py loads with
``strict=False``, so a misnamed file leaves random weights without a word).
"""
from __future__ import annotations

import logging
import os
import pickle
import re

import torch
from torch import nn

from uer.model_saver import unwrap

logger = logging.getLogger(__name__)


class ModelLoadError(RuntimeError):
    """A model file that cannot be loaded as asked; the message names the file and the problem."""


# 2020-era UER-py key prefixes -> current ones (design.md §3).
LEGACY_KEY_PREFIXES = [
    ("embedding.word_embedding.", "embedding.word.embedding."),
    ("embedding.position_embedding.", "embedding.pos.embedding."),
    ("embedding.segment_embedding.", "embedding.seg.embedding."),
    ("target.mlm_linear_1.", "target.mlm.linear_1."),
    ("target.mlm_linear_2.", "target.mlm.linear_2."),
    ("target.layer_norm.", "target.mlm.layer_norm."),
    ("target.nsp_linear_1.", "target.sp.linear_1."),
    ("target.nsp_linear_2.", "target.sp.linear_2."),
    ("target.sop_linear_1.", "target.sp.linear_1."),
    ("target.sop_linear_2.", "target.sp.linear_2."),
    # GPT-2 files of UER-py's 2020 model zoo and converters (the lm target was the model's only target).
    ("target.output_layer.", "target.lm.output_layer."),
]


def load_state_dict(path: str | os.PathLike, normalize: bool = True) -> dict[str, torch.Tensor]:
    """Read a model file into a CPU state dict of tensors; refuse anything else.

    Keys get current UER-py names (:func:`normalize_keys`) unless ``normalize`` is False (converters
    reading other tools' files, and the legacy rewriter, which reports what it renamed).
    """
    path = str(path)
    if not os.path.isfile(path):
        raise ModelLoadError(f"model file not found: {path}")
    if path.endswith(".safetensors"):
        from safetensors.torch import load_file

        try:
            state = load_file(path, device="cpu")
        except Exception as err:  # safetensors raises its own error types
            raise ModelLoadError(f"{path}: not a readable safetensors file ({err})") from None
    else:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as err:
            raise ModelLoadError(
                f"{path}: refused: the file holds pickled objects other than tensors, which could run code "
                f"when loaded ({str(err).splitlines()[0]})") from None
        except (RuntimeError, EOFError, OSError) as err:
            raise ModelLoadError(f"{path}: not a readable model file ({str(err).splitlines()[0]})") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ModelLoadError(f"{path}: expected a state dict mapping names to tensors, found {type(state).__name__}")
    return normalize_keys(state) if normalize else dict(state)


def normalize_keys(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Current UER-py names for keys of any generation; drops a DDP ``module.`` prefix."""
    out = {}
    for key, value in state.items():
        key = re.sub(r"^module\.", "", key)
        for old, new in LEGACY_KEY_PREFIXES:
            if key.startswith(old):
                key = new + key[len(old):]
                break
        out[key] = value
    return out


def load_model_weights(model: nn.Module, path: str | os.PathLike, strict_prefixes: tuple[str, ...] = ("embedding.", "encoder."),
                       state: dict[str, torch.Tensor] | None = None) -> dict[str, list[str]]:
    """Load ``path`` into ``model``.

    Shapes must match everywhere (the error names the first mismatched key, both shapes and the likely
    cause). Keys under ``strict_prefixes`` (the embedding and encoder) must match exactly: a missing or
    unexpected one is an error. Elsewhere (targets, task heads) missing keys keep their fresh
    initialisation and unexpected ones are skipped; both are reported in the log.
    ``state``: the file's state dict when the caller has read it already (``path`` then only names it).
    Returns ``{"missing": [...], "unexpected": [...]}``.
    """
    model = unwrap(model)
    state = load_state_dict(path) if state is None else state
    own = model.state_dict()
    for key, value in state.items():
        if key in own and own[key].shape != value.shape:
            raise ModelLoadError(
                f"{path}: shape mismatch at {key}: file has {tuple(value.shape)}, model expects {tuple(own[key].shape)}. "
                + _likely_cause(key))
    missing = [key for key in own if key not in state]
    unexpected = [key for key in state if key not in own]
    strict_missing = [key for key in missing if key.startswith(strict_prefixes)]
    strict_unexpected = [key for key in unexpected if key.startswith(strict_prefixes)]
    if strict_missing or strict_unexpected:
        raise ModelLoadError(
            f"{path}: embedding/encoder keys do not match the model built from the config "
            f"(missing {len(strict_missing)}: {strict_missing[:5]}; unexpected {len(strict_unexpected)}: "
            f"{strict_unexpected[:5]}). Check --config_path, --embedding, --encoder and the layer sharing flags.")
    result = model.load_state_dict({k: v for k, v in state.items() if k in own}, strict=False)
    if missing:
        logger.warning("%s: %d keys not in the file keep their random initialisation: %s", path, len(missing), missing[:10])
    if unexpected:
        logger.warning("%s: %d keys in the file are not used by this model: %s", path, len(unexpected), unexpected[:10])
    del result
    return {"missing": missing, "unexpected": unexpected}


def _likely_cause(key: str) -> str:
    if key.startswith(("embedding.word.", "target.mlm.linear_2")):
        return "Likely cause: a different vocabulary (--vocab_path / --spm_model_path) than the model was trained with."
    if key.startswith("embedding.pos."):
        return "Likely cause: max_seq_length in --config_path differs from the model's."
    return "Likely cause: --config_path describes a different model size (hidden_size, feedforward_size, emb_size)."
