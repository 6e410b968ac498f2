"""TensorBoard scalars (``--tensorboard_dir``): what the report lines say, as curves.

``tensorboard`` is optional (``pip install -r requirements-curves.txt``) and imported only when a folder is
given; without it the option fails at start with a message naming the package. Only rank 0 writes.

Tags (the same names scripts/plot_training.py reads back from event files and from log files):
``train/loss_<target>``, ``train/acc_<target>`` (pre-training; fine-tuning: ``train/loss`` and the head's
statistics), ``train/lr``, ``train/tokens_per_s`` or ``train/examples_per_s``, ``train/grad_norm``,
``train/loss_scale`` (float16 only), at the optimiser step of each report; ``dev/<metric>`` at each epoch.
"""
from __future__ import annotations

import argparse
import sys
import types
from typing import Mapping

from uer.errors import UsageError

MISSING = ("--tensorboard_dir needs the 'tensorboard' package: pip install tensorboard "
           "(or pip install -r requirements-curves.txt)")


def add_tensorboard_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tensorboard_dir", default=None,
                        help="Write TensorBoard scalars (losses, accuracies, learning rate, throughput, gradient "
                             "norm, dev metrics) into this folder; view with: tensorboard --logdir FOLDER.")


def use_tensorboard_without_tensorflow() -> None:
    """Make tensorboard use its own file I/O instead of importing TensorFlow when that is installed (as for
    the Google converters): TensorFlow adds seconds, ~1 GB and log noise to a torch process for nothing.
    tensorboard looks for the module ``tensorboard.compat.notf`` to decide (its "no_tensorflow" build)."""
    sys.modules.setdefault("tensorboard.compat.notf", types.ModuleType("tensorboard.compat.notf"))


class ScalarWriter:
    """Scalars into a TensorBoard folder; a no-op when ``log_dir`` is None or on ranks other than 0."""

    def __init__(self, log_dir: str | None, enabled: bool = True) -> None:
        self.writer = None
        if log_dir is None or not enabled:
            return
        use_tensorboard_without_tensorflow()
        try:
            import tensorboard  # noqa: F401  (torch's writer needs it; check first for a clear message)
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise UsageError(MISSING) from None
        self.writer = SummaryWriter(log_dir=log_dir)

    @property
    def active(self) -> bool:
        return self.writer is not None

    def add(self, values: Mapping[str, float], step: int, prefix: str = "train/") -> None:
        """``values`` as scalars ``prefix + name`` at ``step``; the file is flushed so a crash loses nothing."""
        if self.writer is None:
            return
        for name, value in values.items():
            self.writer.add_scalar(prefix + name, float(value), step)
        self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


def check_available(log_dir: str | None) -> None:
    """Fail at start (not after an hour of training) when ``--tensorboard_dir`` is given without the package."""
    if log_dir is None:
        return
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        raise UsageError(MISSING) from None
