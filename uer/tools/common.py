"""What the tool scripts share: UER-py's two flag spellings, one-line errors, output checks, atomic writers,
and model loading through :mod:`uer.api`.

Every tool's ``main(argv)`` goes through :func:`run_tool` (:func:`uer.errors.entry_point`): a problem with
the user's input (a missing file, a model that does not fit the config, a bad line) is one line on stderr
naming the file (and line) and the problem, exit status 2, and nothing half-written (outputs go through the
atomic writers of :mod:`uer.utils.io`; an output that names an input is refused before any work).
"""
from __future__ import annotations

import argparse
import io
import logging
import os
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np

from uer.errors import UsageError, entry_point
from uer.utils.io import atomic_write, atomic_write_text, check_input_file, check_output_path, read_lines
from uer.utils.ranges import positive_int, sequence_length


class ToolError(UsageError):
    """Bad input to a tool; the message names the file (and line) and the problem."""


def run_tool(prog: str, body: Callable[[Sequence[str] | None], None], argv: Sequence[str] | None = None) -> None:
    """Run ``body(argv)`` under the project's error convention (one line, exit status 2, for user errors)."""
    from uer.utils.runtime import tune_cpu_allocator

    tune_cpu_allocator()
    entry_point(prog)(body)(argv)


# ---------------------------------------------------------------------------------------------- options

def add_load_model_option(parser: argparse.ArgumentParser, required: bool = True) -> None:
    """--load_model_path (UER-py's newer name) = --pretrained_model_path (its 2020 docs)."""
    parser.add_argument("--load_model_path", "--pretrained_model_path", dest="load_model_path", required=required,
                        help="Model file (.bin or .safetensors, any UER-py key generation).")


def add_io_options(parser: argparse.ArgumentParser, input_help: str, output_help: str,
                   output_required: bool = True, extra_input: Sequence[str] = ()) -> None:
    """--test_path (newer) = --input_path (2020 docs), --prediction_path (newer) = --output_path (2020 docs)."""
    parser.add_argument("--test_path", "--input_path", *extra_input, dest="test_path", required=True, help=input_help)
    parser.add_argument("--prediction_path", "--output_path", dest="prediction_path", required=output_required,
                        help=output_help)


def add_encoder_options(parser: argparse.ArgumentParser, batch_size: int = 64, seq_length: int = 128) -> None:
    """Model, tokenizer and device options of the tools that run the encoder."""
    from uer import opts

    parser.add_argument("--batch_size", type=positive_int, default=batch_size, help="Texts per forward pass.")
    parser.add_argument("--seq_length", type=sequence_length, default=seq_length,
                        help="Longest input in tokens ([CLS] included); longer lines are truncated.")
    opts.add_model_options(parser)
    opts.add_tokenizer_options(parser)
    opts.add_device_option(parser)


# ---------------------------------------------------------------------------------------------- checks

def check_outputs_are_not_inputs(outputs: Iterable[tuple[str, str | None]], inputs: Iterable[tuple[str, str | None]],
                                 ) -> None:
    """Before any work: refuse an output that names an input (or another output), a directory, or a file in a
    missing folder (:func:`uer.utils.io.check_output_path`)."""
    seen: dict[str, str] = {}
    for flag, path in inputs:
        if path:
            seen[flag if flag not in seen else f"{flag} ({path})"] = path  # a list option names several files
    for flag, path in outputs:
        if path:
            check_output_path(path, flag, seen)
            seen[flag] = path


def require_file(path: str, what: str) -> None:
    """A missing input, or a directory given for a file, is a one-line error naming ``what`` it is."""
    check_input_file(path, what)


def text_lines(path: str, what: str = "input file") -> list[tuple[int, str]]:
    """(line number, text) of every line of a UTF-8 file; bad bytes are an error naming the file and line."""
    check_input_file(path, what)
    return list(read_lines(path))


# ---------------------------------------------------------------------------------------------- writers

def write_text(path: str | os.PathLike, text: str) -> None:
    """A UTF-8 text file, written atomically."""
    atomic_write_text(path, text)


def save_array(path: str | os.PathLike, array: np.ndarray, extra: dict[str, np.ndarray] | None = None) -> None:
    """Write ``array`` in the format the file name asks for, none of which needs unpickling code to read:

    ``.npy``: numpy's format (``np.load(allow_pickle=False)``); ``.safetensors``: tensor ``features`` (and
    ``extra``'s tensors); anything else (``.pt``, ``.bin``): one tensor for ``torch.load(weights_only=True)``,
    as UER-py's tools write it.
    """
    import torch

    name = str(path)
    array = np.ascontiguousarray(array)
    if name.endswith(".npy"):
        def write(tmp: str) -> None:
            buffer = io.BytesIO()
            np.save(buffer, array, allow_pickle=False)
            Path(tmp).write_bytes(buffer.getvalue())
    elif name.endswith(".safetensors"):
        from safetensors.torch import save_file

        tensors = {"features": torch.from_numpy(array)}
        tensors.update({key: torch.from_numpy(np.ascontiguousarray(value)) for key, value in (extra or {}).items()})

        def write(tmp: str) -> None:
            save_file(tensors, tmp, metadata={"format": "pt"})
    else:
        def write(tmp: str) -> None:
            torch.save(torch.from_numpy(array), tmp)
    atomic_write(path, write)


def load_array(path: str) -> np.ndarray:
    """Read what :func:`save_array` wrote (by the file name)."""
    import torch

    require_file(path, "feature file")
    if path.endswith(".npy"):
        try:
            return np.load(path, allow_pickle=False)
        except ValueError as err:
            raise ToolError(f"{path}: not a numeric .npy array ({err})") from None
    if path.endswith(".safetensors"):
        from safetensors.torch import load_file

        return load_file(path)["features"].numpy()
    try:
        value = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types for foreign files
        raise ToolError(f"{path}: not a tensor file ({str(err).splitlines()[0]})") from None
    if not isinstance(value, torch.Tensor):
        raise ToolError(f"{path}: expected one tensor, found {type(value).__name__}")
    return value.numpy()


# ---------------------------------------------------------------------------------------------- models

def tokenizer_from_args(args: argparse.Namespace):
    """The tokenizer of ``--tokenizer`` over ``--vocab_path`` / ``--spm_model_path`` (tools need no special token)."""
    from uer.text.tokenizers import tokenizer_from_args as build

    for flag in ("vocab_path", "spm_model_path"):
        if getattr(args, flag, None):
            require_file(getattr(args, flag), f"--{flag}")
    return build(args, require_specials=())


def config_from_args(args: argparse.Namespace, vocab_size: int, target: tuple[str, ...] | None = None):
    """The ModelConfig of the merged options (JSON < flags); ``target`` replaces the config's objectives."""
    from uer.config import model_config_from_args

    if target is not None:
        args.target = list(target)
        args.data_processor = None
    return model_config_from_args(args, vocab_size, with_target=target is not None)


def load_encoder(args: argparse.Namespace, with_mlm: bool = False):
    """(tokenizer, TextEncoder) for the tools that run the model: the one loader of :mod:`uer.api`.

    ``with_mlm``: build and load the MLM head too (cloze test); a file without one is an error.
    """
    from uer.api import TextEncoder, load_model, resolve_device

    from uer.hf_folder import is_hf_folder

    tokenizer = tokenizer_from_args(args)
    if not is_hf_folder(args.load_model_path):  # an HF model folder is read by the loader (uer/hf_folder.py)
        require_file(args.load_model_path, "model file (--load_model_path)")
    cfg = config_from_args(args, len(tokenizer.vocab), target=("mlm",) if with_mlm else None)
    if "pos" in cfg.embedding and args.seq_length > cfg.max_seq_length:
        raise ToolError(f"--seq_length {args.seq_length} exceeds the model's max_seq_length {cfg.max_seq_length}")
    if args.batch_size < 1:
        raise ToolError(f"--batch_size must be >= 1, got {args.batch_size}")
    device = resolve_device(args.device)
    # The tools leave out heads on purpose (all of them, or all but the MLM): the loader's notes about the
    # file's unused head keys are noise here. Embedding/encoder mismatches still raise.
    loader_log = logging.getLogger("uer.model_loader")
    level = loader_log.level
    loader_log.setLevel(logging.ERROR)
    try:
        model = load_model(cfg, args.load_model_path, with_target=with_mlm, device=device)
    finally:
        loader_log.setLevel(level)
    if with_mlm:
        from uer.model_loader import load_state_dict

        keys = load_state_dict(args.load_model_path).keys()
        needed = ["target.mlm.linear_1.weight"] + ([] if cfg.tie_weights else ["target.mlm.linear_2.weight"])
        missing = [key for key in needed if key not in keys]
        if missing:
            raise ToolError(f"{args.load_model_path}: no MLM head ({', '.join(missing)} missing): the cloze test "
                            "needs a model pre-trained with the mlm or bert target")
    return tokenizer, TextEncoder(model, tokenizer, cfg, args.seq_length, device)


def parse(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse with the JSON config merged under explicit flags (when the parser has --config_path)."""
    from uer.config import parse_args_with_config

    return parse_args_with_config(parser, argv)
