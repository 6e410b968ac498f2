r"""Predict with a model of any registered task: ``uer-infer --task NAME ...`` (also ``python3 -m uer.cli.infer``).

    uer-infer --help                 # the tasks
    uer-infer --task ner --help      # the options of one task

UER-py's inference scripts (inference/run_classifier_infer.py, inference/run_ner_infer.py, ...) run the same
command for their task. Shared here: the parser layout, the output checks, logging and threads, reading the
file before the model is loaded, and prediction (``Task.predict_file``).
"""
from __future__ import annotations

import argparse
import sys
from typing import Callable, Sequence

from uer import model_meta, opts
from uer.api import resolve_device
from uer.cli.common import start_inference
from uer.errors import UsageError, entry_point
from uer.finetune.tasks import (INFER, Task, get_task, overview, task_by_script, task_from_argv, task_names,
                               tasks_sharing_model)
from uer.text.tokenizers import tokenizer_from_args
from uer.utils.io import check_output_path

GENERIC_PROG = "uer-infer"


def build_parser(task: type[Task], prog: str | None = None, generic: bool = False) -> argparse.ArgumentParser:
    """The parser of ``task``'s inference command: one layout for every task."""
    parser = argparse.ArgumentParser(prog=prog, description=task.infer_doc, formatter_class=opts.HelpFormatter)
    if generic:
        parser.add_argument("--task", required=True, choices=[n for n in task_names() if get_task(n).infer_doc],
                            help="The task the model was fine-tuned for.")
    opts.add_inference_options(parser, prediction_required=task.prediction_required)
    opts.add_tokenizer_options(parser)
    opts.add_model_options(parser)
    task.add_options(parser, INFER)
    opts.add_runtime_options(parser)
    parser.set_defaults(**{**task.defaults, **task.infer_defaults})
    return parser


def infer(argv: Sequence[str], name: str, prog: str, generic: bool = False) -> None:
    task = get_task(name)
    if not task.infer_doc:
        raise UsageError(f"task {name!r} has no inference command")
    parser = build_parser(task, prog, generic)
    args = start_inference(parser, argv, extra_inputs=task.input_options,
                           extra_outputs=_outputs_of(parser, task, argv))
    args.task = name
    record = model_meta.apply(args, args.load_model_path, tasks_sharing_model(task))  # what the model file remembers
    task.check_options(args, INFER)
    for flag, path in {"--prediction_path": args.prediction_path, **task.output_paths(args, INFER)}.items():
        if path:
            check_output_path(path, flag, task.extra_inputs(args, INFER))
    device = resolve_device(args.device)
    tokenizer = tokenizer_from_args(args)
    model_meta.check_vocabulary(record, tokenizer.vocab, args.load_model_path)
    task(args, tokenizer).predict_file(device)


def _outputs_of(parser: argparse.ArgumentParser, task: type[Task], argv: Sequence[str]) -> dict[str, str]:
    """The task's extra outputs, from a plain parse (start_inference checks them with --prediction_path)."""
    args, _ = parser.parse_known_args(list(argv))
    return {flag: path for flag, path in task.output_paths(args, INFER).items() if path}


@entry_point(GENERIC_PROG)
def main(argv: Sequence[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    name = task_from_argv(argv)
    if name is None:
        if "-h" in argv or "--help" in argv or not argv:
            print(overview(GENERIC_PROG, __doc__, infer=True), end="")
            return
        raise UsageError(f"give --task NAME; tasks: {', '.join(task_names())}")
    infer(argv, get_task(name).name, GENERIC_PROG, generic=True)


def task_main(name: str) -> Callable[[Sequence[str] | None], None]:
    """The ``main`` of a task's own inference script (inference/run_ner_infer.py = ``task_main("ner")``)."""
    task = get_task(name)
    prog = task.infer_script or f"{GENERIC_PROG} --task {name}"

    @entry_point(prog, task.infer_script_aliases)
    def script_main(argv: Sequence[str] | None = None) -> None:
        infer(list(sys.argv[1:] if argv is None else argv), name, prog)

    return script_main


def __getattr__(attr: str) -> Callable:
    """Console scripts of UER-py's names (``uer-ner-infer = "uer.cli.infer:run_ner_infer"``)."""
    return task_main(task_by_script(attr, infer=True))


if __name__ == "__main__":
    main()
