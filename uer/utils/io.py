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
import shutil
import stat
from pathlib import Path
from typing import IO, Any, Callable, Iterable, Iterator, Mapping, Sequence

from uer.errors import (DataError, MissingFileError, OutputError, add_write_listener, forget_written, note_written,
                        record_written, written_files)

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


def _disk_full(err: OSError, path: Path) -> OutputError:
    try:
        free = f"{shutil.disk_usage(path.parent).free / 2**20:.1f} MiB free"
    except OSError:
        free = "free space unknown"
    return OutputError(f"no space left on the device while writing this file ({free}; nothing was replaced): "
                       "free some space or write it somewhere else", path)


def _commit(tmp: Path, path: Path) -> None:
    _fsync_path(tmp)
    os.replace(tmp, path)
    _fsync_path(path.parent, directory=True)
    _record(str(path))


def move_into_place(finished: str | os.PathLike, path: str | os.PathLike) -> None:
    """Rename a file that another library wrote completely (in the same folder) onto ``path``, with the
    same fsync and bookkeeping as :func:`atomic_write` (TensorFlow's multi-file checkpoints)."""
    _commit(Path(finished), Path(path))


@contextlib.contextmanager
def _staged(path: Path) -> Iterator[Path]:
    """A temp file beside ``path``, renamed onto it (with fsync) when the block ends normally; removed on any
    failure, Ctrl-C included. A full disk becomes :class:`uer.errors.OutputError`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path_for(path)
    try:
        _create(tmp)
        yield tmp
        _commit(tmp, path)
    except OSError as err:
        _remove(tmp)
        if err.errno in (errno.ENOSPC, errno.EDQUOT):
            raise _disk_full(err, path) from None
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


def check_output_path(path: str | os.PathLike, flag: str, inputs: Mapping[str, str | os.PathLike | None] = {},
                      create_folder: bool = False) -> None:
    """Refuse, before any work, an output that would destroy an input or cannot be written.

    Args:
        path: the output file.
        flag: how the user gave it (``--output_model_path``), for the message.
        inputs: flag -> input path (None entries are skipped); the output must be none of them.
        create_folder: the folder may be missing (it is created); otherwise a missing folder is an error.
    """
    out = Path(path)
    for in_flag, in_path in inputs.items():
        if in_path is not None and str(in_path) != "" and _same_file(out, Path(in_path)):
            raise OutputError(f"{flag} is the same file as {in_flag}: writing it would destroy the input; "
                              f"choose another {flag}", out)
    if out.is_dir():
        raise OutputError(f"{flag} is a directory; give a file name inside it (e.g. {out / 'output.bin'})", out)
    folder = out.parent
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
                  create_folder: bool = False) -> None:
    """:func:`check_output_path` for options of an argparse namespace, by attribute name.

    ``outputs`` and ``inputs`` name attributes of ``args`` (``"output_model_path"``); unset ones are skipped.
    ``extra_outputs`` adds outputs derived from options (flag description -> path). Outputs must also differ
    from each other.
    """
    seen = option_paths(args, inputs)
    for flag, path in {**option_paths(args, outputs), **extra_outputs}.items():
        check_output_path(path, flag, seen, create_folder=create_folder)
        seen[flag] = path


__all__ = ["UTF8_BOM", "atomic_open", "move_into_place", "atomic_write", "atomic_write_bytes", "atomic_write_text", "check_output_path",
           "check_input_file", "check_outputs", "decode_utf8", "option_paths", "line_number_at", "read_lines", "temp_path_for", "written_files", "add_write_listener", "forget_written", "note_written"]
