"""The micro-batcher: concurrent requests gathered into one model batch.

Requests are put in a bounded queue; one worker thread (the only one that touches the model, so one model
copy serves every request) takes the oldest request, then gathers more until the batch holds
``max_batch_size`` texts or ``max_wait_ms`` have passed since it took the first one, runs them as one batch
and hands each request its own results. While the model runs, new requests queue up, so under load batches
fill without waiting; with a single client the wait bounds the added latency.

A full queue refuses a request at once (:class:`Overloaded`, answered 503) rather than letting the queue and
the latency grow without limit. If a batch of several requests fails, each request is run again on its
own, so a request that breaks the model fails alone and the others get their answers.
"""
from __future__ import annotations

import logging
import queue
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

logger = logging.getLogger("uer.serving")


class Overloaded(RuntimeError):
    """The request queue is full (or the server is shutting down): try again later (HTTP 503)."""


@dataclass
class _Job:
    payload: Any
    size: int
    future: Future = field(default_factory=Future)


_STOP = object()


@dataclass
class BatcherStats:
    """Counters since start (read without a lock: a snapshot may be a batch behind)."""

    requests: int = 0
    texts: int = 0
    batches: int = 0
    largest_batch: int = 0
    failed_requests: int = 0
    refused_requests: int = 0


class MicroBatcher:
    """Gather requests into model batches on one worker thread.

    Args:
        run: called on the worker thread with the payloads of one batch; returns one result per payload, in
            order. An exception fails the batch (then each payload is retried alone).
        max_batch_size: texts per model batch (a request with more texts than this runs alone).
        max_wait_ms: how long the worker waits for more requests after taking the first one of a batch.
        max_queue: requests that may wait; one more is refused with :class:`Overloaded`.
        on_start: called once on the worker thread before the first batch (thread settings).
    """

    def __init__(self, run: Callable[[Sequence[Any]], Sequence[Any]], max_batch_size: int = 32,
                 max_wait_ms: float = 2.0, max_queue: int = 256, on_start: Callable[[], None] | None = None) -> None:
        if max_batch_size < 1:
            raise ValueError(f"max_batch_size must be at least 1, got {max_batch_size}")
        if max_wait_ms < 0:
            raise ValueError(f"max_wait_ms must not be negative, got {max_wait_ms}")
        if max_queue < 1:
            raise ValueError(f"max_queue must be at least 1, got {max_queue}")
        self._run = run
        self.max_batch_size = max_batch_size
        self.max_wait = max_wait_ms / 1000.0
        self.max_queue = max_queue
        self._on_start = on_start
        self._queue: queue.Queue = queue.Queue(maxsize=max_queue)
        self._thread: threading.Thread | None = None
        self._closed = False
        self._lock = threading.Lock()
        self.stats = BatcherStats()

    # -- lifecycle -------------------------------------------------------------------------------------

    def start(self) -> "MicroBatcher":
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="uer-serving-batcher", daemon=True)
            self._thread.start()
        return self

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def close(self, timeout: float | None = 30.0) -> None:
        """Refuse new requests, finish the queued ones, stop the worker."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        if self.alive:
            self._queue.put(_STOP, timeout=timeout)  # waits only while the worker drains a full queue
            self._thread.join(timeout)

    def __enter__(self) -> "MicroBatcher":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- requests --------------------------------------------------------------------------------------

    @property
    def queued(self) -> int:
        return self._queue.qsize()

    def submit(self, payload: Any, size: int = 1) -> Future:
        """Queue one request of ``size`` texts; its future gets the result (or the exception).

        Raises :class:`Overloaded` when the queue is full or the batcher is closed.
        """
        job = _Job(payload, max(1, int(size)))
        with self._lock:
            if self._closed or not self.alive:
                raise Overloaded("the server is shutting down")
            try:
                self._queue.put_nowait(job)
            except queue.Full:
                self.stats.refused_requests += 1
                raise Overloaded(f"the request queue is full ({self.max_queue} requests waiting); "
                                 "try again later") from None
        return job.future

    # -- worker ----------------------------------------------------------------------------------------

    def _loop(self) -> None:
        if self._on_start is not None:
            self._on_start()
        carry: Any = None
        while True:
            job = carry if carry is not None else self._queue.get()
            carry = None
            if job is _STOP:
                return
            jobs, size = [job], job.size
            deadline = time.monotonic() + self.max_wait
            while size < self.max_batch_size:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    try:
                        nxt = self._queue.get(timeout=remaining)
                    except queue.Empty:
                        break
                if nxt is _STOP or size + nxt.size > self.max_batch_size:
                    carry = nxt  # starts the next batch (or stops the worker after this one)
                    break
                jobs.append(nxt)
                size += nxt.size
            self._execute(jobs)

    def _execute(self, jobs: list[_Job]) -> None:
        # A request whose client went away was cancelled: skip it.
        live = [job for job in jobs if job.future.set_running_or_notify_cancel()]
        if not live:
            return
        stats = self.stats
        stats.batches += 1
        stats.requests += len(live)
        size = sum(job.size for job in live)
        stats.texts += size
        stats.largest_batch = max(stats.largest_batch, size)
        try:
            results = self._run([job.payload for job in live])
            if len(results) != len(live):
                raise RuntimeError(f"the model returned {len(results)} results for {len(live)} requests")
        except Exception as err:  # noqa: BLE001 - one request must not take the server down
            if len(live) == 1:
                self._fail(live[0], err)
                return
            logger.warning("a batch of %d requests failed (%s: %s); running them one by one", len(live),
                           type(err).__name__, err)
            for job in live:
                try:
                    job.future.set_result(self._run([job.payload])[0])
                except Exception as single_err:  # noqa: BLE001
                    self._fail(job, single_err)
            return
        for job, result in zip(live, results):
            job.future.set_result(result)

    def _fail(self, job: _Job, err: Exception) -> None:
        self.stats.failed_requests += 1
        if not getattr(err, "client_error", False):
            logger.error("request failed: %s: %s", type(err).__name__, err, exc_info=err)
        job.future.set_exception(err)
