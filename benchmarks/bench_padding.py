#!/usr/bin/env python3
"""Share of padding positions in pre-training batches, without and with length bucketing.

Builds the bert dataset of ../shared/data/corpora/CLUECorpusSmall_bert_sampled.txt and the mlm dataset of
CLUECorpusSmall_sampled.txt (preprocess.py, --seq_length 128, --dup_factor 1) and walks one epoch of
PretrainBatches at --batch_size: every batch is padded to its longest instance, in the last column rounded up
to a multiple of 8 as pretrain.py does (uer.opts.PAD_MULTIPLE); UER-py pads every instance to --seq_length (its
share is the first column).

    python3 benchmarks/bench_padding.py --batch_size 32 --seq_length 128
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
CORPORA = {"bert": "CLUECorpusSmall_bert_sampled.txt", "mlm": "CLUECorpusSmall_sampled.txt"}


def main() -> None:
    from uer.data.dataset import PretrainDataset
    from uer.data.pretrain_loader import PretrainBatches
    from uer.opts import BUCKET_WINDOW, PAD_MULTIPLE

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--seq_length", type=int, default=128)
    args = parser.parse_args()
    print(f"batch {args.batch_size}, seq_length {args.seq_length}, one epoch; padding share of the batch positions")
    print(f"{'dataset':8} {'instances':>9} {'pad to seq_length':>18} {'pad to longest':>15} {'bucketed':>9} "
          f"{f'bucketed, x{PAD_MULTIPLE} (pretrain.py)':>26}")
    with tempfile.TemporaryDirectory() as tmp:
        for target, corpus in CORPORA.items():
            path = Path(tmp) / f"{target}.pt"
            subprocess.run([sys.executable, str(ROOT / "preprocess.py"), "--corpus_path", str(SHARED / "corpora" / corpus),
                            "--vocab_path", str(SHARED / "models" / "google_zh_vocab.txt"), "--dataset_path", str(path),
                            "--target", target, "--seq_length", str(args.seq_length), "--dup_factor", "1",
                            "--processes_num", "2"], check=True, stdout=subprocess.DEVNULL)
            data = PretrainDataset.open(path)
            lengths = np.asarray(data.length)
            fixed = 1 - lengths.mean() / args.seq_length
            shares = []
            for window, multiple in ((0, 1), (BUCKET_WINDOW, 1), (BUCKET_WINDOW, PAD_MULTIPLE)):
                loader = PretrainBatches(data, args.batch_size, seed=1, length_bucketing=window,
                                         pad_to_multiple_of=multiple)
                batches = [loader.batch(g) for g in range(len(data) // args.batch_size)]
                positions = sum(b["src"].numel() for b in batches)
                shares.append(1 - sum(b["tokens_num"] for b in batches) / positions)
            print(f"{target:8} {len(data):9d} {100 * fixed:17.1f}% {100 * shares[0]:14.1f}% {100 * shares[1]:8.1f}% {100 * shares[2]:25.1f}%")


if __name__ == "__main__":
    main()
