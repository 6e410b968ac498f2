"""User errors, and the one way every entry script ends on them.

A *user error* is a mistake in what the user gave: a bad config, a bad data file, a missing file, bytes
that are not UTF-8, a directory where a file is expected, a full disk, a model that does not fit the
config. Entry scripts end on one with a single line on stderr and exit status 2::

    run_classifier.py: error: datasets/x/dev.tsv:17: label 'pos' is not an integer (labels are 0 .. n-1)

Anything else is a bug and keeps its traceback. ``UER_DEBUG=1`` shows the traceback of user errors
too. Ctrl-C ends with one line saying which files were written (exit status 130).

Every error class of the project that describes bad input derives from :class:`UserError`
(``ConfigError``, ``DataError``, ``ModelLoadError``, ``PreprocessError``, ``VocabError``,
``DatasetFormatError``, ``ConversionError``, ...), and every ``main`` is wrapped by :func:`entry_point`.
This module imports nothing heavy: ``preprocess.py``'s workers import it.
"""
from __future__ import annotations

import errno
import functools
import os
import sys
from typing import Any, Callable, TypeVar

DEBUG_ENV = "UER_DEBUG"
USER_ERROR_EXIT = 2
INTERRUPTED_EXIT = 130

F = TypeVar("F", bound=Callable[..., Any])


class UserError(Exception):
    """A mistake in the user's input; printed as ``FILE:LINE: message`` (the parts that are known).

    Args:
        message: what is wrong and what to do about it.
        path: the file it is about, when the message does not name it already.
        line: the 1-based line of ``path``.
    """

    def __init__(self, message: str, path: str | os.PathLike | None = None, line: int | None = None) -> None:
        self.message = message
        self.path = None if path is None else os.fspath(path)
        self.line = line
        super().__init__(self._format())

    def _format(self) -> str:
        where = self.path or ""
        if where and self.line is not None:
            where = f"{where}:{self.line}"
        return f"{where}: {self.message}" if where else self.message

    def __reduce__(self) -> tuple:  # picklable across processes with path and line intact
        return (_rebuild, (type(self), self.message, self.path, self.line))


def _rebuild(cls: type, message: str, path: str | None, line: int | None) -> UserError:
    err = cls.__new__(cls)
    UserError.__init__(err, message, path, line)
    return err


class UsageError(UserError, ValueError):
    """Options that cannot work together, or an option value out of range."""


class OutputError(UserError, OSError):
    """An output that cannot or must not be written: it is an input, a directory, in a missing folder, or
    the disk is full."""


class DataError(UserError, ValueError):
    """A data file that cannot be read as asked (encoding, columns, values); names the file and line."""


class MissingFileError(UserError, FileNotFoundError):
    """An input file that does not exist (still a FileNotFoundError for callers that catch that)."""


class TrainingDivergedError(UserError):
    """The training loss became NaN or infinite (a learning rate too high, broken weights or data)."""


class RankError(UserError):
    """A user error raised in one rank of a multi-process run (the message is that rank's line)."""


# OSError numbers that come from the user's files or machine, not from a bug.
_USER_ERRNOS = {
    errno.ENOENT: "no such file or directory",
    errno.EISDIR: "is a directory, but a file is expected here",
    errno.ENOTDIR: "a part of this path is not a directory",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.ENOSPC: "no space left on the device: free some space or write somewhere else",
    errno.EDQUOT: "disk quota exceeded: free some space or write somewhere else",
    errno.EFBIG: "file too large for this file system or the file-size limit (ulimit -f): write somewhere else "
                 "or raise the limit",
    errno.EROFS: "read-only file system: write somewhere else",
    errno.ENAMETOOLONG: "file name too long",
    errno.EEXIST: "already exists",
}


def user_error_message(err: BaseException) -> str | None:
    """The one-line message for a user error, or None when ``err`` is a bug (it keeps its traceback)."""
    if isinstance(err, UserError):
        return str(err)
    if isinstance(err, OSError) and err.errno in _USER_ERRNOS:
        what = _USER_ERRNOS[err.errno]
        return f"{err.filename}: {what}" if err.filename else what
    if isinstance(err, (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError)):
        return str(err)  # raised with a message of our own (no errno)
    if isinstance(err, RuntimeError) and is_torch_write_failure(err):
        return ("writing a file failed: the disk is full or a file-size limit (ulimit -f) was reached; free some "
                "space, raise the limit or write somewhere else")
    if type(err).__name__ == "UnpicklingError":  # pickle's and torch's weights_only refusal; no import needed
        return ("refused to load a file that holds pickled data other than tensors (it could run code when "
                "loaded): " + one_line(str(err)).split(";")[0][:200])
    if isinstance(err, UnicodeDecodeError):
        return (f"bytes that are not valid UTF-8 ({err.object[err.start:err.start + 4]!r}); "
                "save the file as UTF-8")
    return None


def is_torch_write_failure(err: BaseException) -> bool:
    """torch.save's C++ writer reports a full disk or EFBIG as a RuntimeError without errno:
    ``[enforce fail at inline_container.cc:...] . unexpected pos ...`` or ``PytorchStreamWriter failed
    writing file ...``."""
    text = str(err)
    return "inline_container.cc" in text or "PytorchStreamWriter failed" in text or "file write failed" in text


def one_line(message: str) -> str:
    """Join a multi-line message into one line."""
    return "; ".join(part.strip() for part in str(message).splitlines() if part.strip())


def debug_enabled() -> bool:
    return os.environ.get(DEBUG_ENV, "").strip() not in ("", "0")


def fail(prog: str, message: str, code: int = USER_ERROR_EXIT) -> None:
    """Print ``prog: error: message`` on one line and exit with ``code``."""
    sys.stdout.flush()
    print(f"{prog}: error: {one_line(message)}", file=sys.stderr, flush=True)
    raise SystemExit(code)


# What this run wrote with the atomic writers (uer.utils.io records every completed write here), for the
# Ctrl-C line; a spawned rank reports its writes to the parent through a listener.
_written: list[str] = []
_listeners: list[Callable[[str], None]] = []


def record_written(path: str) -> None:
    _written.append(path)
    for listener in list(_listeners):
        listener(path)


def forget_written() -> None:
    """Start a new run's list of written files (entry scripts called twice in one process)."""
    _written.clear()


def written_files() -> list[str]:
    """Files this process (and the ranks it started) wrote with the atomic writers, oldest first."""
    return list(_written)


def add_write_listener(listener: Callable[[str], None]) -> None:
    """Call ``listener(path)`` after every completed write (a spawned rank reports to its parent)."""
    _listeners.append(listener)


def note_written(path: str) -> None:
    """Record a file written elsewhere (by a child process) as written by this run."""
    if path not in _written:
        _written.append(path)


def interrupted_message() -> str:
    files = written_files()
    if not files:
        return "interrupted; no output was written"
    if len(files) == 1:
        return f"interrupted; written before that: {files[0]}"
    return f"interrupted; {len(files)} files written before that, the last {files[-1]}"


def entry_point(prog: str, aliases: tuple[str, ...] = ()) -> Callable[[F], F]:
    """Decorate a script's ``main``: user errors end in one line and exit 2, Ctrl-C in one line and 130.

    ``SystemExit("message")`` (the old way some code paths stop) is printed the same way. Bugs keep their
    traceback; with ``UER_DEBUG=1`` user errors do too. ``aliases``: other script names that run this
    ``main`` (the line names the one the user ran).
    """

    def decorate(main: F) -> F:
        @functools.wraps(main)
        def run(*args: Any, **kwargs: Any) -> Any:
            invoked = os.path.basename(sys.argv[0]) if sys.argv else ""
            name = invoked if invoked in aliases else prog
            forget_written()
            try:
                return main(*args, **kwargs)
            except KeyboardInterrupt:
                if debug_enabled():
                    raise
                sys.stdout.flush()
                print(f"{name}: {interrupted_message()}", file=sys.stderr, flush=True)
                raise SystemExit(INTERRUPTED_EXIT) from None
            except SystemExit as stop:
                if isinstance(stop.code, str) and not debug_enabled():
                    message = stop.code
                    for prefix in (f"{prog}: error: ", f"{name}: error: ", f"{prog}: ", f"{name}: ", "error: "):
                        if message.startswith(prefix):
                            message = message[len(prefix):]
                            break
                    fail(name, message)
                raise
            except Exception as err:
                message = user_error_message(err)
                if message is None or debug_enabled():
                    raise
                fail(name, message)

        return run  # type: ignore[return-value]

    return decorate


__all__ = ["DEBUG_ENV", "DataError", "MissingFileError", "INTERRUPTED_EXIT", "OutputError", "RankError", "TrainingDivergedError", "USER_ERROR_EXIT", "UsageError", "UserError",
           "entry_point", "fail", "one_line", "user_error_message"]
