"""Writing artifacts safely: one atomic write for every file the project produces, and output-path checks.

Every artifact (models, ``.trainer`` sidecars, datasets, vocabularies, predictions, features, generated
text, converted checkpoints) is written to a temporary file in the destination folder, flushed to disk
(``fsync``), then renamed onto its name: a crash, a full disk or Ctrl-C never leaves a half-written file
under the final name, and an existing file stays intact until the new one is complete. The new file gets
the permissions the user's umask gives (``mkstemp`` would make it 0600).

:func:`check_outputs` runs before the work: an output that is one of the inputs, a directory, or inside a
missing folder is refused with one line naming the option.
"""
from __future__ import annotations

import contextlib
import errno
import os
import secrets
import re
import shutil
import stat
import sys
from pathlib import Path
from typing import IO, Any, Callable, Iterable, Iterator, Mapping, Sequence

from uer.errors import (DataError, MissingFileError, OutputError, add_write_listener, forget_written,
                        is_torch_write_failure, note_written, record_written, written_files)

TEMP_SUFFIX = ".tmp"
UTF8_BOM = b"\xef\xbb\xbf"  # Excel and Notepad start UTF-8 files with it


def temp_path_for(path: str | os.PathLike) -> Path:
    """A fresh hidden name beside ``path``: ``.NAME.tmp-PID-<random>.tmp``. The writer's process id tells a
    later run a leftover of a killed run from a file being written (uer.utils.cleanup)."""
    path = Path(path)
    return path.with_name(f".{path.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}{TEMP_SUFFIX}")


def _create(tmp: Path) -> None:
    # os.open with 0o666 lets the umask decide the permissions, as for any file the user creates.
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))


def _fsync_path(path: Path, directory: bool = False) -> None:
    try:
        fd = os.open(path, os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if directory else 0))
    except OSError:
        if directory:
            return  # some systems cannot open folders; the rename is still atomic
        raise
    try:
        os.fsync(fd)
    except OSError:
        if not directory:
            raise
    finally:
        os.close(fd)


def _free_space(path: Path) -> str:
    try:
        return f"{shutil.disk_usage(path.parent).free / 2**20:.1f} MiB free"
    except OSError:
        return "free space unknown"


def _disk_full(err: OSError, path: Path) -> OutputError:
    return OutputError(f"no space left on the device while writing this file ({_free_space(path)}; nothing was "
                       "replaced): free some space or write it somewhere else", path)


def _commit(tmp: Path, path: Path) -> None:
    _fsync_path(tmp)
    os.replace(tmp, path)
    _fsync_path(path.parent, directory=True)
    _record(str(path))


def move_into_place(finished: str | os.PathLike, path: str | os.PathLike) -> None:
    """Rename a file that another library wrote completely (in the same folder) onto ``path``, with the
    same fsync and bookkeeping as :func:`atomic_write` (TensorFlow's multi-file checkpoints)."""
    _commit(Path(finished), Path(path))


STDOUT = "-"  # an output path that means standard output (UER-py and pandas read it so for predictions)


_STANDARD_STREAMS = re.compile(r"/dev/(stdout|stderr|fd/\d+)|/proc/self/fd/\d+")


def write_target(path: str | os.PathLike) -> Path:
    """Where writing ``path`` really goes: ``-`` is standard output, a symlink its target (the link stays)."""
    if os.fspath(path) == STDOUT:
        return Path("/dev/stdout")
    if is_stream(Path(path)):
        return Path(path)
    return Path(os.path.realpath(path)) if os.path.islink(path) else Path(path)


def is_stream(path: Path) -> bool:
    """An output that is not a regular file (a device, a named pipe, a terminal, /dev/stdout even when the
    shell sends it to a file): written through, never replaced by a renamed file (``/dev/null`` must stay a
    device)."""
    if os.fspath(path) == STDOUT or _STANDARD_STREAMS.fullmatch(os.fspath(path)):
        return True
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return not stat.S_ISREG(mode) and not stat.S_ISDIR(mode)


def _write_failed(err: BaseException, path: Path) -> OutputError | None:
    """A full disk, a file-size limit, or torch's writer reporting either, as one line naming ``path``."""
    if isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT):
        return _disk_full(err, path)
    if isinstance(err, OSError) and err.errno == errno.EFBIG:
        return OutputError("file too large for the file system or the file-size limit (ulimit -f) "
                           "(nothing was replaced): raise the limit or write it somewhere else", path)
    if isinstance(err, RuntimeError) and is_torch_write_failure(err):
        return OutputError("writing failed: the disk is full or a file-size limit (ulimit -f) was reached "
                           f"({_free_space(path)}; nothing was replaced): free some space or write it somewhere else",
                           path)
    return None


@contextlib.contextmanager
def _staged(path: Path) -> Iterator[Path]:
    """A temp file beside ``path``, renamed onto it (with fsync) when the block ends normally; removed on any
    failure, Ctrl-C included. A full disk or a file-size limit becomes :class:`uer.errors.OutputError`.
    A symlink's target is replaced (the link stays); a device or named pipe is written through directly."""
    path = write_target(path)
    if is_stream(path):
        try:
            yield path
        except (OSError, RuntimeError) as err:
            raise (_write_failed(err, path) or err) from None
        _record(str(path))
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path_for(path)
    try:
        _create(tmp)
        yield tmp
        _commit(tmp, path)
    except (OSError, RuntimeError) as err:
        _remove(tmp)
        failure = _write_failed(err, path)
        if failure is not None:
            raise failure from None
        raise
    except BaseException:
        _remove(tmp)
        raise


def atomic_write(path: str | os.PathLike, write: Callable[[str], Any]) -> None:
    """Call ``write(temp_path)`` (e.g. ``torch.save(state, temp_path)``), then fsync and rename onto ``path``.

    The folder of ``path`` is created when missing (scripts refuse a missing output folder earlier, with
    :func:`check_outputs`). A full disk raises :class:`uer.errors.OutputError`; the temp file is removed on
    any failure, Ctrl-C included.
    """
    with _staged(Path(path)) as tmp:
        if is_stream(tmp):  # a device or pipe: the library writes into it
            write(str(tmp))
            return
        mode = stat.S_IMODE(os.stat(tmp).st_mode)
        write(str(tmp))
        if stat.S_IMODE(os.stat(tmp).st_mode) != mode:  # the library replaced our file (safetensors: 0600)
            os.chmod(tmp, mode)


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", encoding: str | None = "utf-8",
                newline: str | None = "\n") -> Iterator[IO[Any]]:
    """``with atomic_open(path, "w") as f: f.write(...)``: streamed into a temp file, renamed on success only."""
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open writes new files: mode 'w' or 'wb', not {mode!r}")
    binary = mode == "wb"
    if os.fspath(path) == STDOUT:  # predictions to standard output: print them (no file, nothing to rename)
        stream = sys.stdout.buffer if binary else sys.stdout
        try:
            yield stream
        finally:
            stream.flush()
        return
    with _staged(Path(path)) as tmp:
        with open(tmp, mode, **({} if binary else {"encoding": encoding, "newline": newline})) as handle:
            yield handle
            handle.flush()


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8, ``\\n`` line ends) atomically."""
    with atomic_open(path, "w") as handle:
        handle.write(text)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_open(path, "wb") as handle:
        handle.write(data)


def _remove(tmp: Path) -> None:
    try:
        os.remove(tmp)
    except FileNotFoundError:
        pass


# ------------------------------------------------------------------------------------------------------
# what was written (for the Ctrl-C line)

# The list itself lives in uer.errors (which must not import this module: no cycle); these names stay here
# for the writers and the launcher.
_record = record_written


# ------------------------------------------------------------------------------------------------------
# reading text: UTF-8 errors name the file, line and byte offset

def check_input_file(path: str | os.PathLike, what: str, hint: str = "") -> None:
    """Refuse a missing input file, or a directory given where a file is expected, naming ``what`` it is."""
    if os.path.isdir(path):
        raise DataError(f"is a directory, but the {what} must be a file{hint}", path)
    if not os.path.isfile(path):
        raise MissingFileError(f"{what} not found{hint}", path)


def line_number_at(path: str | os.PathLike, offset: int) -> int:
    """1-based number of the line holding byte ``offset`` (counted only when reporting an error)."""
    with open(path, "rb") as handle:
        return handle.read(offset).count(b"\n") + 1


def decode_utf8(raw: bytes, path: str | os.PathLike, line: int | None = None, offset: int = 0) -> str:
    """``raw`` (one line of ``path``, starting at byte ``offset``) as text; invalid UTF-8 is a
    :class:`uer.errors.DataError` naming the line and the byte offset."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        if line is None:
            line = line_number_at(path, offset)
        raise DataError(f"invalid UTF-8 at byte offset {offset + err.start} ({raw[err.start:err.start + 4]!r}): "
                        "the file must be UTF-8 (convert it, e.g. iconv -f GBK -t UTF-8)", path, line) from None


def read_lines(path: str | os.PathLike) -> Iterator[tuple[int, str]]:
    """(line number, text without its line end) for every line of a UTF-8 file; a leading BOM is skipped."""
    with open(path, "rb") as handle:
        offset = 0
        for number, raw in enumerate(handle, start=1):
            start = 3 if number == 1 and raw.startswith(UTF8_BOM) else 0
            yield number, decode_utf8(raw[start:], path, number, offset + start).rstrip("\r\n")
            offset += len(raw)


# ------------------------------------------------------------------------------------------------------
# output checks, before the work

def _same_file(a: Path, b: Path) -> bool:
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


CHECKPOINT_SUFFIX = re.compile(r"-\d+(\.trainer)?|\.trainer")
RUN_OUTPUTS = ("log_path",)       # side outputs of every script that has the option (appended to)
RUN_OUTPUT_FOLDERS = ("tensorboard_dir",)  # folders a run writes new files into


def _is_checkpoint_of(candidate: Path, output: Path) -> bool:
    """``candidate`` is ``OUTPUT-STEP``, ``OUTPUT-STEP.trainer`` or ``OUTPUT.trainer`` (what a run that
    checkpoints ``output`` writes)."""
    if os.path.realpath(candidate.parent) != os.path.realpath(output.parent):
        return False
    name = candidate.name
    return name.startswith(output.name) and bool(CHECKPOINT_SUFFIX.fullmatch(name[len(output.name):]))


def check_output_path(path: str | os.PathLike, flag: str, inputs: Mapping[str, str | os.PathLike | None] = {},
                      create_folder: bool = False, checkpoints: bool = False) -> None:
    """Refuse, before any work, an output that would destroy an input or cannot be written.

    Args:
        path: the output file; ``-`` (standard output), a device or a named pipe is written through.
        flag: how the user gave it (``--output_model_path``), for the message.
        inputs: flag -> input path (None entries are skipped); the output must be none of them.
        create_folder: the folder may be missing (it is created); otherwise a missing folder is an error.
        checkpoints: the run also writes ``PATH-STEP`` and ``PATH-STEP.trainer``: no input may be one of
            those either (``--resume_from PATH-STEP`` is the exception: a resumed run writes later steps).
    """
    if os.fspath(path) == STDOUT:
        return
    out = Path(path)
    for in_flag, in_path in inputs.items():
        if in_path is None or str(in_path) == "" or os.fspath(in_path) == STDOUT:
            continue
        if _same_file(out, Path(in_path)):
            raise OutputError(f"{flag} is the same file as {in_flag}: writing it would destroy the input; "
                              f"choose another {flag}", out)
        if checkpoints and in_flag != "--resume_from" and _is_checkpoint_of(Path(in_path), out):
            raise OutputError(f"{in_flag} {in_path} has the name of a checkpoint of {flag} (NAME-STEP, "
                              f"NAME-STEP.trainer): the run would overwrite it; choose another {flag}", out)
    if is_stream(out):
        if not os.access(write_target(out), os.W_OK):
            raise OutputError(f"{flag}: no permission to write into it", out)
        return
    if out.is_dir():
        raise OutputError(f"{flag} is a directory; give a file name inside it (e.g. {out / 'output.bin'})", out)
    folder = write_target(out).parent
    if not folder.exists():
        if create_folder:
            return
        raise OutputError(f"{flag}: the folder {folder} does not exist; create it first (mkdir -p {folder})", out)
    if not folder.is_dir():
        raise OutputError(f"{flag}: {folder} is not a folder", out)
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError(f"{flag}: no permission to write into the folder {folder}", out)


def option_paths(args: Any, names: Iterable[str]) -> dict[str, str]:
    """``{"--name": path}`` for the attributes ``names`` of an argparse namespace that are set; a list-valued
    option (``--dataset_path_list``) gives one entry per element."""
    named: dict[str, str] = {}
    for name in names:
        value = getattr(args, name, None)
        values = list(value) if isinstance(value, (list, tuple)) else [value]
        for i, item in enumerate(values):
            if item:
                named[f"--{name}" if len(values) == 1 else f"--{name} (item {i + 1})"] = os.fspath(item)
    return named


def check_outputs(args: Any, outputs: Sequence[str], inputs: Iterable[str], extra_outputs: Mapping[str, str] = {},
                  create_folder: bool = False, checkpoints: Sequence[str] = ()) -> None:
    """:func:`check_output_path` for options of an argparse namespace, by attribute name: the one check of
    every output of a run against every input, before the work.

    ``outputs`` and ``inputs`` name attributes of ``args`` (``"output_model_path"``); unset ones are skipped.
    ``extra_outputs`` adds outputs derived from options (flag description -> path). The run's side outputs
    (``--log_path``, ``--tensorboard_dir``) are added when ``args`` has them. ``checkpoints`` names the
    outputs also written as ``NAME-STEP`` (+ ``.trainer``). Outputs must also differ from each other.
    """
    seen = option_paths(args, inputs)
    files = {**option_paths(args, outputs), **extra_outputs}
    side = option_paths(args, RUN_OUTPUTS)  # the log's folder is created when missing (uer.utils.logging)
    stepped = set(option_paths(args, checkpoints))
    for flag, path in {**files, **side}.items():
        check_output_path(path, flag, seen, create_folder=create_folder or flag in side, checkpoints=flag in stepped)
        seen[flag] = path
    for flag, folder in option_paths(args, RUN_OUTPUT_FOLDERS).items():
        for in_flag, in_path in seen.items():
            if in_path != STDOUT and _same_file(Path(folder), Path(in_path)):
                raise OutputError(f"{flag} is the same path as {in_flag}; choose another {flag}", folder)
        if Path(folder).exists() and not Path(folder).is_dir():
            raise OutputError(f"{flag} is a file, but it must be a folder (TensorBoard writes event files into it)",
                              folder)


__all__ = ["UTF8_BOM", "atomic_open", "move_into_place", "atomic_write", "atomic_write_bytes", "atomic_write_text", "check_output_path",
           "check_input_file", "check_outputs", "STDOUT", "is_stream", "write_target", "decode_utf8", "option_paths", "line_number_at", "read_lines", "temp_path_for", "written_files", "add_write_listener", "forget_written", "note_written"]
