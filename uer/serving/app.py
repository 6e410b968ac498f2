"""The FastAPI application of both servers.

Routes: ``POST /encode`` (encoder) or ``POST /predict`` (prediction), ``GET /health``, ``GET /info``.
A request body is ``{"texts": [...], "texts_b": [...]?}`` (``texts_b``: the second texts of pairs, as many as
``texts``); the encoder also takes ``"format": "list"`` (default: vectors as JSON lists of numbers) or
``"base64"`` (little-endian float32 bytes of the [n x dim] matrix: exact and ~10x smaller; the Python client
uses it). Errors answer ``{"detail": "message"}``:

- 413: body larger than the limit, more texts than ``max_texts``, a text longer than ``max_text_chars``;
- 422: not JSON, wrong fields or types, ``texts_b`` of another length;
- 503: the request queue is full or the server is stopping (``Retry-After: 1``): retry later;
- 500: the model failed on this request (the server keeps serving the others).
"""
# No "from __future__ import annotations": FastAPI reads the route's Request annotation at run time.
import asyncio
import base64
import contextlib
import json
import logging
import math
import os
from dataclasses import asdict, dataclass
from typing import Any, Callable

import numpy as np

from uer.serving import require
from uer.serving.backends import EncoderService, InputError, TextPairs, TextService
from uer.serving.batcher import MicroBatcher, Overloaded

logger = logging.getLogger("uer.serving")


@dataclass(frozen=True)
class Limits:
    """What one request may hold."""

    max_texts: int = 128
    max_text_chars: int = 2000

    @property
    def max_body_bytes(self) -> int:
        # texts and texts_b, each character at most 6 bytes of JSON (\\uXXXX), plus quotes, commas, keys
        return 2 * self.max_texts * (6 * self.max_text_chars + 4) + 4096


class _HTTPError(Exception):
    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


def parse_request(body: bytes, limits: Limits, allow_format: bool) -> tuple[TextPairs, str]:
    """Check a request body against the limits and the schema; raises _HTTPError(413 / 422)."""
    if len(body) > limits.max_body_bytes:
        raise _HTTPError(413, f"request body of {len(body)} bytes exceeds the limit of {limits.max_body_bytes}")
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as err:
        raise _HTTPError(422, f"the body is not JSON ({err})") from None
    except RecursionError:
        raise _HTTPError(422, "the body is JSON nested too deeply") from None
    if not isinstance(data, dict):
        raise _HTTPError(422, 'the body must be a JSON object: {"texts": ["...", ...], "texts_b": [...]?}')
    allowed = {"texts", "texts_b"} | ({"format"} if allow_format else set())
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise _HTTPError(422, f"unknown field(s) {', '.join(map(repr, unknown))} (allowed: {', '.join(sorted(allowed))})")
    if "texts" not in data:
        raise _HTTPError(422, 'missing field "texts" (a list of strings)')
    texts = _text_list(data["texts"], "texts", limits)
    texts_b = None
    if data.get("texts_b") is not None:
        texts_b = _text_list(data["texts_b"], "texts_b", limits)
        if len(texts_b) != len(texts):
            raise _HTTPError(422, f"texts_b has {len(texts_b)} texts for {len(texts)} texts (one per text of a pair)")
    fmt = data.get("format", "list")
    if fmt not in ("list", "base64"):
        raise _HTTPError(422, f'format must be "list" or "base64", got {fmt!r}')
    return TextPairs(texts, texts_b), fmt


def _text_list(value: Any, name: str, limits: Limits) -> list[str]:
    if not isinstance(value, list):
        raise _HTTPError(422, f"{name} must be a list of strings, got {type(value).__name__}")
    if len(value) > limits.max_texts:
        raise _HTTPError(413, f"{name} has {len(value)} texts; at most {limits.max_texts} per request")
    for i, text in enumerate(value):
        if not isinstance(text, str):
            raise _HTTPError(422, f"{name}[{i}] must be a string, got {type(text).__name__}")
        if len(text) > limits.max_text_chars:
            raise _HTTPError(413, f"{name}[{i}] has {len(text)} characters; at most {limits.max_text_chars}")
    return value


def create_app(service: TextService, batcher: MicroBatcher, limits: Limits = Limits(), info: dict | None = None,
               on_startup: Callable[[], None] | None = None):
    """The FastAPI app serving ``service`` through ``batcher`` (started and closed with the app's lifespan;
    ``on_startup`` is called once the model worker runs)."""
    fastapi = require("fastapi")
    from fastapi.responses import Response

    @contextlib.asynccontextmanager
    async def lifespan(_app):
        batcher.start()
        if on_startup is not None:
            on_startup()
        try:
            yield
        finally:
            # Finish what is queued, then stop the worker (uvicorn has stopped accepting requests).
            await asyncio.get_running_loop().run_in_executor(None, batcher.close)
            logger.info("served %d requests (%d texts) in %d batches; %d failed, %d refused", batcher.stats.requests,
                        batcher.stats.texts, batcher.stats.batches, batcher.stats.failed_requests,
                        batcher.stats.refused_requests)

    app = fastapi.FastAPI(title=f"uer-next {service.kind} server", lifespan=lifespan)
    details = {**service.info, **asdict(limits), "max_batch_size": batcher.max_batch_size,
               "max_wait_ms": batcher.max_wait * 1000.0, "max_queue": batcher.max_queue, **(info or {})}
    if details.get("model"):  # the file name only: the server's folders are none of a client's business
        details["model"] = os.path.basename(str(details["model"]))
    is_encoder = isinstance(service, EncoderService)

    def error(status: int, detail: str) -> Response:
        headers = {"Retry-After": "1"} if status == 503 else None
        return Response(json_body({"detail": detail}), status_code=status, headers=headers,
                        media_type="application/json")

    @app.get("/health")
    async def health() -> Response:
        if not batcher.alive:
            return error(503, "the model worker is not running")
        return Response(json_body({"status": "ok", "queued": batcher.queued}), media_type="application/json")

    @app.get("/info")
    async def get_info() -> Response:
        return Response(json_body(details), media_type="application/json")

    async def read_body(request: fastapi.Request) -> bytes:
        """The body, refused (413) as soon as it is known to exceed the limit: never read whole into memory."""
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limits.max_body_bytes:
            raise _HTTPError(413, f"request body of {declared} bytes exceeds the limit of {limits.max_body_bytes}")
        parts, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limits.max_body_bytes:
                raise _HTTPError(413, f"request body exceeds the limit of {limits.max_body_bytes} bytes")
            parts.append(chunk)
        return b"".join(parts)

    async def handle(request: fastapi.Request) -> Response:
        try:
            pairs, fmt = parse_request(await read_body(request), limits, allow_format=is_encoder)
            service.validate(pairs)
            future = batcher.submit(pairs, len(pairs))
        except _HTTPError as err:
            return error(err.status, err.detail)
        except InputError as err:
            return error(422, str(err))
        except Overloaded as err:
            return error(503, str(err))
        try:
            result = await answer_unless_abandoned(request, future)
        except ClientGone:
            return Response(status_code=499)  # nobody reads it; the queued work was dropped
        except InputError as err:
            return error(422, str(err))
        except Exception as err:  # noqa: BLE001 - logged by the batcher; the server goes on
            return error(500, f"the model failed on this request ({type(err).__name__}: {err})")
        if is_encoder:
            return Response(_vectors_body(result, fmt), media_type="application/json")
        return Response(json_body({"predictions": result}), media_type="application/json")

    app.add_api_route(service.route, handle, methods=["POST"])
    return app


DISCONNECT_POLL_S = 0.25  # how often a waiting request checks that its client is still connected


class ClientGone(Exception):
    """The client disconnected before its answer was ready."""


async def answer_unless_abandoned(request: Any, future: Any) -> Any:
    """The result of ``future``; if the client disconnects first, the queued job is cancelled (the worker
    skips cancelled jobs, so abandoned requests cost no model time) and :class:`ClientGone` is raised."""
    waiter = asyncio.wrap_future(future)
    while True:
        done, _ = await asyncio.wait({waiter}, timeout=DISCONNECT_POLL_S)
        if done:
            return waiter.result()
        if await request.is_disconnected():
            waiter.cancel()  # cancels the concurrent future too (asyncio.wrap_future chains them)
            raise ClientGone()


def json_body(value: Any) -> bytes:
    """RFC 8259 JSON: NaN and infinities (not JSON numbers) become null."""
    try:
        return json.dumps(value, default=_builtin, allow_nan=False).encode()
    except ValueError:
        return json.dumps(_finite(value), default=_builtin, allow_nan=False).encode()


def _finite(value: Any) -> Any:
    if isinstance(value, (np.generic, np.ndarray)):
        value = value.tolist()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def _builtin(value: Any) -> Any:
    """numpy scalars and arrays in an answer, as JSON numbers and lists."""
    if isinstance(value, (np.generic, np.ndarray)):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _vectors_body(vectors: np.ndarray, fmt: str) -> bytes:
    if fmt == "base64":
        data = np.ascontiguousarray(vectors, dtype="<f4")
        body = {"shape": list(data.shape), "dtype": "float32", "vectors_b64": base64.b64encode(data.tobytes()).decode()}
    else:
        body = {"vectors": vectors.tolist()}
    return json_body(body)
