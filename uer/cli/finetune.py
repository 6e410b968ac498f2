r"""Fine-tune any registered task: ``uer-finetune --task NAME ...`` (also ``python3 -m uer.cli.finetune``).

    uer-finetune --help                 # the tasks
    uer-finetune --task ner --help      # the options of one task

UER-py's scripts (run_classifier.py, run_ner.py, ...) run the same command for their task; what every task shares
is uer/finetune/commands.py.
"""
from __future__ import annotations

import sys
from typing import Callable, Sequence

from uer.errors import UsageError, entry_point
from uer.finetune.commands import train
from uer.finetune.tasks import get_task, overview, task_by_script, task_from_argv, task_names

GENERIC_PROG = "uer-finetune"


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
    return task_main(task_by_script(attr))


if __name__ == "__main__":
    main()
