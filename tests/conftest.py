"""Shared test fixtures: where the read-only real data lives, and helpers to run entry scripts."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("UER_SHARED_DATA", ROOT.parent / "shared" / "data"))


def shared_path(relative: str) -> Path:
    """Path of a file under ../shared/data; skips the calling test with a clear reason when absent."""
    path = SHARED_DATA / relative
    if not path.exists():
        pytest.skip(f"shared data not available: {path} (tests that need real corpora read ../shared/data)")
    return path


def subprocess_env() -> dict[str, str]:
    """The environment for subprocesses of a test: this checkout's ``uer`` first on the import path (the
    tests test the tree they are in, not another installed copy), two threads unless the caller set some."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    env.setdefault("OMP_NUM_THREADS", "2")
    return env


def run_script(script: str, *args: str, cwd: Path | None = None, timeout: int = 600,
               env: dict | None = None) -> subprocess.CompletedProcess:
    """Run an entry script of the project with the current interpreter; fails the test with its output."""
    full_env = subprocess_env()
    if env:
        full_env.update(env)
    cmd = [sys.executable, str(ROOT / script), *args]
    proc = subprocess.run(cmd, cwd=cwd or ROOT, capture_output=True, text=True, timeout=timeout, env=full_env)
    if proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed with {proc.returncode}\nSTDOUT:\n{proc.stdout}\nSTDERR:\n{proc.stderr}")
    return proc


def pytest_collection_modifyitems(config, items):
    """Tests marked ``gpu`` run the CUDA-only code paths; without a CUDA device they are skipped, saying so."""
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device (marked gpu)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
