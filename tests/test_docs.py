"""Every ```bash and ```python block of README.md and docs/*.md runs, so the documentation cannot drift.

The rule (also in docs/index.md, "How the examples here are tested"):

- The blocks of a page run in order, each in its own shell (``bash -euo pipefail``) or interpreter, in one scratch
  folder shared by all pages. The folder holds the demo's files, made by ``demo.sh`` itself with STEPS=4 EPOCHS=1
  and no ``../shared`` beside it (so the vocabulary is built from the demo corpus, as on a fresh clone), and links
  to the project's entry scripts and configs, so a command runs as written from the project folder. After the
  demo its training file ``datasets/demo_sentiment/train.tsv`` is cut to its first 400 rows (both labels), so the
  guide's fine-tuning examples take seconds.
- Substitutions, and nothing else: a checkpoint suffix ``.bin-N`` becomes ``.bin-4`` (the demo's model
  ``models/demo_bert_model.bin-300`` is its 4-step model), ``--total_steps N`` and ``--save_checkpoint_steps N``
  become 4, ``--epochs_num N`` becomes 1, and ``../shared/data`` the shared data's real path.
- A block that reads ``../shared/data`` is skipped when that folder is absent (the skip names the block).
- A block right after ``<!-- not run: REASON -->`` does not run; the reason must say why (eight GPUs, a server
  that runs until stopped, files that are not part of the project).

A failing block fails its page's test with the block's line number, the command as run and its output.
``python3`` in the blocks is a warm interpreter that forks per command (tests/doc_forkserver.py: the same
scripts and arguments, without importing torch ~60 times); ``UER_DOCS_WARM=0`` runs the real one instead.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import ROOT, SHARED_DATA, subprocess_env

pytestmark = pytest.mark.slow

PAGES = ["README.md"] + sorted(str(p.relative_to(ROOT)) for p in (ROOT / "docs").glob("*.md") if not p.is_symlink())
NOT_RUN = re.compile(r"<!--\s*not run:\s*(?P<reason>.+?)\s*-->")
FENCE = re.compile(r"^```(\w*)\s*$")
DEMO_STEPS = 4
TRAIN_ROWS = 400  # of the demo's 4,000 training reviews, for the guide's fine-tuning examples
# What the scratch folder links to: the entry scripts and configs a command names by relative path.
LINKED = ["preprocess.py", "pretrain.py", "demo.sh", "inference", "scripts", *sorted(p.name for p in ROOT.glob("run_*.py"))]


@dataclass
class Block:
    page: str
    line: int  # 1-based line of the opening fence
    language: str
    code: str
    not_run: str | None  # the reason, when marked


def blocks_of(page: str) -> list[Block]:
    """The fenced bash and python blocks of a page, with the not-run marker on the last non-blank line before each."""
    lines = (ROOT / page).read_text(encoding="utf-8").splitlines()
    found, i = [], 0
    while i < len(lines):
        match = FENCE.match(lines[i])
        if not match:
            i += 1
            continue
        end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
        if match.group(1) in ("bash", "python"):
            before = next((lines[j] for j in range(i - 1, -1, -1) if lines[j].strip()), "")
            marker = NOT_RUN.search(before)
            found.append(Block(page, i + 1, match.group(1), "\n".join(lines[i + 1:end]) + "\n",
                               marker.group("reason") if marker else None))
        i = end + 1
    return found


def substitute(code: str) -> str:
    """The documented substitutions (module docstring), nothing else."""
    code = re.sub(r"\.bin-\d+\b", f".bin-{DEMO_STEPS}", code)
    code = re.sub(r"(--total_steps|--save_checkpoint_steps)\s+\d+", rf"\1 {DEMO_STEPS}", code)
    code = re.sub(r"--epochs_num\s+\d+", "--epochs_num 1", code)
    return code.replace("../shared/data", str(SHARED_DATA))


@pytest.fixture(scope="module")
def block_env(tmp_path_factory):
    """The environment the blocks run in: this checkout first on the import path, one thread, and ``python3``
    the warm interpreter of tests/doc_forkserver.py (unless UER_DOCS_WARM=0)."""
    env = {**subprocess_env(), "OMP_NUM_THREADS": "1"}
    if os.environ.get("UER_DOCS_WARM", "1") == "0":
        yield env
        return
    folder = tmp_path_factory.mktemp("warm_python")
    socket_path = str(folder / "server.sock")
    server = subprocess.Popen([sys.executable, str(ROOT / "tests" / "doc_forkserver.py"), "--serve", socket_path],
                              env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout.readline().strip() == "ready", "the warm interpreter did not start"
        shim = folder / "bin" / "python3"
        shim.parent.mkdir()
        shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -S "{ROOT / "tests" / "doc_forkserver.py"}" --client "$@"\n')
        shim.chmod(0o755)
        yield {**env, "PATH": f"{shim.parent}{os.pathsep}{env['PATH']}", "UER_DOCS_FORKSERVER": socket_path,
               "UER_DOCS_REAL_PYTHON": sys.executable}
    finally:
        server.kill()
        server.wait()


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, block_env) -> Path:
    """The scratch folder with the demo's outputs (demo.sh run there with STEPS=4 EPOCHS=1, no ../shared)."""
    root = tmp_path_factory.mktemp("docs_workspace")
    for name in LINKED:
        (root / name).symlink_to(ROOT / name)
    (root / "models").mkdir()
    for config_folder in (ROOT / "models").iterdir():
        if config_folder.is_dir():
            (root / "models" / config_folder.name).symlink_to(config_folder)
    env = {**block_env, "STEPS": str(DEMO_STEPS), "EPOCHS": "1", "THREADS": "1"}
    proc = subprocess.run(["bash", "demo.sh"], cwd=root, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, f"demo.sh failed\nSTDOUT:\n{proc.stdout[-4000:]}\nSTDERR:\n{proc.stderr[-4000:]}"
    assert "built from the demo corpus" in proc.stdout  # the fresh-clone path: no ../shared beside the folder
    assert (root / f"models/demo_bert_model.bin-{DEMO_STEPS}").is_file()
    train = root / "datasets" / "demo_sentiment" / "train.tsv"
    rows = train.read_text(encoding="utf-8").splitlines(keepends=True)
    train.write_text("".join(rows[:TRAIN_ROWS + 1]), encoding="utf-8")
    return root


def test_every_block_is_run_or_says_why():
    """Marked blocks give a reason, and the pages have runnable blocks at all (the parser finds them)."""
    blocks = [b for page in PAGES for b in blocks_of(page)]
    assert len([b for b in blocks if b.not_run is None]) >= 20
    for block in blocks:
        assert block.not_run is None or len(block.not_run) >= 10, f"{block.page}:{block.line}: give a reason"


@pytest.mark.parametrize("page", PAGES)
def test_page_blocks_run(page, workspace, block_env):
    skipped = []
    for block in blocks_of(page):
        if block.not_run is not None:
            continue
        if "../shared/data" in block.code and not SHARED_DATA.is_dir():
            skipped.append(f"{page}:{block.line}")
            continue
        code = substitute(block.code)
        if block.language == "bash":
            cmd = ["bash", "-euo", "pipefail", "-c", code]
        else:
            cmd = ["python3", "-c", code]
        proc = subprocess.run(cmd, cwd=workspace, env=block_env, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, (f"{page}:{block.line}: the {block.language} block failed "
                                      f"(exit status {proc.returncode})\n{code}\nSTDOUT:\n{proc.stdout[-3000:]}\n"
                                      f"STDERR:\n{proc.stderr[-3000:]}")
    if skipped:
        pytest.skip(f"{', '.join(skipped)}: read ../shared/data, which is absent")
