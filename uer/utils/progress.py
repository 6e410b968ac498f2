"""Progress of long loops, with a rate and an ETA: a ``tqdm`` bar when stderr is a terminal, plain periodic
lines through the log otherwise (CI, ``nohup``, a pipe, a log file: no carriage-return spam), nothing on ranks
other than 0.

    with Progress(total=len(batches), desc="dev", unit="batch", enabled=ctx.is_main) as progress:
        for batch in batches:
            ...
            progress.update()

Plain lines look like ``dev: 120/400 batch (30.0%), 15.2 batch/s, 18s left`` and come at most every
``interval`` seconds (default 30; the ``UER_PROGRESS_SECONDS`` environment variable sets another). While a bar
is shown, console log records are written above it (``tqdm.write``) so report lines never break it.
"""
from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
from typing import IO, Callable, Iterator

logger = logging.getLogger("uer.progress")

DEFAULT_INTERVAL = 30.0


def plain_interval(default: float = DEFAULT_INTERVAL) -> float:
    """Seconds between plain progress lines: ``UER_PROGRESS_SECONDS`` when set, else ``default``."""
    try:
        return float(os.environ.get("UER_PROGRESS_SECONDS", default))
    except ValueError:
        return default


def format_duration(seconds: float) -> str:
    """``45s``, ``12m05s``, ``3h07m``."""
    seconds = int(round(max(seconds, 0.0)))
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


def _amount(value: float, unit: str) -> str:
    if unit == "B":
        for scale, name in ((2 ** 30, "GiB"), (2 ** 20, "MiB"), (2 ** 10, "KiB")):
            if value >= scale:
                return f"{value / scale:.1f} {name}"
        return f"{value:.0f} B"
    return f"{value:,.0f}"


class _TqdmConsoleHandler(logging.StreamHandler):
    """A console handler that writes through ``tqdm.write``, so log lines appear above the bar."""

    def emit(self, record: logging.LogRecord) -> None:
        from tqdm import tqdm

        try:
            tqdm.write(self.format(record), file=self.stream)
        except Exception:  # logging must never raise
            self.handleError(record)


_redirect_depth = 0


@contextlib.contextmanager
def _console_logging_through_tqdm() -> Iterator[None]:
    global _redirect_depth
    root = logging.getLogger()
    original = list(root.handlers)
    if _redirect_depth == 0:
        replaced = []
        for handler in original:
            if type(handler) is logging.StreamHandler and handler.stream in (sys.stdout, sys.stderr):
                new = _TqdmConsoleHandler(handler.stream)
                new.setLevel(handler.level)
                new.setFormatter(handler.formatter)
                replaced.append(new)
            else:
                replaced.append(handler)
        root.handlers = replaced
    _redirect_depth += 1
    try:
        yield
    finally:
        _redirect_depth -= 1
        if _redirect_depth == 0:
            root.handlers = original


class Progress:
    """Progress of one loop of known length ``total`` (in ``unit``s; ``unit="B"`` prints bytes as KiB/MiB/GiB).

    Args:
        total: amount of work; None when unknown (no percentage nor ETA).
        desc: what is being done, the start of every line.
        enabled: False on ranks other than 0 (then nothing is shown).
        stream: where the bar goes (default stderr); a bar is shown only when it is a terminal.
        interval: seconds between plain lines (default: ``UER_PROGRESS_SECONDS`` or 30).
        write: how plain lines are written (default: the ``uer.progress`` logger at INFO).
        position: line of the bar when several are shown at once (0 = the first).
        initial: work already done when the loop starts (a resumed run).
    """

    def __init__(self, total: float | None, desc: str, unit: str = "it", enabled: bool = True,
                 stream: IO[str] | None = None, interval: float | None = None,
                 write: Callable[[str], None] | None = None, position: int = 0, initial: float = 0) -> None:
        self.total = total
        self.desc = desc
        self.unit = unit
        self.enabled = enabled
        self.done = initial
        self.initial = initial
        self.interval = plain_interval() if interval is None else interval
        self.write = write or logger.info
        self.start = time.perf_counter()
        self.last_line = self.start
        self.bar = None
        self._redirect: contextlib.AbstractContextManager | None = None
        stream = sys.stderr if stream is None else stream
        if enabled and _is_terminal(stream):
            from tqdm import tqdm

            self._redirect = _console_logging_through_tqdm()
            self._redirect.__enter__()
            self.bar = tqdm(total=total, desc=desc, unit=unit, file=stream, position=position, initial=initial,
                            unit_scale=unit == "B", unit_divisor=1024 if unit == "B" else 1000,
                            # a terminal without a window size (0 x 0, e.g. some pseudo-terminals) would hide the bar
                            dynamic_ncols=_size(stream)[0] > 0, ncols=None if _size(stream)[0] > 0 else 100,
                            nrows=None if _size(stream)[1] > 0 else 24,
                            leave=position == 0, mininterval=0.5)

    @property
    def terminal(self) -> bool:
        return self.bar is not None

    def update(self, n: float = 1) -> None:
        self.set(self.done + n)

    def set(self, done: float) -> None:
        """Set the amount done (for counters kept elsewhere, e.g. by worker processes)."""
        if not self.enabled:
            self.done = done
            return
        if self.bar is not None:
            self.bar.update(done - self.done)
            self.done = done
            return
        self.done = done
        now = time.perf_counter()
        if now - self.last_line >= self.interval:
            self.last_line = now
            self.write(self.line(now))

    def line(self, now: float | None = None) -> str:
        """The plain progress line: done/total (percentage), rate, time left."""
        now = time.perf_counter() if now is None else now
        elapsed = max(now - self.start, 1e-9)
        rate = (self.done - self.initial) / elapsed
        if self.unit == "B":
            rate_text = f"{_amount(rate, 'B')}/s"
        else:
            rate_text = f"{rate:,.1f} {self.unit}/s"
        if self.total:
            left = (self.total - self.done) / rate if rate > 0 else float("inf")
            left_text = format_duration(left) if left != float("inf") else "?"
            return (f"{self.desc}: {_amount(self.done, self.unit)}/{_amount(self.total, self.unit)}"
                    f"{'' if self.unit == 'B' else ' ' + self.unit} ({100.0 * self.done / self.total:.1f}%), "
                    f"{rate_text}, {left_text} left")
        return f"{self.desc}: {_amount(self.done, self.unit)}{'' if self.unit == 'B' else ' ' + self.unit}, {rate_text}"

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        if self._redirect is not None:
            self._redirect.__exit__(None, None, None)
            self._redirect = None

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _size(stream: IO[str]) -> tuple[int, int]:
    """(columns, lines) of the terminal ``stream`` is; 0 when unknown (a pseudo-terminal without a window size)."""
    try:
        size = os.get_terminal_size(stream.fileno())
        return size.columns, size.lines
    except (AttributeError, ValueError, OSError):
        return 0, 0


def _is_terminal(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def progress_iter(items, desc: str, unit: str = "it", enabled: bool = True, total: float | None = None):
    """Iterate ``items`` with a :class:`Progress` of ``len(items)`` (or ``total``)."""
    if total is None:
        try:
            total = len(items)
        except TypeError:
            total = None
    with Progress(total, desc, unit, enabled=enabled) as progress:
        for item in items:
            yield item
            progress.update()
