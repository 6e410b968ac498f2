"""The fine-tuning command every task shares (uer/cli/finetune.py, UER-py's run_*.py, run_glue.py's HF flags):
one parser layout (paths and loop flags, tokenizer, model, the task's own options, training options), the output
checks before any work, and the launch over processes; each process runs ``Task.fit`` (reading every input before
a model is built, the loop, the test evaluation).
"""
from __future__ import annotations

import argparse
from typing import Sequence

from uer import opts
from uer.config import parse_args_with_config
from uer.finetune.builders import FINETUNE_INPUTS
from uer.finetune.tasks import TRAIN, Task, get_task, task_names
from uer.text.tokenizers import tokenizer_from_args
from uer.utils.distributed import DistContext
from uer.utils.io import check_output_path, check_outputs
from uer.utils.launch import launch


def build_train_parser(task: type[Task], prog: str | None = None, generic: bool = False) -> argparse.ArgumentParser:
    """The parser of ``task``'s training command: one layout for every task."""
    parser = argparse.ArgumentParser(prog=prog, description=task.train_doc, formatter_class=opts.HelpFormatter)
    if generic:
        parser.add_argument("--task", required=True, choices=task_names(), help="The task to fine-tune.")
    opts.add_finetune_options(parser, output_model_path=task.output_model_path, data_paths=task.data_paths)
    opts.add_tokenizer_options(parser)
    opts.add_model_options(parser)
    task.add_options(parser, TRAIN)
    opts.add_finetune_training_options(parser, early_stopping=task.early_stopping)
    parser.set_defaults(**task.defaults)
    return parser


def run(args: argparse.Namespace, ctx: DistContext) -> None:
    """One process's work (module level: spawned ranks find it by name)."""
    task = get_task(args.task)
    task(args, tokenizer_from_args(args)).fit(ctx)


def train(argv: Sequence[str], name: str, prog: str, generic: bool = False) -> None:
    """Fine-tune task ``name`` with the command line ``argv`` (``prog`` names the command in messages): parse and
    merge the config, check the options and every output against every input, then launch the processes."""
    task = get_task(name)
    args = parse_args_with_config(build_train_parser(task, prog, generic), list(argv))
    args.task = name
    task.check_options(args, TRAIN)
    check_outputs(args, outputs=("output_model_path",), inputs=FINETUNE_INPUTS + task.input_options,
                  extra_outputs=task.output_paths(args, TRAIN))
    for flag, path in {"--output_model_path": args.output_model_path, **task.output_paths(args, TRAIN)}.items():
        check_output_path(path, flag, task.extra_inputs(args, TRAIN))
    launch(args, run, prog)
