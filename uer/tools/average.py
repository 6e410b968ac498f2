"""scripts/average_model.py (= average_models.py): the element-wise mean of model files of one architecture.

    python3 scripts/average_model.py --model_list_path models/model.bin-10000 models/model.bin-20000 \\
        --output_model_path models/averaged_model.bin

Every file must hold the same keys with the same shapes (the error names the first key or shape that
differs). Floating-point tensors are summed in float64 and divided once, then stored in their own dtype,
so the result is the correctly rounded mean; other tensors (integer buffers) must be equal in every file.
"""
from __future__ import annotations

import argparse
from typing import Sequence

import torch

from uer.tools.common import ToolError, check_outputs_are_not_inputs, run_tool


def average_state_dicts(paths: Sequence[str]) -> dict[str, torch.Tensor]:
    """Mean of the state dicts stored at ``paths`` (read one at a time: memory holds two models)."""
    from uer.model_loader import load_state_dict

    if len(paths) < 1:
        raise ToolError("--model_list_path needs at least one model file")
    first = load_state_dict(paths[0])
    sums = {key: value.double() if value.is_floating_point() else value.clone() for key, value in first.items()}
    dtypes = {key: value.dtype for key, value in first.items()}
    del first
    for path in paths[1:]:
        state = load_state_dict(path)
        extra = [key for key in state if key not in sums]
        missing = [key for key in sums if key not in state]
        if missing or extra:
            what = f"lacks {missing[0]!r}" if missing else f"has {extra[0]!r}, which {paths[0]} lacks"
            raise ToolError(f"{path}: not the architecture of {paths[0]}: it {what} "
                            f"({len(missing)} key(s) missing, {len(extra)} extra)")
        for key, value in state.items():
            if value.shape != sums[key].shape:
                raise ToolError(f"{path}: {key} has shape {tuple(value.shape)}, {paths[0]} has "
                                f"{tuple(sums[key].shape)}")
            if value.is_floating_point():
                sums[key] += value.double()
            elif not torch.equal(value, sums[key]):
                raise ToolError(f"{path}: {key} ({value.dtype}) differs from {paths[0]}'s and cannot be averaged")
    n = len(paths)
    return {key: (value / n).to(dtypes[key]) if dtypes[key].is_floating_point else value
            for key, value in sums.items()}


def build_parser(prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--model_list_path", nargs="+", required=True, help="Model files to average.")
    parser.add_argument("--output_model_path", required=True,
                        help="The averaged model (.bin, or .safetensors by the name).")
    return parser


def main(argv: Sequence[str] | None = None, prog: str = "average_model.py") -> None:
    def body(argv: Sequence[str] | None) -> None:
        from uer.model_saver import save_state_dict

        args = build_parser(prog).parse_args(argv)
        check_outputs_are_not_inputs([("--output_model_path", args.output_model_path)],
                                     [("--model_list_path", path) for path in args.model_list_path])
        averaged = average_state_dicts(args.model_list_path)
        save_state_dict(averaged, args.output_model_path)
        print(f"{args.output_model_path}: mean of {len(args.model_list_path)} models, {len(averaged)} tensors, "
              f"{sum(v.numel() for v in averaged.values()):,} values")

    run_tool(prog, body, argv)
