"""What ``pretrain.py --resume_from`` may change: the check between a checkpoint's sidecar and this run.

Resuming continues the *same* run, bit for bit. So every option that changes what is trained must be
what the checkpoint was trained with, or be a change with one clear meaning:

* ``--total_steps`` may change (as long as it is beyond the checkpoint's step): the linear decay then
  ends at the new total (the warm-up stays a fraction of it) and the log shows the learning rate before
  and after;
* ``--report_steps``, ``--save_checkpoint_steps``, ``--output_model_path``, ``--save_total_limit``,
  ``--keep_trainer_state`` and ``--tensorboard_dir`` only change what is written;
* everything else (batch size, accumulation, seed, learning rate, warm-up, Adam's betas, weight decay,
  precision, number of processes, model configuration, dataset, vocabulary, loader and masking options)
  is refused, naming the option and both values. To continue with other values, start a new run from the
  checkpoint's weights with ``--pretrained_model_path``.
"""
from __future__ import annotations

from typing import Any, Mapping

from uer.model_config import ConfigError

# TrainConfig fields that may differ (they change what is written, not what is trained).
OUTPUT_ONLY = {"output_model_path", "report_steps", "save_checkpoint_steps", "save_total_limit", "keep_trainer_state",
               "tensorboard_dir"}
# What checkpoints written before these options existed were trained with.
EARLIER_DEFAULTS = {"optimizer": "adamw", "scheduler": "linear", "lr_decay": 0.5, "num_cycles": 1, "max_grad_norm": None}


def _flag(name: str) -> str:
    return name if " " in name else f"--{name}"


def _bucketing_change(saved_window: int | None) -> str:
    """The problem line for a length-bucketing change, with the flag that resumes the checkpoint's way. A run
    records its bucketing window only when bucketing is on, so checkpoints from before bucketing existed (it is
    the default now) read as off."""
    if saved_window is None:
        return ("the checkpoint's run drew its batches without length bucketing (off, or written before bucketing "
                "became the default) and this one buckets: add --no_length_bucketing to resume it")
    return (f"the checkpoint's run bucketed batches by length (windows of {saved_window} steps) and this one does "
            "not: drop --no_length_bucketing to resume it")


def _flatten(run: Mapping[str, Any]) -> dict[str, Any]:
    """``{"model config": {"hidden_size": 32}}`` -> ``{"model config hidden_size": 32}`` (one level)."""
    out: dict[str, Any] = {}
    for key, value in run.items():
        if isinstance(value, Mapping):
            out.update({f"{key} {sub}": inner for sub, inner in value.items()})
        else:
            out[key] = value
    return out


def check_resume(state: Mapping[str, Any], train_config: Mapping[str, Any], run: Mapping[str, Any],
                 world_size: int, checkpoint: str) -> list[str]:
    """Raise ConfigError for a change that cannot be honoured; return the notices for those that are.

    Args:
        state: the checkpoint's sidecar (``train_config``, ``world_size``, ``step`` and, since this check
            exists, ``run``: model configuration, dataset fingerprint, loader options).
        train_config: this run's TrainConfig as a dict.
        run: this run's ``run`` identity (same keys as the sidecar's).
        world_size: this run's number of processes.
        checkpoint: the --resume_from path (for the messages).
    """
    saved, step = {**EARLIER_DEFAULTS, **state["train_config"]}, int(state["step"])
    problems: list[str] = []
    notices: list[str] = []
    for name, value in train_config.items():
        if name in OUTPUT_ONLY or name not in saved or name == "total_steps":
            continue
        if saved[name] != value:
            problems.append(f"--{name} was {saved[name]}, now {value}")
    if state.get("world_size", world_size) != world_size:
        problems.append(f"--world_size (processes) was {state['world_size']}, now {world_size}")
    saved_run = state.get("run")
    if saved_run is None:
        notices.append(f"{checkpoint}: written before checkpoints recorded the model configuration and dataset; "
                       "only the training options were compared")
    else:
        before, now = _flatten(saved_run), _flatten(run)
        for key in sorted(set(before) | set(now)):
            if before.get(key) != now.get(key):
                problems.append(_bucketing_change(before.get(key)) if key == "length_bucketing"
                                else f"{_flag(key)} was {before.get(key)}, now {now.get(key)}")
    total = int(train_config["total_steps"])
    if total <= step:
        problems.append(f"--total_steps {total} is not beyond the checkpoint's step {step}")
    elif total != saved["total_steps"]:
        notices.append(f"--total_steps was {saved['total_steps']}, now {total}: the learning rate now decays to 0 "
                       f"at step {total} (warm-up: the first {int(total * float(train_config['warmup']))} steps)")
    if problems:
        raise ConfigError(f"--resume_from {checkpoint}: this run differs from the one that wrote the checkpoint: "
                          + "; ".join(problems) + ". Resuming continues the same run; to train on with other "
                          "options, start a new run from its weights with --pretrained_model_path")
    return notices
