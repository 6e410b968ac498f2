"""What every converter shares: its error type, layer counting, reading and writing model files."""
from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Iterable

import torch

from uer.errors import UserError
from uer.model_loader import load_state_dict
from uer.model_saver import save_state_dict

logger = logging.getLogger(__name__)

# File names HF's save_pretrained writes, in the order we look for them when given a folder.
HF_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


class ConversionError(UserError, ValueError):
    """A checkpoint that cannot be converted as asked; the message names the key and the likely fix."""


def infer_layers_num(keys: Iterable[str], pattern: str, given: int | None, source: str) -> int:
    """Number of layers from the keys matching ``pattern`` (one group: the layer index).

    A ``given`` count (``--layers_num``) must agree with the file: converting fewer layers than the file
    holds would silently drop trained weights, which is what UER-py's scripts do.
    """
    indices = {int(m.group(1)) for m in map(re.compile(pattern).match, keys) if m}
    if not indices:
        raise ConversionError(f"no transformer layers found in the {source} file (no key matches {pattern!r})")
    found = max(indices) + 1
    gaps = sorted(set(range(found)) - indices)
    if gaps:
        raise ConversionError(f"the {source} file has layers up to {found - 1} but lacks layers {gaps}")
    if given is not None and given != found:
        raise ConversionError(f"--layers_num {given} but the {source} file has {found} layers; "
                              f"omit --layers_num to take the count from the file")
    return found


def resolve_weights_path(path: str | os.PathLike) -> Path:
    """A model file, or the weights file inside a folder written by HF's ``save_pretrained``."""
    path = Path(path)
    if path.is_dir():
        for name in HF_WEIGHT_FILES:
            if (path / name).is_file():
                return path / name
        if any(path.glob("*.index.json")):
            raise ConversionError(f"{path}: sharded checkpoints are not supported; merge the shards into one file first")
        raise ConversionError(f"{path}: a folder without {' or '.join(HF_WEIGHT_FILES)}")
    return path


def read_state(path: str | os.PathLike, normalize: bool = True) -> dict[str, torch.Tensor]:
    """Read a .bin or .safetensors model file safely (never unpickles objects other than tensors)."""
    return load_state_dict(resolve_weights_path(path), normalize=normalize)


def write_state(state: dict[str, torch.Tensor], path: str | os.PathLike) -> None:
    """Write atomically; ``.safetensors`` by file name, else torch.save (tied tensors stored once)."""
    save_state_dict(state, path)
    logger.info("wrote %d tensors to %s", len(state), path)


def report_unused(keys: Iterable[str], source: str, level: int = logging.WARNING) -> None:
    """Keys of the input that the conversion did not use: named, never dropped silently."""
    keys = sorted(keys)
    if keys:
        logger.log(level, "%d keys of the %s file are not converted: %s%s", len(keys), source, keys[:10],
                   " ..." if len(keys) > 10 else "")
