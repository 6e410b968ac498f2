#!/usr/bin/env python3
"""Speed of the pre-training batch loader (not a test): ms per batch of PretrainBatches.batch, next to the
floor of reading the same rows from the memory-mapped dataset in the same run.

    python3 benchmarks/bench_loader.py [--batch_size 32] [--batches 200]

Builds bert-target datasets (static masks, and --dynamic_masking) from
../shared/data/corpora/CLUECorpusSmall_bert_sampled.txt with google_zh_vocab.txt (seq_length 128), then
times static masks, dynamic masks and dynamic span masks. "rows only" gathers the batch's token rows in the
loader's shuffled order and nothing else: what any loader must pay.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from uer.data.dataset import PretrainDataset
from uer.data.masking import MaskingConfig
from uer.data.pretrain_loader import PretrainBatches

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("UER_SHARED_DATA", ROOT.parent / "shared" / "data"))


def build(path: Path, *extra: str) -> PretrainDataset:
    corpus, vocab = SHARED / "corpora" / "CLUECorpusSmall_bert_sampled.txt", SHARED / "models" / "google_zh_vocab.txt"
    if not corpus.exists():
        sys.exit(f"needs {corpus} (the shared data beside the project)")
    subprocess.run([sys.executable, str(ROOT / "preprocess.py"), "--corpus_path", str(corpus), "--vocab_path", str(vocab),
                    "--dataset_path", str(path), "--processes_num", "2", "--target", "bert", "--seq_length", "128",
                    "--dup_factor", "1", *extra], check=True, stdout=subprocess.DEVNULL)
    return PretrainDataset.open(path)


def ms_per_batch(fn, batches: int) -> float:
    fn(0)  # warm the page cache and the permutation caches
    start = time.perf_counter()
    for g in range(1, batches + 1):
        fn(g)
    return 1000 * (time.perf_counter() - start) / batches


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--batches", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        static = build(Path(tmp) / "static.pt")
        dynamic = build(Path(tmp) / "dynamic.pt", "--dynamic_masking")
        loaders = {
            "static masks": PretrainBatches(static, args.batch_size),
            "dynamic masks": PretrainBatches(dynamic, args.batch_size,
                                             dynamic_masking=MaskingConfig.from_header(dynamic.header)),
            "dynamic span masks": PretrainBatches(dynamic, args.batch_size, dynamic_masking=MaskingConfig.from_header(
                dynamic.header, span_masking=True, span_geo_prob=0.2, span_max_length=10)),
        }
        floor = loaders["static masks"]

        def rows_only(g: int) -> np.ndarray:
            idx = floor.indices(floor.positions(g))
            return np.asarray(static.src[np.sort(idx)], dtype=np.int64)

        print(f"{len(static)} instances of 128 tokens, batch {args.batch_size}, {args.batches} batches")
        print(f"{'rows only (floor)':>20}: {ms_per_batch(rows_only, args.batches):6.3f} ms per batch")
        for name, loader in loaders.items():
            print(f"{name:>20}: {ms_per_batch(loader.batch, args.batches):6.3f} ms per batch")


if __name__ == "__main__":
    main()
