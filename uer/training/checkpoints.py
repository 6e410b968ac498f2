"""Which pre-training checkpoints stay on disk: ``--save_total_limit`` (model files) and ``--keep_trainer_state``
(the ``.trainer`` resume files, each 1-2x the model's size: the optimiser's two moments per weight).

Checkpoints are ``{output_model_path}-{step}`` with an optional ``.trainer`` beside; pruning runs after the
new checkpoint has been written (atomically), so a crash never leaves fewer than the limit of good ones.
"""
from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Sequence

from uer.errors import OutputError

logger = logging.getLogger(__name__)

TRAINER_STATE_SUFFIX = ".trainer"
KEEP_TRAINER_STATE = ("last", "all", "none")


def checkpoint_steps(output_model_path: str) -> list[int]:
    """Steps of the model checkpoints ``{output_model_path}-{step}`` on disk, ascending."""
    path = Path(output_model_path)
    folder = path.parent if str(path.parent) else Path(".")
    pattern = re.compile(re.escape(path.name) + r"-(\d+)")
    if not folder.is_dir():
        return []
    return sorted(int(m.group(1)) for m in map(pattern.fullmatch, os.listdir(folder)) if m)


def prune_checkpoints(output_model_path: str, current_step: int, save_total_limit: int | None,
                      keep_trainer_state: str = "last", written_steps: Sequence[int] | None = None) -> list[str]:
    """Delete what the options say not to keep, never the checkpoint of ``current_step``; returns the deleted
    paths. ``save_total_limit``: keep the newest N model checkpoints (with their ``.trainer``); None keeps
    all. ``keep_trainer_state``: ``last`` keeps only the newest ``.trainer``, ``all`` every one, ``none`` is
    handled by not writing them. ``written_steps``: the steps this run wrote; only those are ever deleted (a
    resumed run leaves the earlier run's checkpoints and sidecars alone, the one it resumed from included);
    None: every checkpoint on disk counts."""
    deleted = []
    steps = [s for s in checkpoint_steps(output_model_path) if s <= current_step]
    if written_steps is not None:
        mine = set(written_steps) | {current_step}
        steps = [s for s in steps if s in mine]
    old = [s for s in steps if s != current_step]
    if save_total_limit is not None:
        for step in old[:max(0, len(steps) - save_total_limit)]:
            for path in (f"{output_model_path}-{step}", f"{output_model_path}-{step}{TRAINER_STATE_SUFFIX}"):
                if os.path.exists(path):
                    os.remove(path)
                    deleted.append(path)
    if keep_trainer_state == "last":
        for step in old:
            path = f"{output_model_path}-{step}{TRAINER_STATE_SUFFIX}"
            if os.path.exists(path):
                os.remove(path)
                deleted.append(path)
    for path in deleted:
        logger.info("deleted %s", path)
    return deleted


def check_no_later_checkpoints(output_model_path: str, resumed_step: int, total_steps: int, save_steps: int,
                               flag: str = "--output_model_path") -> None:
    """A run resumed at ``resumed_step`` writes the checkpoints of the steps after it (every ``save_steps``
    and the last): refuse, before any work, when one of them exists already (an earlier run's)."""
    planned = set(range(resumed_step + 1, total_steps + 1)) if save_steps <= 0 else {
        s for s in range(resumed_step + 1, total_steps + 1) if s % save_steps == 0} | {total_steps}
    clash = [s for s in checkpoint_steps(output_model_path) if s in planned]
    if clash:
        raise OutputError(f"a checkpoint this run would write exists already ({output_model_path}-{clash[0]}"
                          f"{f' and {len(clash) - 1} more' if len(clash) > 1 else ''}): resuming from step "
                          f"{resumed_step} would overwrite it; move it away or choose another {flag}",
                          output_model_path)
