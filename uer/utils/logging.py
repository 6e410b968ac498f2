"""Log setup: rank 0 reports, the other ranks only warn; optionally also into a file (UER-py's --log_path,
--log_level for the console, --log_file_level for the file)."""
from __future__ import annotations

import argparse
import logging
import os
import sys

FILE_FORMAT = "[%(asctime)s %(levelname)s] %(message)s"  # UER-py's log file lines
STDOUT_PATHS = ("-", "/dev/stdout")  # outputs that are standard output: the console log moves to stderr


def setup_logging(is_main: bool = True, rank: int = 0, log_path: str | None = None, log_level: str = "INFO",
                  log_file_level: str = "INFO", console_stream=None) -> None:
    """Console on stdout (time and message; ranks other than 0 only warnings and errors), and, with
    ``log_path``, a file the records of every rank are appended to, at its own level. ``console_stream``:
    another stream for the console (stderr when the predictions go to stdout)."""
    console_level = logging.getLevelName(log_level)
    if not is_main:
        console_level = max(console_level, logging.WARNING)
    prefix = "" if rank == 0 else f"[rank {rank}] "
    console = logging.StreamHandler(console_stream or sys.stdout)
    console.setLevel(console_level)
    console.setFormatter(logging.Formatter(f"%(asctime)s {prefix}%(message)s", datefmt="%H:%M:%S"))
    handlers: list[logging.Handler] = [console]
    levels = [console_level]
    if log_path:
        directory = os.path.dirname(os.path.abspath(log_path))
        os.makedirs(directory, exist_ok=True)
        file_level = logging.getLevelName(log_file_level)
        if not is_main:
            file_level = max(file_level, logging.WARNING)
        handler = logging.FileHandler(log_path, encoding="utf-8")  # appends: a resumed run continues its log
        handler.setLevel(file_level)
        handler.setFormatter(logging.Formatter(FILE_FORMAT.replace("] ", f"] {prefix}")))
        handlers.append(handler)
        levels.append(file_level)
    logging.basicConfig(level=min(levels), handlers=handlers, force=True)


def setup_logging_from_args(args: argparse.Namespace, is_main: bool = True, rank: int = 0) -> None:
    """setup_logging with the --log_path/--log_level/--log_file_level of ``args`` (defaults where absent)."""
    to_stdout = any(getattr(args, name, None) in STDOUT_PATHS for name in ("prediction_path", "output_path"))
    setup_logging(is_main, rank, getattr(args, "log_path", None), getattr(args, "log_level", "INFO"),
                  getattr(args, "log_file_level", "INFO"), sys.stderr if to_stdout else None)
