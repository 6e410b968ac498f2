"""Speed and peak memory of preprocess.py (not a test).

    python3 benchmarks/bench_preprocess.py [--corpus ../shared/data/corpora/CLUECorpusSmall_bert_sampled.txt]
                                           [--vocab ../shared/data/models/google_zh_vocab.txt] [--repeat 3]

Runs preprocess.py as users do (a fresh interpreter per run) for processes 1 and 2, targets bert (static
masking, dup_factor 5) and mlm + --dynamic_masking, and prints wall time, instances/s and peak RSS:
"all" is the largest sum of RSS over preprocess.py and its spawned workers, "main" and "spawned worker"
the largest single ones (polled from /proc every 10 ms; the main process runs worker 0 itself). Then the corpus concatenated 4x,
with the default --docs_buffer_size and with a small one, shows that memory follows the buffer, not the
corpus. Reference: UER-py takes about 5 s for the bert run with 2 processes (~7.8k instances/s).
"""
from __future__ import annotations

import argparse
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("UER_SHARED_DATA", ROOT.parent / "shared" / "data"))


def _tree_rss_kb(root_pid: int) -> dict[int, int]:
    """VmRSS (kB) of root_pid and of each of its descendants, from /proc."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/status") as f:
                status = f.read()
        except OSError:
            continue
        ppid = int(re.search(r"^PPid:\s+(\d+)", status, re.M).group(1))
        m = re.search(r"^VmRSS:\s+(\d+)", status, re.M)
        children.setdefault(ppid, []).append(int(entry))
        rss[int(entry)] = int(m.group(1)) if m else 0
    tree, stack = {}, [root_pid]
    while stack:
        pid = stack.pop()
        tree[pid] = rss.get(pid, 0)
        stack.extend(children.get(pid, []))
    return tree


def run(args: list[str]) -> dict:
    """One preprocess.py run in a fresh interpreter; returns wall, instances, rss figures."""
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, str(ROOT / "preprocess.py"), *args], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak_tree = peak_main = peak_worker = 0
    while proc.poll() is None:
        tree = _tree_rss_kb(proc.pid)
        peak_tree = max(peak_tree, sum(tree.values()))
        peak_main = max(peak_main, tree.get(proc.pid, 0))
        peak_worker = max([peak_worker] + [v for pid, v in tree.items() if pid != proc.pid])
        time.sleep(0.01)
    wall = time.perf_counter() - start
    out, err = proc.communicate()
    if proc.returncode != 0:
        raise SystemExit(f"preprocess.py failed:\n{out}\n{err}")
    m = re.search(r"Wrote (\d+) instances .* in ([\d.]+) s", out)
    return {"wall": wall, "instances": int(m.group(1)), "build": float(m.group(2)), "tree_mb": peak_tree / 1024,
            "main_mb": peak_main / 1024, "worker_mb": peak_worker / 1024}


def report(name: str, runs: list[dict]) -> None:
    best = min(runs, key=lambda r: r["wall"])
    print(f"{name:<44} {best['instances']:>7} inst  wall {best['wall']:5.2f} s  "
          f"({best['instances'] / best['wall']:>7,.0f} inst/s; build {best['build']:4.2f} s = "
          f"{best['instances'] / best['build']:>7,.0f} inst/s)  peak RSS: all {max(r['tree_mb'] for r in runs):4.0f} MB, "
          f"main {max(r['main_mb'] for r in runs):4.0f} MB, spawned worker {max(r['worker_mb'] for r in runs):4.0f} MB",
          flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", default=str(SHARED / "corpora" / "CLUECorpusSmall_bert_sampled.txt"))
    parser.add_argument("--vocab", default=str(SHARED / "models" / "google_zh_vocab.txt"))
    parser.add_argument("--repeat", type=int, default=3, help="runs per setting (best wall time is shown)")
    args = parser.parse_args()
    for path in (args.corpus, args.vocab):
        if not Path(path).exists():
            raise SystemExit(f"missing {path} (the benchmark reads ../shared/data)")
    with tempfile.TemporaryDirectory() as tmp:
        out = str(Path(tmp) / "dataset.pt")
        base = ["--vocab_path", args.vocab, "--dataset_path", out]
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import uer.opts"], cwd=ROOT, check=True)
        print(f"(python + 'import uer.opts' alone: {time.perf_counter() - t:.2f} s of every wall time below)")
        for target, flags in (("bert", []), ("mlm", ["--dynamic_masking"])):
            for procs in (1, 2):
                runs = [run(["--corpus_path", args.corpus, "--target", target, "--processes_num", str(procs),
                             *flags, *base]) for _ in range(args.repeat)]
                report(f"{target} {' '.join(flags)} processes {procs}", runs)
        big = Path(tmp) / "corpus_x4.txt"
        text = Path(args.corpus).read_bytes()
        big.write_bytes(text if text.endswith(b"\n\n") else text.rstrip(b"\n") + b"\n\n")
        with open(big, "ab") as f:
            for _ in range(3):
                f.write(text.rstrip(b"\n") + b"\n\n")
        print("memory vs corpus size (bert, processes 2):")
        for buffer in (100000, 500):
            for corpus, label in ((args.corpus, "1x"), (str(big), "4x")):
                runs = [run(["--corpus_path", corpus, "--target", "bert", "--processes_num", "2",
                             "--docs_buffer_size", str(buffer), *base])]
                report(f"  corpus {label} docs_buffer_size {buffer}", runs)
        print(f"largest single process over all runs (getrusage RUSAGE_CHILDREN): "
              f"{resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
