"""Process-wide settings every entry point applies once per process (the main one and each spawned rank)."""
from __future__ import annotations

import ctypes
import os
import sys

# glibc's mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_KEEP = 1 << 30  # 1 GiB


def tune_cpu_allocator() -> bool:
    """Keep freed CPU tensor memory in the process for reuse instead of returning it to the system.

    glibc serves allocations above a threshold (at most 32 MiB by default) with a fresh ``mmap`` and gives
    them back on free, so every training step pays page faults to re-zero its large tensors (MLM logits
    and their gradients, attention scores): a third of a BERT-tiny pre-training step's time went to the
    kernel (sys time) here. Raising the mmap and trim thresholds to 1 GiB makes the step ~1.4x faster for
    ~100 MB more peak memory. Returns whether it was applied: not on non-glibc systems, nor when the user
    chose the allocator (``MALLOC_*`` variables, or jemalloc/tcmalloc through ``LD_PRELOAD``).
    """
    if not sys.platform.startswith("linux"):
        return False
    if any(name in os.environ for name in ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_CONF")):
        return False
    if any(lib in os.environ.get("LD_PRELOAD", "") for lib in ("jemalloc", "tcmalloc", "mimalloc")):
        return False
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, _KEEP)) and bool(mallopt(_M_TRIM_THRESHOLD, _KEEP))


def prefer_passive_openmp_wait() -> None:
    """Let OpenMP threads sleep instead of spin while they wait (``OMP_WAIT_POLICY=PASSIVE``), unless the user
    chose a policy. Must run before torch is imported: OpenMP reads the variable once, when it loads.

    With the default policy each of torch's threads spins on its core between operators; when another
    program holds one of the cores, every operator waits for the descheduled thread. On a shared 2-core machine
    at load 5-11, 2 threads trained the tiny classifier at 14-49 examples/s with the default policy and 86-129
    with PASSIVE (benchmarks/bench_threads.py; figures in benchmarks/RESULTS.md).
    """
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def set_threads(threads: int | None, processes_on_node: int = 1) -> int:
    """Threads of torch's CPU operators in this process: ``threads`` (``--threads``) when given, otherwise
    torch's default (one per core), divided among the CPU processes of this node. Returns the number set.

    Why an option: torch's threads busy-wait for each other between operators, so on a machine where another
    program keeps a core busy every operator waits for the slowest thread; 1 thread then beats 2 by several
    times (measured in benchmarks/bench_threads.py, figures in benchmarks/RESULTS.md).
    """
    import torch

    if threads is not None:
        if threads < 1:
            from uer.errors import UsageError

            raise UsageError(f"--threads must be at least 1, got {threads}")
        count = threads
    elif processes_on_node > 1:
        count = max(1, (os.cpu_count() or 1) // processes_on_node)
    else:
        return torch.get_num_threads()
    torch.set_num_threads(count)
    return count
