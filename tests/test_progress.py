"""Progress: a tqdm bar (rate, ETA) in a pseudo-terminal, plain periodic lines in a pipe, nothing on other ranks."""
from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import textwrap

from conftest import ROOT, subprocess_env

SCRIPT = textwrap.dedent("""
    import logging, sys, time
    from uer.utils.logging import setup_logging
    from uer.utils.progress import Progress
    setup_logging(True)
    log = logging.getLogger("demo")
    with Progress(total=5, desc="evaluating", unit="batch", interval=0.0, enabled=sys.argv[1] == "main") as p:
        for i in range(5):
            time.sleep(0.05)
            if i == 2:
                log.info("| report line %d", i)
            p.update()
    print("END")
""")


def run_in_pty(args: list[str], env: dict | None = None) -> str:
    """Output of a command whose stdout and stderr are a pseudo-terminal."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen(args, stdin=follower, stdout=follower, stderr=follower, env={**subprocess_env(), **(env or {})},
                            cwd=ROOT)
    os.close(follower)
    chunks = []
    while True:
        ready, _, _ = select.select([leader], [], [], 120)
        if not ready:
            break
        try:
            data = os.read(leader, 4096)
        except OSError:  # the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    proc.wait(timeout=120)
    os.close(leader)
    assert proc.returncode == 0, b"".join(chunks).decode(errors="replace")
    return b"".join(chunks).decode(errors="replace")


def test_bar_in_a_terminal() -> None:
    out = run_in_pty([sys.executable, "-c", SCRIPT, "main"])
    assert "\r" in out  # a bar redrawn in place
    assert "evaluating: 100%" in out and "5/5" in out and "batch/s" in out
    assert "<00:00" in out or "?" in out  # tqdm's ETA field
    # the log line is printed whole on its own line, above the bar
    assert any(line.strip().endswith("| report line 2") and "evaluating" not in line
               for line in out.replace("\r", "\n").splitlines())
    assert "evaluating: 3/5 batch (60.0%)" not in out  # no plain lines on a terminal


def test_plain_lines_in_a_pipe() -> None:
    proc = subprocess.run([sys.executable, "-c", SCRIPT, "main"], capture_output=True, text=True, env=subprocess_env(),
                          cwd=ROOT, timeout=60, check=True)
    assert "\r" not in proc.stdout + proc.stderr
    lines = [line for line in proc.stdout.splitlines() if "evaluating:" in line]
    assert len(lines) == 5, proc.stdout
    assert lines[2].endswith("evaluating: 3/5 batch (60.0%), " + lines[2].split(", ")[1] + ", " +
                             lines[2].split(", ")[2])
    rate = float(lines[2].split(", ")[1].split()[0])
    assert 1.0 < rate < 25.0  # 3 batches in ~0.15 s
    assert lines[2].split(", ")[2].endswith("s left")
    assert "| report line 2" in proc.stdout


def test_nothing_on_other_ranks() -> None:
    for run in (lambda: run_in_pty([sys.executable, "-c", SCRIPT, "rank1"]),
                lambda: subprocess.run([sys.executable, "-c", SCRIPT, "rank1"], capture_output=True, text=True,
                                       env=subprocess_env(), cwd=ROOT, timeout=60, check=True).stdout):
        out = run()
        assert "evaluating" not in out and "END" in out


def test_plain_line_format_and_eta() -> None:
    from uer.utils.progress import Progress, format_duration

    lines: list[str] = []
    progress = Progress(total=400, desc="dev", unit="batch", interval=0.0, write=lines.append, stream=open(os.devnull, "w"))
    progress.start -= 10.0  # 10 s ago
    progress.set(100)
    assert lines == ["dev: 100/400 batch (25.0%), 10.0 batch/s, 30s left"]
    data = Progress(total=3 * 2 ** 30, desc="corpus", unit="B", interval=0.0, write=lines.append,
                    stream=open(os.devnull, "w"))
    data.start -= 60.0
    data.set(2 ** 30)
    assert lines[-1] == "corpus: 1.0 GiB/3.0 GiB (33.3%), 17.1 MiB/s, 2m00s left"
    assert format_duration(3 * 3600 + 7 * 60 + 5) == "3h07m"
