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

from uer.errors import UserError
from uer.model_saver import unwrap

logger = logging.getLogger(__name__)


class ModelLoadError(UserError, RuntimeError):
    """A model file that cannot be loaded as asked; the message names the file and the problem."""


# 2020-era UER-py key prefixes -> current ones (docs/architecture.md, "Checkpoints").
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


def load_state_dict(path: str | os.PathLike, normalize: bool = True, finite: bool = True,
                    convert_hf: bool = True) -> dict[str, torch.Tensor]:
    """Read a model file, or an HF model folder, into a CPU state dict of tensors; refuse anything else.

    Keys get current UER-py names (:func:`normalize_keys`) unless ``normalize`` is False (converters
    reading other tools' files, and the legacy rewriter, which reports what it renamed). With ``normalize``
    and ``convert_hf``, an HF model folder (uer/hf_folder.py) or a file with HF's key names (BERT, RoBERTa,
    ALBERT, GPT-2) is converted on the fly through the converters' key tables, with a log line saying so.
    NaN or infinite weights are refused unless ``finite`` is False (scripts/check_model.py, which reports them).
    """
    path = str(path)
    if os.path.isdir(path):
        from uer.hf_folder import HFFolder, is_hf_folder

        if not is_hf_folder(path):
            raise ModelLoadError("is a directory, but a model file or an HF model folder (config.json with "
                                 "model_type, and its weights) is expected here", path)
        folder = HFFolder(path)
        if not normalize:
            return folder.hf_state_dict()
        logger.info("%s: HF %s folder (%s): converting its weights to our key names", path, folder.model_type,
                    folder.architecture or "no architectures entry")
        state = folder.uer_state_dict()
        if finite:
            check_finite_weights(state, path)
        return state
    if not os.path.isfile(path):
        raise ModelLoadError("model file not found", path)
    if path.endswith(".safetensors"):
        from safetensors.torch import load_file

        try:
            state = load_file(path, device="cpu")
        except Exception as err:  # safetensors raises its own error types
            raise ModelLoadError(f"{path}: not a readable safetensors file ({err})") from None
    else:
        with open(path, "rb") as handle:
            head = handle.read(8)
        if not head.startswith((_ZIP_MAGIC, _PICKLE)):
            if _looks_like_safetensors(path):
                raise ModelLoadError("a safetensors file without the .safetensors suffix: rename it (the suffix "
                                     "selects the format)", path)
            raise ModelLoadError("not a model file: neither torch.save's format nor safetensors (another kind of "
                                 "file, or damaged?)", path)
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as err:
            raise ModelLoadError(f"refused: not a plain torch.save state dict; the file holds pickled data other than "
                                 f"tensors ({_unsupported(err)}), which could run code when loaded. Convert it to a "
                                 "state dict of tensors or .safetensors where it was made", path) from None
        except (RuntimeError, EOFError, OSError, ValueError) as err:
            raise ModelLoadError(f"not a readable model file (truncated or damaged: {_first_line(err)})", path) from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ModelLoadError(f"{path}: expected a state dict mapping names to tensors, found {type(state).__name__}")
    if finite:
        check_finite_weights(state, path)
    if not normalize:
        return dict(state)
    if convert_hf:
        from uer.hf_folder import hf_family_of_keys, hf_state_to_uer

        family = hf_family_of_keys(state)
        if family is not None:
            logger.info("%s has HF %s key names: converting them on the fly (the folder with its config.json "
                        "also gives sizes and tokenizer; scripts/convert_*_from_huggingface_to_uer.py writes a "
                        "converted file)", path, family)
            return hf_state_to_uer(state, family)
    return normalize_keys(state)


def first_nonfinite(state: dict[str, torch.Tensor]) -> tuple[str, int] | None:
    """(name, count) of the first floating-point tensor holding NaN or infinite values, or None. One pass
    over the weights (about 0.1 s for BERT-base on a CPU core)."""
    for key, value in state.items():
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            return key, int((~torch.isfinite(value)).sum())
    return None


def check_finite_weights(state: dict[str, torch.Tensor], path: str | os.PathLike) -> None:
    """Refuse a model file with NaN or infinite weights (a diverged run): it would train with loss nan and
    predict nan."""
    found = first_nonfinite(state)
    if found is not None:
        raise ModelLoadError(f"{found[0]} holds {found[1]} NaN or infinite values: the model is broken (saved by "
                             "a run that diverged?); use an earlier checkpoint", path)


_ZIP_MAGIC = b"PK\x03\x04"  # torch.save since 1.6
_PICKLE = b"\x80"  # torch.save's legacy format (and any pickle) starts with a protocol opcode


def _looks_like_safetensors(path: str) -> bool:
    """safetensors: 8-byte little-endian header length, then a JSON header."""
    with open(path, "rb") as handle:
        head = handle.read(9)
    return len(head) == 9 and head[8:9] == b"{"


def _first_line(err: BaseException) -> str:
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return lines[0] if lines else type(err).__name__


def _unsupported(err: BaseException) -> str:
    """What torch's weights_only unpickler refused, without its advice to disable the check."""
    found = re.search(r"(Unsupported global: GLOBAL \S+|Unsupported class \S+|Unsupported operand \d+)", str(err))
    return found.group(1) if found else "not tensors"


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
                f"shape mismatch at {key}: file has {tuple(value.shape)}, model expects {tuple(own[key].shape)}. "
                + _likely_cause(key, tuple(value.shape), tuple(own[key].shape)), path)
    _check_dtypes(path, state, own)
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


def _check_dtypes(path: str | os.PathLike, state: dict[str, torch.Tensor], own: dict[str, torch.Tensor]) -> None:
    """Floating-point parameters must be stored as floating point: integers (a broken export, a quantised
    file) would be cast to float without a word and trained. Half precision loads, with a notice."""
    converted: dict[tuple[str, str], int] = {}
    for key, value in state.items():
        if key not in own or not own[key].is_floating_point():
            continue
        if not value.is_floating_point():
            raise ModelLoadError(
                f"{path}: {key} is stored as {str(value.dtype).replace('torch.', '')}, but it is a floating-point "
                f"parameter ({str(own[key].dtype).replace('torch.', '')} in the model): refusing to cast integers "
                "into weights; export the model with floating-point tensors")
        if value.dtype != own[key].dtype:
            pair = (str(value.dtype).replace("torch.", ""), str(own[key].dtype).replace("torch.", ""))
            converted[pair] = converted.get(pair, 0) + 1
    for (stored, loaded), count in converted.items():
        logger.info("%s: %d tensors are stored as %s; loaded as %s", path, count, stored, loaded)


# Task-head output layers: their first dimension is the number of labels.
_LABEL_OUTPUTS = re.compile(r"^(output_layer_2|output_layers_2\.\d+)\.(weight|bias)$")


def _likely_cause(key: str, file_shape: tuple[int, ...], model_shape: tuple[int, ...]) -> str:
    """Name the option that most likely differs, from which dimension differs where."""
    if _LABEL_OUTPUTS.match(key) and file_shape[1:] == model_shape[1:]:
        return (f"The model was fine-tuned with {file_shape[0]} labels: give --labels_num {file_shape[0]} "
                "(or the training file the model was fine-tuned on).")
    vocabulary_sized = key.startswith(("embedding.word.", "target.mlm.linear_2", "target.lm.output_layer"))
    if vocabulary_sized and file_shape[0] != model_shape[0] and file_shape[1:] == model_shape[1:]:
        return (f"Likely cause: a different vocabulary ({file_shape[0]} tokens in the file, {model_shape[0]} in "
                "--vocab_path / --spm_model_path) than the model was trained with.")
    if key.startswith("embedding.pos.") and file_shape[1:] == model_shape[1:]:
        return "Likely cause: max_seq_length in --config_path differs from the model's."
    return ("Likely cause: --config_path describes a different model size (hidden_size, feedforward_size, emb_size) "
            "than the file's.")
