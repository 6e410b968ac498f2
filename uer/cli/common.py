"""What every inference command does before its own work (uer/cli/infer.py, the tools that predict)."""
from __future__ import annotations

import argparse
import sys
from typing import Sequence

from uer.config import parse_args_with_config
from uer.utils.io import check_outputs
from uer.utils.logging import setup_logging_from_args
from uer.utils.runtime import set_threads, tune_cpu_allocator

INFERENCE_INPUTS = ("test_path", "load_model_path", "vocab_path", "spm_model_path", "merges_path", "config_path")


def start_inference(parser: argparse.ArgumentParser, argv: Sequence[str] | None,
                    extra_inputs: tuple[str, ...] = (), extra_outputs: dict[str, str] | None = None,
                    ) -> argparse.Namespace:
    """Parse (JSON config merged), refuse a --prediction_path that is an input or cannot be written (before any
    work), then logging, threads and the CPU allocator."""
    args = parse_args_with_config(parser, list(sys.argv[1:] if argv is None else argv))
    check_outputs(args, outputs=("prediction_path",), inputs=INFERENCE_INPUTS + extra_inputs,
                  extra_outputs=extra_outputs or {})
    setup_logging_from_args(args)
    set_threads(args.threads)
    tune_cpu_allocator()
    return args
