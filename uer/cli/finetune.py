r"""Fine-tune any registered task: ``uer-finetune --task NAME ...`` (also ``python3 -m uer.cli.finetune``).

    uer-finetune --help                 # the tasks
    uer-finetune --task ner --help      # the options of one task

UER-py's scripts (run_classifier.py, run_ner.py, ...) run the same command for their task. What every task
shares is here: the parser layout (paths and loop flags, tokenizer, model, the task's own options, training
options), the output checks before any work, reading every input before a model is built (the task's
``read_training``), the launch over processes, the loop and the test evaluation (``Task.fit``).
"""
from __future__ import annotations

import argparse
import sys
from typing import Callable, Sequence

from uer import opts
from uer.config import parse_args_with_config
from uer.errors import UsageError, entry_point
from uer.finetune.tasks import TRAIN, Task, get_task, overview, str2task, task_from_argv, task_names
from uer.text.tokenizers import tokenizer_from_args
from uer.utils.distributed import DistContext
from uer.utils.io import check_output_path, check_outputs
from uer.utils.launch import launch

# Files every fine-tuning run may read; no output may be one of them.
FINETUNE_INPUTS = ("train_path", "dev_path", "test_path", "vocab_path", "spm_model_path", "config_path",
                   "pretrained_model_path")
GENERIC_PROG = "uer-finetune"


def build_parser(task: type[Task], prog: str | None = None, generic: bool = False) -> argparse.ArgumentParser:
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
    task = get_task(name)
    args = parse_args_with_config(build_parser(task, prog, generic), list(argv))
    args.task = name
    task.check_options(args, TRAIN)
    check_outputs(args, outputs=("output_model_path",), inputs=FINETUNE_INPUTS + task.input_options,
                  extra_outputs=task.output_paths(args, TRAIN))
    for flag, path in {"--output_model_path": args.output_model_path, **task.output_paths(args, TRAIN)}.items():
        check_output_path(path, flag, task.extra_inputs(args, TRAIN))
    launch(args, run, prog)


@entry_point(GENERIC_PROG)
def main(argv: Sequence[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    name = task_from_argv(argv)
    if name is None:
        if "-h" in argv or "--help" in argv or not argv:
            print(overview(GENERIC_PROG, __doc__), end="")
            return
        raise UsageError(f"give --task NAME; tasks: {', '.join(task_names())}")
    train(argv, get_task(name).name, GENERIC_PROG, generic=True)


def task_main(name: str) -> Callable[[Sequence[str] | None], None]:
    """The ``main`` of a task's own training script (run_ner.py = ``task_main("ner")``): same command, the
    script's name in messages."""
    task = get_task(name)
    prog = task.train_script or f"{GENERIC_PROG} --task {name}"

    @entry_point(prog, task.script_aliases)
    def script_main(argv: Sequence[str] | None = None) -> None:
        train(list(sys.argv[1:] if argv is None else argv), name, prog)

    return script_main


@entry_point("run_glue.py")
def run_glue(argv: Sequence[str] | None = None) -> None:
    """run_glue.py: HuggingFace's run_glue flags (uer/finetune/glue_args.py) onto the glue task."""
    import os

    from uer.finetune.glue_args import build_parser as glue_parser, task_argv

    args = glue_parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    if args.no_cuda:
        os.environ["CUDA_VISIBLE_DEVICES"] = ""  # before CUDA is initialised: every device check sees none
    train(task_argv(args), "glue", "run_glue.py")


def __getattr__(attr: str) -> Callable:
    """Console scripts of UER-py's names (pyproject: ``uer-run-ner = "uer.cli.finetune:run_ner"``) resolve
    to the task whose training script has that name."""
    task_names()  # plugins too
    for task in str2task.values():
        if task.train_script and task.train_script[:-3] == attr:
            return task_main(task.name)
    raise AttributeError(attr)


if __name__ == "__main__":
    main()
