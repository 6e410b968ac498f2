#!/usr/bin/env python3
"""Int8 inference (--quantize int8) against float32: speed and book_review test accuracy, tiny and mini.

For each size a classifier is fine-tuned briefly by run_classifier.py (--train_examples of book_review's train
set, --epochs_num epochs, from --pretrained_<size> when given, else from random initialisation), or taken from
--model_<size>. Then the same process predicts the test set (--test_examples rows) with the float32 model and
with its int8 copy (uer.utils.quantize), alternately --repeat times, timing the model (the batches as
run_classifier_infer.py makes them; tokenisation excluded) in wall and process CPU time, --threads threads
(default one); the best round of each counts. Accuracy: the same predictions against the test labels.

    python3 benchmarks/bench_int8.py --sizes tiny mini --workdir /tmp/int8bench
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
SIZES = {"tiny": "models/bert/tiny_config.json", "mini": "models/bert/mini_config.json"}


def subset(src: Path, dest: Path, rows: int) -> Path:
    lines = src.read_text(encoding="utf-8").splitlines()
    dest.write_text("\n".join(lines[:rows + 1]) + "\n", encoding="utf-8")
    return dest


def fine_tune(size: str, args: argparse.Namespace, work: Path) -> Path:
    out = work / f"classifier_{size}.bin"
    if out.exists():
        return out
    book = SHARED / "datasets" / "book_review"
    cmd = [sys.executable, str(ROOT / "run_classifier.py"), "--vocab_path", str(SHARED / "models" / "google_zh_vocab.txt"),
           "--config_path", SIZES[size], "--train_path", str(subset(book / "train.tsv", work / "train.tsv",
                                                                      args.train_examples)),
           "--dev_path", str(subset(book / "dev.tsv", work / "dev.tsv", 2000)), "--output_model_path", str(out),
           "--epochs_num", str(args.epochs_num), "--batch_size", "64", "--learning_rate", str(args.learning_rate),
           "--seq_length", "128"]
    pretrained = getattr(args, f"pretrained_{size}")
    if pretrained:
        cmd += ["--pretrained_model_path", pretrained]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=dict(os.environ, OMP_NUM_THREADS="1"))
    if proc.returncode != 0:
        raise SystemExit(f"fine-tuning {size} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    dev = re.findall(r"Acc\. \(Correct/Total\): ([0-9.]+)", proc.stdout + proc.stderr)
    print(f"{size}: fine-tuned on {args.train_examples} reviews, {args.epochs_num} epoch(s); dev accuracy {dev[-1:]}")
    return out


def measure(size: str, model_path: Path, args: argparse.Namespace) -> None:
    import numpy as np
    import torch

    from uer.api import load_config
    from uer.finetune.tasks.classifier import Classifier, read_classification, stacked_logits
    from uer.finetune.loop import predict
    from uer.model_builder import build_model
    from uer.model_loader import load_model_weights
    from uer.text.tokenizers import build_tokenizer
    from uer.utils.quantize import quantize_for_inference

    torch.set_num_threads(args.threads)
    tokenizer = build_tokenizer("bert", str(SHARED / "models" / "google_zh_vocab.txt"))
    test = read_classification(str(SHARED / "datasets" / "book_review" / "test.tsv"), tokenizer, 128, 2)
    test = test.subset(np.arange(min(args.test_examples, len(test))))
    labels = np.asarray(test.fields["label"])
    cfg = load_config(SIZES[size], len(tokenizer.vocab), dropout=0.0)
    base = build_model(cfg, with_target=False)
    model = Classifier(base.embedding, base.encoder, cfg.hidden_size, 2)
    load_model_weights(model, str(model_path), strict_prefixes=("",))
    models = {"fp32": model.eval(), "int8": quantize_for_inference(model, "int8")}
    cpu = torch.device("cpu")
    best = {name: (float("inf"), float("inf")) for name in models}
    accuracy = {}
    for _ in range(args.repeat):
        for name, m in models.items():
            wall, thread = time.perf_counter(), time.process_time()
            logits = stacked_logits(predict(m, test, 64, tokenizer.vocab.pad_id, cpu), 2)
            wall, thread = time.perf_counter() - wall, time.process_time() - thread
            best[name] = (min(best[name][0], wall), min(best[name][1], thread))
            accuracy[name] = float((logits.argmax(-1) == labels).mean())
    n = len(test)
    for name in models:
        wall, thread = best[name]
        print(f"{size:5} {name:5} {n / wall:10.1f} {n / thread:12.1f} {best['fp32'][0] / wall:9.2f}x "
              f"{best['fp32'][1] / thread:9.2f}x {100 * accuracy[name]:9.2f} {100 * (accuracy[name] - accuracy['fp32']):+8.2f}",
              flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", default=["tiny", "mini"], choices=sorted(SIZES))
    parser.add_argument("--train_examples", type=int, default=20000)
    parser.add_argument("--epochs_num", type=int, default=1)
    parser.add_argument("--learning_rate", type=float, default=1e-4)
    parser.add_argument("--test_examples", type=int, default=8000)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--pretrained_tiny", default=None)
    parser.add_argument("--pretrained_mini", default=None)
    parser.add_argument("--model_tiny", default=None, help="A fine-tuned tiny classifier (skips fine-tuning).")
    parser.add_argument("--model_mini", default=None, help="A fine-tuned mini classifier (skips fine-tuning).")
    parser.add_argument("--workdir", default="/tmp/int8bench")
    parser.add_argument("--threads", type=int, default=1, help="torch threads of the timed predictions (default 1).")
    args = parser.parse_args()
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    paths = {size: Path(getattr(args, f"model_{size}") or fine_tune(size, args, work)) for size in args.sizes}
    print(f"book_review test ({args.test_examples} reviews), batch 64, {args.threads} thread(s), "
          f"best of {args.repeat}; "
          f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print(f"{'size':5} {'model':5} {'ex/s wall':>10} {'ex/CPU-s':>12} {'x wall':>10} {'x CPU':>10} {'acc %':>9} "
          f"{'vs fp32':>8}")
    for size, path in paths.items():
        measure(size, path, args)
    print(f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
