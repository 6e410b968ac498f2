"""Saving model files: UER-py key naming, atomic writes, .bin (torch.save) or .safetensors by file name."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from uer.utils.cleanup import temp_path


def unwrap(model: nn.Module) -> nn.Module:
    """The bare model inside DistributedDataParallel / torch.compile wrappers."""
    while hasattr(model, "module") or hasattr(model, "_orig_mod"):
        model = getattr(model, "module", None) or getattr(model, "_orig_mod")
    return model


def atomic_write(path: str | os.PathLike, write: Any) -> None:
    """Call ``write(temp_path)`` then rename onto ``path``: a crash never leaves a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Named after this process, so a later run can tell a leftover of a killed run from a file being
    # written (uer.utils.cleanup.remove_stale_temp_files); SIGTERM/Ctrl-C run the except clause below.
    tmp = str(temp_path(path))
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def model_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """CPU copy of the state dict with UER-py keys (tied weights appear under both names, as in UER-py)."""
    return {key: value.detach().to("cpu", copy=True).contiguous() for key, value in unwrap(model).state_dict().items()}


def save_state_dict(state_dict: dict[str, torch.Tensor], path: str | os.PathLike) -> None:
    """Write a state dict atomically; ``.safetensors`` files get the safetensors format."""
    if str(path).endswith(".safetensors"):
        from safetensors.torch import save_file

        # safetensors refuses tensors that share memory (tied weights): store independent copies.
        cloned = {key: value.clone() for key, value in state_dict.items()}
        atomic_write(path, lambda tmp: save_file(cloned, tmp, metadata={"format": "pt"}))
    else:
        atomic_write(path, lambda tmp: torch.save(state_dict, tmp))


def save_model(model: nn.Module, path: str | os.PathLike) -> None:
    save_state_dict(model_state_dict(model), path)
