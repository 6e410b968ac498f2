"""UER-py's own scripts for side-by-side benchmarks, written from a git snapshot into a temporary folder, and a
way to time any entry script by the CPU time and peak memory of its process.

UER-py (github.com/dbiir/UER-py) is not vendored: the benchmarks take its code from a local git snapshot
(``--uer_py_git``, default ``$UER_PY_GIT`` or /work/.mirror/dbiir+UER-py/repo, what the ``fetch`` tool writes;
any clone works) and write the files they run, one by one with ``git show`` (snapshots may lack UER-py's large
data files, which are not needed), into a temporary folder that is deleted afterwards. Nothing of it is
committed here.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

DEFAULT_GIT = os.environ.get("UER_PY_GIT", "/work/.mirror/dbiir+UER-py/repo")
# what preprocess.py, pretrain.py and the fine-tuning and inference scripts import or read
WANTED = re.compile(r"^(uer/.*\.py|preprocess\.py|pretrain\.py|finetune/run_\w+\.py|inference/run_\w+\.py|"
                    r"models/(special_tokens_map|prompts)\.json|models/bert/\w+_config\.json)$")


def write_uer_py(git_dir: str, dest: Path) -> Path:
    """UER-py's code at the snapshot's HEAD, written into ``dest``; returns ``dest``."""
    if not Path(git_dir).exists():
        sys.exit(f"no UER-py snapshot at {git_dir}: clone github.com/dbiir/UER-py and pass --uer_py_git")
    base = _git(git_dir)
    names = subprocess.run([*base, "ls-tree", "-r", "--name-only", "HEAD"], capture_output=True, text=True,
                           check=True).stdout.split()
    for name in filter(WANTED.match, names):
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(subprocess.run([*base, "show", f"HEAD:{name}"], capture_output=True, check=True).stdout)
    return dest


def _git(git_dir: str) -> list[str]:
    """git on a bare snapshot (the fetch tool's) or on a clone's work tree."""
    return ["git", "--git-dir", git_dir] if Path(git_dir, "HEAD").exists() else ["git", "-C", git_dir]


def uer_py_commit(git_dir: str) -> str:
    return subprocess.run([*_git(git_dir), "rev-parse", "--short", "HEAD"], capture_output=True,
                          text=True).stdout.strip()


@dataclass
class Usage:
    wall_s: float
    cpu_s: float  # user + system of the process (its threads summed)
    peak_rss_mb: float
    output: str


def run_measured(cmd: list[str], cwd: str | Path, threads: int = 1, env: dict[str, str] | None = None) -> Usage:
    """Run ``cmd`` to its end; its wall time, CPU time and peak RSS (os.wait4: this child's own rusage)."""
    env = dict(os.environ, **(env or {}), OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd))} failed ({proc.returncode}):\n{output[-3000:]}")
    return Usage(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, output)


def per_step(short: Usage, long: Usage, steps: int) -> tuple[float, float]:
    """(wall s, CPU s) per step from a run of N and one of N + ``steps`` steps: start-up cancels out."""
    return (long.wall_s - short.wall_s) / steps, (long.cpu_s - short.cpu_s) / steps


def load() -> str:
    return "load average " + " ".join(f"{x:.1f}" for x in os.getloadavg())
