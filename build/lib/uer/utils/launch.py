"""Where pretrain.py and the run_*.py scripts run: one process, several (one per device), or under torchrun.

    (nothing)                                  fine-tuning: CPU, every visible GPU (one DDP process each;
                                               UER-py used DataParallel) or the only one; pretrain.py: CPU
    --world_size 2 --gpu_ranks 0 1             explicit global ranks of this node; add --backend gloo for CPU
                                               processes (how the distributed path is tested here); with
                                               --master_ip, several nodes each start their own ranks
    torchrun --nproc_per_node 8 ...            ranks from the environment
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Any, Callable

import torch
import torch.multiprocessing as mp

from uer.errors import RankError, UsageError, USER_ERROR_EXIT, debug_enabled, user_error_message
from uer.utils import io
from uer.utils.distributed import DistContext, destroy_process_group, init_process_group, torchrun_env
from uer.utils.logging import setup_logging
from uer.utils.runtime import tune_cpu_allocator

logger = logging.getLogger("uer.launch")

Worker = Callable[[argparse.Namespace, DistContext], None]


_PATH_BYTES = 4096


def _rank_main(proc_index: int, worker: Worker, args: argparse.Namespace, node_ranks: list[int], world_size: int,
               use_cuda: bool, errors: Any, last_written: Any) -> None:
    """One spawned rank. A user error is handed to the parent as one line (``errors``) and the rank exits 2;
    the last file it writes is kept in ``last_written`` for the parent's Ctrl-C line."""
    rank = node_ranks[proc_index]

    def share(path: str) -> None:
        last_written.value = os.fsencode(path)[:_PATH_BYTES - 1]

    io.add_write_listener(share)
    setup_logging(rank == 0, rank)
    tune_cpu_allocator()
    if use_cuda:
        device = torch.device("cuda", proc_index % torch.cuda.device_count())
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // len(node_ranks)))
    try:
        ctx = init_process_group(args.backend if use_cuda else "gloo", args.master_ip, rank, world_size, device)
        try:
            worker(args, ctx)
        finally:
            destroy_process_group()
    except Exception as err:
        message = user_error_message(err)
        if message is None or debug_enabled():
            raise  # a bug: spawn hands the traceback to the parent
        errors.put((rank, message))
        sys.exit(USER_ERROR_EXIT)


def _spawn(args: argparse.Namespace, worker: Worker, script: str, node_ranks: list[int], world_size: int,
           use_cuda: bool) -> None:
    context = mp.get_context("spawn")
    errors, last_written = context.SimpleQueue(), context.Array("c", _PATH_BYTES)
    try:
        mp.spawn(_rank_main, args=(worker, args, node_ranks, world_size, use_cuda, errors, last_written),
                 nprocs=len(node_ranks), join=True)
    except mp.ProcessRaisedException as err:
        raise RuntimeError(f"{script}: a rank failed and the others on this node were stopped:\n{err}") from None
    except mp.ProcessExitedException as err:
        if not errors.empty():
            rank, message = errors.get()
            raise RankError(f"{message} (rank {rank}; the other ranks on this node were stopped)") from None
        raise SystemExit(f"{script}: a rank died ({err}); the others on this node were stopped") from None
    finally:
        if last_written.value:
            io.note_written(os.fsdecode(last_written.value))


def launch(args: argparse.Namespace, worker: Worker, script: str, use_visible_gpus: bool = True) -> None:
    """Run ``worker(args, ctx)`` in every process this node should start (``worker`` must be a module-level
    function so child processes can find it).

    Without --gpu_ranks, ``use_visible_gpus`` (the fine-tuning scripts) runs on every visible GPU, or on the
    only one; otherwise (pretrain.py, as UER-py) one CPU process.
    """
    launched = torchrun_env()
    if launched is not None:
        rank, world_size, local_rank = launched
        setup_logging(rank == 0, rank)
        tune_cpu_allocator()
        use_cuda = torch.cuda.is_available() and args.backend == "nccl"
        device = torch.device("cuda", local_rank) if use_cuda else torch.device("cpu")
        if use_cuda:
            torch.cuda.set_device(device)
        ctx = init_process_group(args.backend if use_cuda else "gloo", "env://", rank, world_size, device)
        try:
            worker(args, ctx)
        finally:
            destroy_process_group()
        return
    setup_logging(True)
    tune_cpu_allocator()
    node_ranks, world_size = list(args.gpu_ranks), args.world_size
    use_cuda = torch.cuda.is_available()
    if not node_ranks:
        if world_size != 1:
            raise UsageError("--world_size > 1 needs --gpu_ranks: the global ranks this node runs")
        if not use_visible_gpus:
            worker(args, DistContext())
            return
        if use_cuda and torch.cuda.device_count() > 1:
            node_ranks, world_size = list(range(torch.cuda.device_count())), torch.cuda.device_count()
            logger.info("%d GPUs visible: one DDP process each (limit with CUDA_VISIBLE_DEVICES)", world_size)
        else:
            worker(args, DistContext(device=torch.device("cuda", 0) if use_cuda else torch.device("cpu")))
            return
    if len(set(node_ranks)) != len(node_ranks) or any(not 0 <= r < world_size for r in node_ranks):
        raise UsageError(f"--gpu_ranks {node_ranks} must be distinct ranks in [0, --world_size {world_size})")
    if not use_cuda:
        if args.backend == "nccl":
            raise UsageError("--gpu_ranks asks for GPUs but CUDA is not available; add --backend gloo "
                             "to run these ranks as CPU processes, or drop --gpu_ranks for a single CPU process")
        logger.info("no CUDA: ranks %s run as CPU processes with gloo", node_ranks)
    if world_size == 1:
        device = torch.device("cuda", node_ranks[0]) if use_cuda else torch.device("cpu")
        if use_cuda:
            torch.cuda.set_device(device)
        worker(args, DistContext(device=device))
        return
    _spawn(args, worker, script, node_ranks, world_size, use_cuda)
