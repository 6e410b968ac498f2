"""Saving model files: UER-py key naming, atomic writes, .bin (torch.save) or .safetensors by file name."""
from __future__ import annotations

import os

import torch
from torch import nn

from uer.errors import UserError
from uer.utils.io import atomic_write  # the one atomic writer (re-exported for callers of this module)


def unwrap(model: nn.Module) -> nn.Module:
    """The bare model inside DistributedDataParallel / torch.compile wrappers."""
    while hasattr(model, "module") or hasattr(model, "_orig_mod"):
        model = getattr(model, "module", None) or getattr(model, "_orig_mod")
    return model


def model_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """CPU copy of the state dict with UER-py keys (tied weights appear under both names, as in UER-py)."""
    return {key: value.detach().to("cpu", copy=True).contiguous() for key, value in unwrap(model).state_dict().items()}


def save_state_dict(state_dict: dict[str, torch.Tensor], path: str | os.PathLike) -> None:
    """Write a state dict atomically; ``.safetensors`` files get the safetensors format."""
    from uer.model_loader import first_nonfinite  # (it imports this module)

    found = first_nonfinite(state_dict)
    if found is not None:
        raise UserError(f"refusing to save a model whose {found[0]} holds {found[1]} NaN or infinite values", path)
    if str(path).endswith(".safetensors"):
        from safetensors.torch import save_file

        # safetensors refuses tensors that share memory (tied weights): store independent copies.
        cloned = {key: value.clone() for key, value in state_dict.items()}
        atomic_write(path, lambda tmp: save_file(cloned, tmp, metadata={"format": "pt"}))
    else:
        atomic_write(path, lambda tmp: torch.save(state_dict, tmp))


def save_model(model: nn.Module, path: str | os.PathLike) -> None:
    save_state_dict(model_state_dict(model), path)
