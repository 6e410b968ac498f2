"""Process-group setup and the few collective helpers the loops need (one place for rank checks)."""
from __future__ import annotations

import datetime
import json
import logging
import os
import re
import time
from dataclasses import dataclass
from typing import Any, Mapping

import torch
import torch.distributed as dist

from uer.errors import UserError

logger = logging.getLogger(__name__)

# --dist_timeout's default: long enough for a slow node to start (torch import, data mapping), far below
# gloo's hard-coded 30 minutes.
DEFAULT_DIST_TIMEOUT = 300.0
_JOINED_KEY = "uer/joined/{}"
_ALIVE_KEY = "uer/alive/{}"
# The rendezvous store of this process (tcp:// init only): used to name the ranks that stop answering.
_store: Any = None
_timeout_s: float = DEFAULT_DIST_TIMEOUT


class DistributedError(UserError, RuntimeError):
    """A rank that did not join or stopped answering, or nodes started with different options."""


@dataclass(frozen=True)
class DistContext:
    """Where this process runs: its global rank, the world size and its device."""

    rank: int = 0
    world_size: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def init_process_group(backend: str, init_method: str, rank: int, world_size: int, device: torch.device,
                       timeout_s: float = DEFAULT_DIST_TIMEOUT) -> DistContext:
    """Join the process group (gloo on CPU, nccl on GPU) and return this process's context.

    ``timeout_s`` (--dist_timeout) bounds the rendezvous and every collective. With a ``tcp://`` address
    the rendezvous is ours: each rank registers under its number in rank 0's store, so a rank that never
    starts is named in the error instead of every other rank waiting without a word.
    """
    global _store, _timeout_s
    if world_size > 1:
        if timeout_s <= 0:
            raise DistributedError(f"--dist_timeout must be positive, got {timeout_s:g}")
        kwargs: dict[str, Any] = {}
        if device.type == "cuda" and backend == "nccl":
            kwargs["device_id"] = device
        timeout = datetime.timedelta(seconds=timeout_s)
        _timeout_s = timeout_s
        if init_method.startswith("tcp://"):
            _store = _rendezvous(init_method, rank, world_size, timeout_s)
            dist.init_process_group(backend=backend, store=_store, rank=rank, world_size=world_size,
                                    timeout=timeout, **kwargs)
        else:
            dist.init_process_group(backend=backend, init_method=init_method, rank=rank, world_size=world_size,
                                    timeout=timeout, **kwargs)
    return DistContext(rank=rank, world_size=world_size, device=device)


def _rendezvous(init_method: str, rank: int, world_size: int, timeout_s: float) -> "dist.TCPStore":
    """Rank 0's TCP store with every rank registered; names the ranks missing after ``timeout_s``."""
    match = re.fullmatch(r"tcp://\[?([^\]]+?)\]?:(\d+)", init_method)
    if match is None:
        raise DistributedError(f"--master_ip {init_method!r} must look like tcp://HOST:PORT")
    host, port = match[1], int(match[2])
    timeout = datetime.timedelta(seconds=timeout_s)
    try:
        store = dist.TCPStore(host, port, world_size, is_master=rank == 0, timeout=timeout, wait_for_workers=False)
    except RuntimeError as err:
        if rank == 0:
            raise DistributedError(f"rank 0 cannot listen on --master_ip {init_method} "
                                   f"({str(err).splitlines()[0]})") from None
        raise DistributedError(f"rank 0 did not answer at --master_ip {init_method} within "
                               f"{timeout_s:g} s (--dist_timeout): start the node of rank 0, and give every node "
                               "rank 0's address") from None
    store.set(_JOINED_KEY.format(rank), str(os.getpid()))
    keys = [_JOINED_KEY.format(r) for r in range(world_size)]
    try:
        store.wait(keys, timeout)
    except RuntimeError:
        try:
            missing = [r for r in range(world_size) if not store.check([_JOINED_KEY.format(r)])]
        except RuntimeError:  # rank 0 (the store) went away while we waited
            missing = [0]
        raise DistributedError(f"{_ranks_phrase(missing)} did not join within {timeout_s:g} s "
                               f"(--dist_timeout) at --master_ip {init_method}: start every node with the same "
                               f"--world_size and --master_ip, each with its own --gpu_ranks") from None
    return store


def _ranks_phrase(ranks: list[int]) -> str:
    return f"rank {ranks[0]}" if len(ranks) == 1 else "ranks " + ", ".join(map(str, ranks))


def is_timeout(err: BaseException) -> bool:
    """Whether a collective failed because a peer did not answer in time (gloo/nccl timeouts)."""
    return isinstance(err, RuntimeError) and re.search(r"[Tt]imed out|[Tt]imeout", str(err)) is not None


def unresponsive_ranks_error(ctx: DistContext, err: BaseException) -> DistributedError:
    """The error to raise after a collective timed out: names the ranks that do not answer.

    Every rank that timed out registers as alive in the rendezvous store and waits a short while for the
    others; those that never register froze, died or are stuck. Without our store (torchrun) the error says
    what timed out.
    """
    first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    if _store is None:
        return DistributedError(f"a collective did not complete within {_timeout_s:g} s "
                                f"(--dist_timeout): another rank froze or died ({first_line})")
    window = min(10.0, max(2.0, _timeout_s / 2))
    try:
        _store.set_timeout(datetime.timedelta(seconds=window))
        _store.set(_ALIVE_KEY.format(ctx.rank), "1")
        deadline = time.monotonic() + window
        while True:
            silent = [r for r in range(ctx.world_size) if not _store.check([_ALIVE_KEY.format(r)])]
            if not silent or time.monotonic() > deadline:
                break
            time.sleep(0.2)
    except RuntimeError:  # the store lives in rank 0's process: rank 0 is the one not answering
        silent = [0]
    if not silent:
        return DistributedError(f"a collective did not complete within {_timeout_s:g} s "
                                f"(--dist_timeout), although every rank is alive ({first_line})")
    return DistributedError(f"{_ranks_phrase(silent)} stopped answering: a collective did not "
                            f"complete within {_timeout_s:g} s (--dist_timeout) and {_ranks_phrase(silent)} "
                            f"did not respond for {window:g} s more (frozen, killed or stuck); ranks that "
                            f"answered: {', '.join(str(r) for r in range(ctx.world_size) if r not in silent)}")


def check_same_options(options: Mapping[str, Any], node: str, ctx: DistContext) -> None:
    """Every rank must run with rank 0's options (those that decide which collectives run, and the others
    that change the result); a difference is an error naming the option and the node, on every rank."""
    if not ctx.distributed:
        return
    mine = {key: json.dumps(value, sort_keys=True, default=repr) for key, value in options.items()}
    gathered: list[Any] = [None] * ctx.world_size
    dist.all_gather_object(gathered, (node, mine))
    node0, reference = gathered[0]
    problems = []
    for other_node, theirs in gathered[1:]:
        if other_node == node0:
            continue  # ranks started by the same command line as rank 0
        for key in sorted(set(reference) | set(theirs)):
            if reference.get(key) != theirs.get(key):
                problems.append(f"--{key} is {theirs.get(key, '(not set)')} on node {other_node} but "
                                f"{reference.get(key, '(not set)')} on rank 0's node {node0}")
    if problems:
        unique = list(dict.fromkeys(problems))
        raise DistributedError("every node must be started with the same options: " + "; ".join(unique[:5])
                               + (f"; and {len(unique) - 5} more" if len(unique) > 5 else ""))


def destroy_process_group() -> None:
    global _store
    _store = None
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def all_reduce_sum(tensor: torch.Tensor, ctx: DistContext) -> torch.Tensor:
    """Sum over ranks (in place; a no-op for a single process)."""
    if ctx.distributed:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def torchrun_env() -> tuple[int, int, int] | None:
    """(rank, world_size, local_rank) when started by torchrun, else None."""
    if all(name in os.environ for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK")):
        return int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), int(os.environ["LOCAL_RANK"])
    return None
