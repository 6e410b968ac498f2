#!/usr/bin/env python3
"""What verifying a dataset's checksums costs at start-up (pretrain.py; --no_verify_dataset skips it).

Builds the bert dataset of ../shared/data/corpora/CLUECorpusSmall_bert_sampled.txt (google_zh_vocab.txt,
static masking, --dup_factor 5: the UER-py default) unless --dataset_path names one, then measures in the
same run, each best of --repeats, with the file in the page cache (as for the ranks after the first):

* opening without verification (header checksum and memory maps only),
* opening with verification (every array read once and its CRC32 compared),
* the reference: reading the same bytes without computing anything (what any full read costs).

    python3 benchmarks/bench_dataset_checksum.py
    python3 benchmarks/bench_dataset_checksum.py --dataset_path dataset.pt --repeats 3
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"

from uer.data.dataset import PretrainDataset


def build(path: Path) -> None:
    corpus = SHARED / "corpora" / "CLUECorpusSmall_bert_sampled.txt"
    vocab = SHARED / "models" / "google_zh_vocab.txt"
    if not corpus.exists():
        sys.exit(f"needs {corpus} (the shared data beside the project), or --dataset_path")
    subprocess.run([sys.executable, str(ROOT / "preprocess.py"), "--corpus_path", str(corpus), "--vocab_path",
                    str(vocab), "--dataset_path", str(path), "--processes_num", "2", "--target", "bert",
                    "--seq_length", "128", "--dup_factor", "5"], check=True, stdout=subprocess.DEVNULL)


def best(repeats: int, run) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def read_all(path: Path) -> None:
    with open(path, "rb") as f:
        while f.read(16 << 20):
            pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset_path", default=None, help="A dataset to measure (default: build one).")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(args.dataset_path) if args.dataset_path else Path(tmp) / "bert.pt"
        if not args.dataset_path:
            build(path)
        size = path.stat().st_size
        read_all(path)  # into the page cache
        plain = best(args.repeats, lambda: PretrainDataset.open(path))
        verified = best(args.repeats, lambda: PretrainDataset.open(path, verify=True))
        reference = best(args.repeats, lambda: read_all(path))
        instances = len(PretrainDataset.open(path))
    mb = size / 1e6
    print(f"dataset: {path.name}, {instances:,} instances, {mb:,.1f} MB")
    print(f"open, header checked only:  {plain * 1e3:8.2f} ms")
    print(f"open + verify every array:  {verified * 1e3:8.2f} ms  ({mb / verified / 1e3:.2f} GB/s)")
    print(f"reference, plain full read: {reference * 1e3:8.2f} ms  ({mb / reference / 1e3:.2f} GB/s)")
    print(f"verification adds {(verified - plain) * 1e3:.1f} ms, i.e. {(verified - plain) / mb * 1e3:.2f} s per GB")


if __name__ == "__main__":
    main()
