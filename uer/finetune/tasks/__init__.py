"""The fine-tuning task registry: ``str2task`` maps a task name to its :class:`Task` class.

Built-in tasks are imported below, one line each. A package of the user's adds a task without editing this
one through the entry-point group ``uer.tasks`` (in its pyproject.toml)::

    [project.entry-points."uer.tasks"]
    my_task = "my_package.my_module:MyTask"

:func:`get_task` and :func:`task_names` load those once, on first use.
"""
from __future__ import annotations

import argparse
import importlib.metadata
import logging
from typing import Sequence

from uer.errors import UsageError
from uer.finetune.tasks.base import INFER, SERVE, TRAIN, InferenceData, Task, TrainingData, register_task, str2task

logger = logging.getLogger("uer.finetune")

ENTRY_POINT_GROUP = "uer.tasks"
_plugins_loaded = False


def load_plugins() -> None:
    """Register the tasks of the ``uer.tasks`` entry points (once). A plugin that fails to load is an error
    naming it: a task the user installed must not silently vanish."""
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        try:
            cls = ep.load()
        except Exception as err:  # the plugin's own bug or missing package: name it in one line
            raise UsageError(f"task plugin {ep.name!r} ({ep.value}) failed to load: {type(err).__name__}: {err}") from err
        if cls.name != ep.name:
            raise UsageError(f"task plugin {ep.name!r} ({ep.value}) names itself {cls.name!r}: the entry point's "
                             "name and the class's name must agree")
        register_task(cls)


def task_names() -> list[str]:
    load_plugins()
    return sorted(str2task)


def get_task(name: str) -> type[Task]:
    load_plugins()
    if name not in str2task:
        raise UsageError(f"unknown task {name!r}; known tasks: {', '.join(sorted(str2task))}")
    return str2task[name]


def tasks_sharing_model(task: type[Task]) -> list[str]:
    """The tasks whose model files ``task`` reads: itself, its subclasses and bases (dbqa's model is a
    classifier's); a model record (uer.model_meta) of another task is not applied."""
    names = task_names()
    return [name for name in names if issubclass(get_task(name), task) or issubclass(task, get_task(name))]


def task_from_argv(argv: Sequence[str]) -> str | None:
    """``--task`` of a command line, before the full parse (a task's options depend on it)."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--task", default=None)
    return pre.parse_known_args(list(argv))[0].task


def task_by_script(stem: str, infer: bool = False) -> str:
    """The task whose training script (``infer``: inference script) is ``stem`` + ".py", plugins included:
    how console scripts of UER-py's names (``uer.cli.finetune:run_ner``) find their task. AttributeError
    when none is (the contract of the module ``__getattr__`` that asks)."""
    task_names()  # loads the plugins
    for task in str2task.values():
        script = task.infer_script if infer else task.train_script
        if script and script[:-3] == stem:
            return task.name
    raise AttributeError(stem)


def overview(prog: str, doc: str, infer: bool = False) -> str:
    """``PROG --help`` without a task: what the command is and the tasks it runs, one line each."""
    names = [n for n in task_names() if not infer or get_task(n).infer_doc]
    rows = [f"  {name:<20} {get_task(name).summary}" for name in names]
    return (f"usage: {prog} --task NAME [options]   ({prog} --task NAME --help: the task's options)\n\n"
            f"{doc.strip().splitlines()[0]}\n\ntasks:\n" + "\n".join(rows) + "\n")


# Built-in tasks: one import line each (the modules register themselves).
from uer.finetune.tasks import classifier  # noqa: E402,F401
from uer.finetune.tasks import classifier_cv  # noqa: E402,F401
from uer.finetune.tasks import classifier_grid  # noqa: E402,F401
from uer.finetune.tasks import classifier_mt  # noqa: E402,F401
from uer.finetune.tasks import dbqa  # noqa: E402,F401
from uer.finetune.tasks import glue  # noqa: E402,F401
from uer.finetune.tasks import mrc  # noqa: E402,F401
from uer.finetune.tasks import multi_label  # noqa: E402,F401
from uer.finetune.tasks import multiple_choice  # noqa: E402,F401
from uer.finetune.tasks import ner  # noqa: E402,F401
from uer.finetune.tasks import regression  # noqa: E402,F401
from uer.finetune.tasks import simcse  # noqa: E402,F401
from uer.finetune.tasks import siamese  # noqa: E402,F401
from uer.finetune.tasks import prompt  # noqa: E402,F401

__all__ = ["ENTRY_POINT_GROUP", "INFER", "SERVE", "TRAIN", "InferenceData", "Task", "TrainingData", "get_task",
           "load_plugins", "overview", "register_task", "str2task", "task_from_argv", "task_names", "tasks_sharing_model"]
