"""Where pretrain.py and the run_*.py scripts run: one process, several (one per device), or under torchrun.

    (nothing)                                  fine-tuning: CPU, every visible GPU (one DDP process each;
                                               UER-py used DataParallel) or the only one; pretrain.py: CPU
    --gpu_ranks 3                              one process on GPU 3 (--world_size 1, UER-py's single-GPU form)
    --world_size 2 --gpu_ranks 0 1             explicit global ranks of this node; add --backend gloo for CPU
                                               processes (how the distributed path is tested here); with
                                               --master_ip, several nodes each start their own ranks
    torchrun --nproc_per_node 8 ...            ranks from the environment

Several processes: --dist_timeout bounds the rendezvous and every collective (a rank that does not join or
stops answering is named), every node must be started with rank 0's options (checked at start-up), ranks
die with their launcher, and a stopped launcher (SIGTERM, Ctrl-C) stops its ranks.
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

from uer.errors import RankError, UsageError, USER_ERROR_EXIT, debug_enabled, user_error_message
from uer.utils import io
from uer.utils.cleanup import die_with_parent, install_signal_handlers, remove_stale_temp_files
from uer.utils.distributed import (DEFAULT_DIST_TIMEOUT, DistContext, check_same_options, destroy_process_group,
                                   init_process_group, is_timeout, torchrun_env, unresponsive_ranks_error)
from uer.utils.logging import setup_logging_from_args
from uer.utils.runtime import set_threads, tune_cpu_allocator

logger = logging.getLogger("uer.launch")

Worker = Callable[[argparse.Namespace, DistContext], None]


_PATH_BYTES = 4096
# Options that may differ between the nodes of one run: where files are on each node, which ranks it runs, and
# how much its console and log file show.
PER_NODE_OPTIONS = {"gpu_ranks", "explicit", "log_level", "log_file_level"}
# Options only rank 0 acts on (it reports, writes checkpoints and curves). UER-py's docs give them to node 0 alone,
# so the other ranks take rank 0's values: a report's all-reduce then happens at the same steps on every rank.
RANK0_OPTIONS = ("report_steps", "save_checkpoint_steps", "save_total_limit", "keep_trainer_state", "tensorboard_dir")


def options_that_must_agree(args: argparse.Namespace) -> dict[str, Any]:
    """Every option every rank uses, except the per-node ones (``*_path`` locations, --gpu_ranks, log levels):
    a node with another --total_steps, --batch_size, --learning_rate ... runs other collectives, or trains another
    model. The rank-0 options are left out: every rank has taken rank 0's values (:func:`take_rank0_options`)."""
    return {key: value for key, value in vars(args).items()
            if key not in PER_NODE_OPTIONS and key not in RANK0_OPTIONS
            and not key.endswith(("_path", "_path_list")) and not key.startswith("_")}


def take_rank0_options(args: argparse.Namespace, ctx: DistContext) -> None:
    """Set RANK0_OPTIONS on every rank to rank 0's values (a no-op for a single process)."""
    if not ctx.distributed:
        return
    import torch.distributed as dist

    values = [{key: getattr(args, key) for key in RANK0_OPTIONS if hasattr(args, key)}]
    dist.broadcast_object_list(values, src=0)
    for key, value in values[0].items():
        setattr(args, key, value)


def _node_label(node_ranks: list[int]) -> str:
    return f"{socket.gethostname()} (ranks {', '.join(map(str, node_ranks))})"


def _dist_timeout(args: argparse.Namespace) -> float:
    return float(getattr(args, "dist_timeout", None) or DEFAULT_DIST_TIMEOUT)


def _run_rank(worker: Worker, args: argparse.Namespace, ctx: DistContext, node: str) -> None:
    """Check the options against rank 0's, then run ``worker``; a collective that times out becomes an
    error naming the ranks that stopped answering."""
    try:
        take_rank0_options(args, ctx)
        check_same_options(options_that_must_agree(args), node, ctx)
        worker(args, ctx)
        if ctx.distributed:
            # leave together: a rank that tears its process group down while rank 0 still writes the last
            # checkpoint can take gloo's threads down with it (an abort at exit under torchrun)
            torch.distributed.barrier()
    except RuntimeError as err:
        if ctx.distributed and is_timeout(err):
            raise unresponsive_ranks_error(ctx, err) from None
        raise
    finally:
        destroy_process_group()


def _rank_main(proc_index: int, worker: Worker, args: argparse.Namespace, node_ranks: list[int], world_size: int,
               use_cuda: bool, errors: Any, last_written: Any) -> None:
    """One spawned rank. A user error is handed to the parent as one line (``errors``) and the rank exits 2;
    the last file it writes is kept in ``last_written`` for the parent's Ctrl-C line."""
    die_with_parent()
    install_signal_handlers()
    rank = node_ranks[proc_index]

    def share(path: str) -> None:
        last_written.value = os.fsencode(path)[:_PATH_BYTES - 1]

    io.add_write_listener(share)
    setup_logging_from_args(args, rank == 0, rank)
    tune_cpu_allocator()
    if use_cuda:
        device = torch.device("cuda", proc_index % torch.cuda.device_count())
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
    set_threads(getattr(args, "threads", None), 1 if use_cuda else len(node_ranks))
    try:
        ctx = init_process_group(args.backend if use_cuda else "gloo", args.master_ip, rank, world_size, device,
                                 _dist_timeout(args))
        _run_rank(worker, args, ctx, _node_label(node_ranks))
    except Exception as err:
        message = user_error_message(err)
        if message is None or debug_enabled():
            raise  # a bug: spawn hands the traceback to the parent
        errors.put((rank, message))
        sys.exit(USER_ERROR_EXIT)


def _spawn(args: argparse.Namespace, worker: Worker, script: str, node_ranks: list[int], world_size: int,
           use_cuda: bool) -> None:
    """One process per rank of this node; if this process is stopped (SIGTERM, Ctrl-C), so are they."""
    context = mp.get_context("spawn")
    errors, last_written = context.SimpleQueue(), context.Array("c", _PATH_BYTES)
    try:
        ranks = mp.start_processes(_rank_main, args=(worker, args, node_ranks, world_size, use_cuda, errors,
                                                     last_written),
                                   nprocs=len(node_ranks), join=False, start_method="spawn")
        try:
            while not ranks.join(grace_period=10):
                pass
        except BaseException:
            for process in ranks.processes:
                if process.is_alive():
                    process.terminate()
            for process in ranks.processes:
                process.join(10)
                if process.is_alive():
                    process.kill()
            raise
    except mp.ProcessRaisedException as err:
        raise RuntimeError(f"{script}: a rank failed and the others on this node were stopped:\n{err}") from None
    except mp.ProcessExitedException as err:
        if not errors.empty():
            rank, message = errors.get()
            raise RankError(f"{message} (rank {rank}; the other ranks on this node were stopped)") from None
        raise RankError(f"a rank died ({err}); the others on this node were stopped") from None
    finally:
        if last_written.value:
            io.note_written(os.fsdecode(last_written.value))


def _remove_leftovers(args: argparse.Namespace) -> None:
    """Temp files of killed earlier runs beside the outputs this run writes (only on rank 0's node: the
    process ids in their names mean something only on the machine that wrote them)."""
    if getattr(args, "output_model_path", None):
        remove_stale_temp_files(args.output_model_path)


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
        setup_logging_from_args(args, rank == 0, rank)
        tune_cpu_allocator()
        set_threads(getattr(args, "threads", None))
        if rank == 0:
            _remove_leftovers(args)
        use_cuda = torch.cuda.is_available() and args.backend == "nccl"
        device = torch.device("cuda", local_rank) if use_cuda else torch.device("cpu")
        if use_cuda:
            torch.cuda.set_device(device)
        ctx = init_process_group(args.backend if use_cuda else "gloo", "env://", rank, world_size, device,
                                 _dist_timeout(args))
        _run_rank(worker, args, ctx, f"{socket.gethostname()} (torchrun, rank {rank - local_rank} upwards)")
        return
    setup_logging_from_args(args)
    tune_cpu_allocator()
    set_threads(getattr(args, "threads", None))
    node_ranks, world_size = list(args.gpu_ranks), args.world_size
    if not node_ranks or 0 in node_ranks or world_size == 1:  # the node that writes the outputs
        _remove_leftovers(args)
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
    if world_size == 1 and len(node_ranks) == 1:
        # One process: --gpu_ranks names the GPU (UER-py: `--gpu_ranks 3` trains on GPU 3).
        _single_device(args, worker, node_ranks[0], use_cuda)
        return
    if len(set(node_ranks)) != len(node_ranks) or any(not 0 <= r < world_size for r in node_ranks):
        raise UsageError(f"--gpu_ranks {node_ranks} must be distinct ranks in [0, --world_size {world_size})")
    if not use_cuda:
        if args.backend == "nccl":
            raise UsageError("--gpu_ranks asks for GPUs but CUDA is not available; add --backend gloo "
                             "to run these ranks as CPU processes, or drop --gpu_ranks for a single CPU process")
        logger.info("no CUDA: ranks %s run as CPU processes with gloo", node_ranks)
    _spawn(args, worker, script, node_ranks, world_size, use_cuda)


def _single_device(args: argparse.Namespace, worker: Worker, gpu: int, use_cuda: bool) -> None:
    if not use_cuda:
        if args.backend == "nccl":
            raise UsageError(f"--gpu_ranks {gpu} asks for GPU {gpu} but CUDA is not available; drop --gpu_ranks "
                             "to train on the CPU (or add --backend gloo)")
        logger.info("no CUDA: --gpu_ranks %d runs on the CPU (--backend gloo)", gpu)
        worker(args, DistContext())
        return
    count = torch.cuda.device_count()
    if not 0 <= gpu < count:
        raise UsageError(f"--gpu_ranks {gpu}: there is no GPU {gpu} ({count} visible: 0 to {count - 1}; "
                         "CUDA_VISIBLE_DEVICES renumbers them)")
    device = torch.device("cuda", gpu)
    torch.cuda.set_device(device)
    logger.info("one process on GPU %d", gpu)
    worker(args, DistContext(device=device))
