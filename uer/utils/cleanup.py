"""Leftovers of interrupted runs: temp files named after their writer, signals that let cleanup run,
worker processes that die with their parent.

* Temp files sit beside the output they become (``os.replace`` must not cross file systems) and carry the
  writer's process id: ``.NAME.tmp-PID-XXXX.tmp`` (:func:`uer.utils.io.temp_path_for`, every atomic write),
  ``.NAME.tmp-PID`` and ``.NAME.shard-I-PID`` (preprocess.py). A later run that writes ``NAME`` removes the ones whose process is no longer running
  on this machine (a SIGKILL or a power cut leaves them) and says so; temp files of a running process are
  left alone.
* SIGTERM (``kill``, a job scheduler's stop) raises :class:`Terminated` in the main thread, so the
  ``except``/``finally`` blocks that remove temp files run, as they do for Ctrl-C (``KeyboardInterrupt``).
* Worker processes ask the kernel for SIGKILL when their parent dies (Linux ``PR_SET_PDEATHSIG``; a
  watchdog thread elsewhere), so a killed preprocess.py or pretrain.py leaves no process behind.
"""
from __future__ import annotations

import ctypes
import logging
import os
import re
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Callable

logger = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1


class Terminated(SystemExit):
    """SIGTERM arrived; exits with 128 + 15 like an unhandled SIGTERM, after the cleanup handlers ran."""

    def __init__(self) -> None:
        super().__init__(128 + signal.SIGTERM)


def _raise_terminated(signum: int, frame: object) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a second SIGTERM kills at once
    raise Terminated()


def install_signal_handlers() -> None:
    """SIGTERM -> :class:`Terminated` in this process (main thread only; elsewhere a no-op)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _raise_terminated)


def die_with_parent() -> None:
    """Make this (child) process end when its parent does, whatever killed the parent."""
    parent = os.getppid()
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL("libc.so.6", use_errno=True)
            if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0:
                if os.getppid() != parent:  # the parent died before prctl took effect
                    os._exit(1)
                return
        except (OSError, AttributeError):
            pass

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, name="die-with-parent", daemon=True).start()


# .NAME<anything>.tmp-PID[-XXXX][.tmp] and .NAME<anything>.shard-I-PID; the NAME part is matched by the caller.
_OURS = re.compile(r"\.(?:tmp|shard-\d+)-(?P<pid>\d+)(?:-[0-9a-f]+)?(?:\.tmp)?$")
# Names of earlier versions: .NAME.XXXXXXXX.tmp (no process id: only reported).
_LEGACY = re.compile(r"\.[A-Za-z0-9_]{8}\.tmp$")


def _process_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def remove_stale_temp_files(output: str | os.PathLike, log: Callable[[str], None] | None = None) -> list[Path]:
    """Remove the temp files that interrupted runs left beside ``output`` (and beside ``output-STEP``
    checkpoints, which share its name as a prefix). Returns what was removed; temp files without a
    process id (older versions) are reported, not removed.
    """
    output = Path(output)
    folder = output.parent if str(output.parent) else Path(".")
    prefix = f".{output.name}"
    say = log or logger.warning
    removed: list[Path] = []
    try:
        entries = [entry for entry in os.scandir(folder) if entry.name.startswith(prefix) and entry.is_file()]
    except OSError:
        return removed
    for entry in entries:
        rest = entry.name[len(prefix):]
        match = _OURS.search(rest)
        if match is not None:
            pid = int(match["pid"])
            if pid == os.getpid() or _process_running(pid):
                continue  # being written right now
            try:
                os.remove(entry.path)
            except OSError:
                continue
            removed.append(Path(entry.path))
        elif _LEGACY.search(rest):
            say(f"{entry.path}: a temp file left by an interrupted run of an earlier version; delete it "
                f"unless another run is writing {output.name} right now")
    if removed:
        say(f"removed {len(removed)} temp file(s) left beside {output} by interrupted runs: "
            + ", ".join(p.name for p in removed[:5]) + (" ..." if len(removed) > 5 else ""))
    return removed
