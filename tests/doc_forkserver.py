"""A warm interpreter for tests/test_docs.py: the guide's ~60 commands each start Python and import torch (1.5 s
of CPU, several seconds on a busy machine), which would be most of the docs test's time.

``serve(socket_path)`` imports torch and the project's command modules once, then forks one child per request;
the child takes the caller's argv, working folder, environment and standard streams, and runs the script, ``-c``
code or ``-m`` module as ``python3`` would, then reports its exit status. ``client_main`` is the ``python3`` that
the docs test puts first on PATH: it forwards its command line and file descriptors to the server, or runs the real
interpreter for options it does not handle. Processes the commands start themselves (preprocessing workers,
training ranks) use ``sys.executable``, the real interpreter, as always.
"""
from __future__ import annotations

import importlib
import json
import os
import pkgutil
import runpy
import socket
import struct
import sys
import traceback

SOCKET_ENV = "UER_DOCS_FORKSERVER"
REAL_PYTHON_ENV = "UER_DOCS_REAL_PYTHON"


def _preload() -> None:
    import numpy  # noqa: F401
    import torch  # noqa: F401

    import uer.cli

    for module in pkgutil.iter_modules(uer.cli.__path__):
        try:
            importlib.import_module(f"uer.cli.{module.name}")
        except ImportError:  # an optional stack that is not installed: the command imports it when it runs
            pass


def _run_child(request: dict, fds: list[int], conn: socket.socket) -> None:
    """In the forked child: become the caller's process, run its command, report the exit status."""
    status = 1
    try:
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
            os.close(fd)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        argv = request["argv"]
        if argv[0] == "-c":
            sys.argv = ["-c", *argv[2:]]
            sys.path.insert(0, "")
            exec(compile(argv[1], "<string>", "exec"), {"__name__": "__main__"})
        elif argv[0] == "-m":
            sys.argv = [argv[1], *argv[2:]]
            sys.path.insert(0, request["cwd"])
            runpy.run_module(argv[1], run_name="__main__", alter_sys=True)
        else:
            sys.argv = list(argv)
            sys.path.insert(0, os.path.dirname(os.path.realpath(argv[0])))
            runpy.run_path(argv[0], run_name="__main__")
        status = 0
    except SystemExit as stop:
        code = stop.code
        status = code if isinstance(code, int) else (0 if code is None else 1)
        if code is not None and not isinstance(code, int):
            print(code, file=sys.stderr)
    except BaseException:  # what the interpreter would print, then its exit status
        traceback.print_exc()
        status = 1
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            conn.sendall(struct.pack("!i", status))
            os._exit(status)


def serve(socket_path: str) -> None:
    _preload()
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(socket_path)
    server.listen(16)
    print("ready", flush=True)
    while True:
        conn, _ = server.accept()
        size = struct.unpack("!I", conn.recv(4, socket.MSG_WAITALL))[0]
        payload, fds, _, _ = socket.recv_fds(conn, size, 3, socket.MSG_WAITALL)
        if os.fork() == 0:
            server.close()
            _run_child(json.loads(payload), list(fds), conn)
        for fd in fds:
            os.close(fd)
        conn.close()
        while True:  # reap the children that have finished (they report through their own socket)
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break


def client_main(argv: list[str]) -> None:
    handled = argv and (argv[0] in ("-c", "-m") and len(argv) > 1 or not argv[0].startswith("-"))
    if not handled or SOCKET_ENV not in os.environ:
        real = os.environ[REAL_PYTHON_ENV]
        os.execv(real, [real, *argv])
    payload = json.dumps({"argv": argv, "cwd": os.getcwd(), "env": dict(os.environ)}).encode()
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    conn.connect(os.environ[SOCKET_ENV])
    conn.sendall(struct.pack("!I", len(payload)))
    socket.send_fds(conn, [payload], [0, 1, 2])
    answer = conn.recv(4, socket.MSG_WAITALL)
    sys.exit(struct.unpack("!i", answer)[0] if len(answer) == 4 else 1)  # no answer: the child died


if __name__ == "__main__":
    if sys.argv[1] == "--serve":
        serve(sys.argv[2])
    else:
        client_main(sys.argv[2:])
