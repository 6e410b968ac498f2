"""Running an app with uvicorn: the options both servers share, a socket bound before the model worker starts
(``--port 0`` picks a free port, reported on the first line), and a clean stop on SIGTERM / Ctrl-C."""
from __future__ import annotations

import argparse
import logging
import signal
import socket
import sys
import threading
from typing import Any, Callable

import torch

from uer.errors import UsageError
from uer.serving import require
from uer.serving.app import Limits
from uer.serving.backends import BACKENDS
from uer.serving.batcher import MicroBatcher
from uer.utils.ranges import non_negative_float, non_negative_int, port_number, positive_int

logger = logging.getLogger("uer.serving")


def add_server_options(parser: argparse.ArgumentParser, default_port: int) -> None:
    group = parser.add_argument_group("server")
    group.add_argument("--host", default="127.0.0.1",
                       help="Address to listen on (0.0.0.0: every interface; there is no authentication).")
    group.add_argument("--port", type=port_number, default=default_port, help="Port (0: a free one, printed at start).")
    group.add_argument("--backend", default="torch", choices=BACKENDS,
                       help="Run the model with torch, or run its ONNX export (--onnx_path) with onnxruntime.")
    group.add_argument("--onnx_path", default=None, help="With --backend onnxruntime: the file of scripts/export_onnx.py.")
    group.add_argument("--threads", type=non_negative_int, default=0,
                       help="Threads of the model's matrix products (0: torch's / onnxruntime's default). "
                            "One worker thread runs every batch on one copy of the model.")
    group.add_argument("--max_batch_size", type=positive_int, default=32, help="Texts per model batch.")
    group.add_argument("--max_wait_ms", type=non_negative_float, default=2.0,
                       help="How long a batch waits for more requests after its first one (milliseconds).")
    group.add_argument("--max_queue", type=positive_int, default=256,
                       help="Requests that may wait; more are answered 503 (retry later).")
    group.add_argument("--max_texts", type=positive_int, default=128, help="Texts per request (more: 413).")
    group.add_argument("--max_text_chars", type=positive_int, default=2000, help="Characters per text (more: 413).")
    group.add_argument("--log_requests", action="store_true", help="Log every request (uvicorn's access log).")


def check_server_options(args: argparse.Namespace) -> None:
    """Options that cannot work together: a UsageError (one line from the entry script). Numeric ranges are
    checked when the options are parsed (uer/utils/ranges.py)."""
    if args.backend == "onnxruntime" and not args.onnx_path:
        raise UsageError("--backend onnxruntime needs --onnx_path (write the file with scripts/export_onnx.py)")
    if args.backend == "torch" and args.onnx_path:
        raise UsageError("--onnx_path is only used with --backend onnxruntime")


def limits_from_args(args: argparse.Namespace) -> Limits:
    return Limits(max_texts=args.max_texts, max_text_chars=args.max_text_chars)


def set_threads(threads: int) -> None:
    """torch's intra-op threads for the model worker (process-wide; 0 keeps torch's default)."""
    if threads > 0:
        torch.set_num_threads(threads)


def batcher_from_args(run: Callable, args: argparse.Namespace) -> MicroBatcher:
    return MicroBatcher(run, max_batch_size=args.max_batch_size, max_wait_ms=args.max_wait_ms,
                        max_queue=args.max_queue)


def bind(host: str, port: int) -> socket.socket:
    """A listening socket (bound before the model loads, so a taken port fails at once)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted connections inherit it (Linux): answers go out at once instead of waiting up to 40 ms for the
    # client's delayed ACK of the previous segment (Nagle), which made every request of h11's HTTP take 50 ms.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host, port))
    except (OSError, OverflowError, UnicodeError) as err:  # in use, not an address here, a bad name
        sock.close()
        raise UsageError(f"cannot listen on {host}:{port} ({getattr(err, 'strerror', None) or err}): "
                         "choose another --port or --host") from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def serve(app: Any, sock: socket.socket, log_requests: bool = False) -> None:
    """Serve ``app`` on ``sock`` until SIGTERM / SIGINT (then: stop accepting, finish the requests in flight,
    stop the model worker, return normally)."""
    uvicorn = require("uvicorn")
    config = uvicorn.Config(app, log_level="warning", access_log=log_requests, timeout_graceful_shutdown=30,
                            lifespan="on", log_config=None)
    server = uvicorn.Server(config)
    stopped: list[int] = []
    if threading.current_thread() is threading.main_thread():
        # uvicorn handles the signals while it runs and raises them again once it has stopped; these
        # handlers then make that a normal return (exit status 0) instead of death by signal.
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda signum, frame: stopped.append(signum))
    server.run(sockets=[sock])
    if stopped:
        logger.info("stopped (%s)", signal.Signals(stopped[0]).name)


def announce(url: str, kind: str) -> None:
    """The first line a server prints once it accepts requests (tests and scripts wait for it)."""
    print(f"{kind} server listening on {url}", flush=True)
    sys.stdout.flush()
