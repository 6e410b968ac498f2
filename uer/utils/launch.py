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
import socket
import sys
from typing import Any, Callable

import torch
import torch.multiprocessing as mp

from uer.utils.cleanup import die_with_parent, install_signal_handlers, remove_stale_temp_files
from uer.utils.distributed import (DEFAULT_DIST_TIMEOUT, DistContext, DistributedError, check_same_options,
                                   destroy_process_group, init_process_group, is_timeout, torchrun_env,
                                   unresponsive_ranks_error)
from uer.utils.logging import setup_logging
from uer.utils.runtime import tune_cpu_allocator

logger = logging.getLogger("uer.launch")

Worker = Callable[[argparse.Namespace, DistContext], None]


# Options that may differ between the nodes of one run: where files are on each node, and which ranks it runs.
PER_NODE_OPTIONS = {"gpu_ranks", "explicit"}


def options_that_must_agree(args: argparse.Namespace) -> dict[str, Any]:
    """Every option except the per-node ones (``*_path`` locations, --gpu_ranks): a node with another
    --report_steps, --total_steps, --batch_size ... runs other collectives, or trains another model."""
    return {key: value for key, value in vars(args).items()
            if key not in PER_NODE_OPTIONS and not key.endswith("_path") and not key.startswith("_")}


def _node_label(node_ranks: list[int] | None, rank: int) -> str:
    ranks = node_ranks if node_ranks else [rank]
    return f"{socket.gethostname()} (ranks {', '.join(map(str, ranks))})"


def _run_rank(worker: Worker, args: argparse.Namespace, ctx: DistContext, node: str, script: str) -> None:
    """Check the options against rank 0's, then run ``worker``; a rank that stops answering is named."""
    try:
        check_same_options(options_that_must_agree(args), node, ctx)
        worker(args, ctx)
    except DistributedError as err:
        _fail(script, err)
    except RuntimeError as err:
        if ctx.distributed and is_timeout(err):
            _fail(script, unresponsive_ranks_error(ctx, err))
        raise
    finally:
        destroy_process_group()


def _fail(script: str, err: BaseException) -> None:
    print(f"{script}: error: {err}", file=sys.stderr, flush=True)
    raise SystemExit(2)


def _rank_main(proc_index: int, worker: Worker, args: argparse.Namespace, node_ranks: list[int], world_size: int,
               use_cuda: bool, script: str = "uer") -> None:
    die_with_parent()
    install_signal_handlers()
    rank = node_ranks[proc_index]
    setup_logging(rank == 0, rank)
    tune_cpu_allocator()
    if use_cuda:
        device = torch.device("cuda", proc_index % torch.cuda.device_count())
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // len(node_ranks)))
    try:
        ctx = init_process_group(args.backend if use_cuda else "gloo", args.master_ip, rank, world_size, device,
                                 _dist_timeout(args))
    except DistributedError as err:
        _fail(script, err)
    _run_rank(worker, args, ctx, _node_label(node_ranks, rank), script)


def _dist_timeout(args: argparse.Namespace) -> float:
    return float(getattr(args, "dist_timeout", None) or DEFAULT_DIST_TIMEOUT)


def _spawn(args: argparse.Namespace, worker: Worker, node_ranks: list[int], world_size: int, use_cuda: bool,
           script: str) -> None:
    """One process per rank of this node; if this process is stopped (SIGTERM, Ctrl-C), so are they."""
    context = mp.start_processes(_rank_main, args=(worker, args, node_ranks, world_size, use_cuda, script),
                                 nprocs=len(node_ranks), join=False, start_method="spawn")
    try:
        while not context.join(grace_period=10):
            pass
    except BaseException:
        for process in context.processes:
            if process.is_alive():
                process.terminate()
        for process in context.processes:
            process.join(10)
            if process.is_alive():
                process.kill()
        raise


def launch(args: argparse.Namespace, worker: Worker, script: str, use_visible_gpus: bool = True) -> None:
    """Run ``worker(args, ctx)`` in every process this node should start (``worker`` must be a module-level
    function so child processes can find it).

    Without --gpu_ranks, ``use_visible_gpus`` (the fine-tuning scripts) runs on every visible GPU, or on the
    only one; otherwise (pretrain.py, as UER-py) one CPU process.
    """
    install_signal_handlers()
    launched = torchrun_env()
    if launched is not None:
        rank, world_size, local_rank = launched
        setup_logging(rank == 0, rank)
        tune_cpu_allocator()
        if rank == 0:
            _remove_leftovers(args)
        use_cuda = torch.cuda.is_available() and args.backend == "nccl"
        device = torch.device("cuda", local_rank) if use_cuda else torch.device("cpu")
        if use_cuda:
            torch.cuda.set_device(device)
        try:
            ctx = init_process_group(args.backend if use_cuda else "gloo", "env://", rank, world_size, device,
                                     _dist_timeout(args))
        except DistributedError as err:
            _fail(script, err)
        _run_rank(worker, args, ctx, f"{socket.gethostname()} (local rank {local_rank})", script)
        return
    setup_logging(True)
    tune_cpu_allocator()
    node_ranks, world_size = list(args.gpu_ranks), args.world_size
    if not node_ranks or 0 in node_ranks or world_size == 1:  # the node that writes the outputs
        _remove_leftovers(args)
    use_cuda = torch.cuda.is_available()
    if not node_ranks:
        if world_size != 1:
            raise SystemExit(f"{script}: --world_size > 1 needs --gpu_ranks: the global ranks this node runs")
        if not use_visible_gpus:
            worker(args, DistContext())
            return
        if use_cuda and torch.cuda.device_count() > 1:
            node_ranks, world_size = list(range(torch.cuda.device_count())), torch.cuda.device_count()
            logger.info("%d GPUs visible: one DDP process each (limit with CUDA_VISIBLE_DEVICES)", world_size)
        else:
            worker(args, DistContext(device=torch.device("cuda", 0) if use_cuda else torch.device("cpu")))
            return
    if world_size == 1 and len(node_ranks) == 1:
        # One process: --gpu_ranks names the GPU (UER-py: `--gpu_ranks 3` trains on GPU 3).
        _single_device(args, worker, script, node_ranks[0], use_cuda)
        return
    if len(set(node_ranks)) != len(node_ranks) or any(not 0 <= r < world_size for r in node_ranks):
        raise SystemExit(f"{script}: --gpu_ranks {node_ranks} must be distinct ranks in [0, --world_size {world_size})")
    if not use_cuda:
        if args.backend == "nccl":
            raise SystemExit(f"{script}: --gpu_ranks asks for GPUs but CUDA is not available; add --backend gloo "
                             "to run these ranks as CPU processes, or drop --gpu_ranks for a single CPU process")
        logger.info("no CUDA: ranks %s run as CPU processes with gloo", node_ranks)
    try:
        _spawn(args, worker, node_ranks, world_size, use_cuda, script)
    except mp.ProcessRaisedException as err:
        raise SystemExit(f"{script}: a rank failed and the others on this node were stopped:\n{err}") from None
    except mp.ProcessExitedException as err:
        if err.exit_code == 2:  # the rank printed its one-line error
            raise SystemExit(2) from None
        raise SystemExit(f"{script}: a rank died ({err}); the others on this node were stopped") from None


def _remove_leftovers(args: argparse.Namespace) -> None:
    """Temp files of killed earlier runs beside the outputs this run writes (only on rank 0's node: the
    process ids in their names mean something only on the machine that wrote them)."""
    if getattr(args, "output_model_path", None):
        remove_stale_temp_files(args.output_model_path)


def _single_device(args: argparse.Namespace, worker: Worker, script: str, gpu: int, use_cuda: bool) -> None:
    if not use_cuda:
        if args.backend == "nccl":
            raise SystemExit(f"{script}: --gpu_ranks {gpu} asks for GPU {gpu} but CUDA is not available; drop "
                             "--gpu_ranks to train on the CPU (or add --backend gloo)")
        logger.info("no CUDA: --gpu_ranks %d runs on the CPU (--backend gloo)", gpu)
        worker(args, DistContext())
        return
    count = torch.cuda.device_count()
    if not 0 <= gpu < count:
        raise SystemExit(f"{script}: --gpu_ranks {gpu}: there is no GPU {gpu} ({count} visible: 0 to {count - 1}; "
                         "CUDA_VISIBLE_DEVICES renumbers them)")
    device = torch.device("cuda", gpu)
    torch.cuda.set_device(device)
    logger.info("one process on GPU %d", gpu)
    worker(args, DistContext(device=device))
