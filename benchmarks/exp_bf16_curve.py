#!/usr/bin/env python3
"""Experiment: does bf16 mixed precision (--bf16 / --fp16 on a CPU) learn what float32 learns?

Pre-trains a tiny BERT from the same random initialisation on the same data (CLUECorpusSmall bert dataset,
../shared/data; same seed, so the same batches, masks and dropout draws) once in float32 and once with --bf16,
both at the same time (two processes, one thread each), and prints the MLM loss curves side by side with the
relative difference at every report; then fine-tunes a book_review classifier from each checkpoint (the same
--train_examples / dev / test subset, same seed) and prints both test accuracies.

    python3 benchmarks/exp_bf16_curve.py --steps 1000 --workdir /tmp/bf16exp

Everything is written under --workdir; nothing in the repository changes.
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
LOSS = re.compile(r"\|\s+(\d+)/\s*\d+ steps\|.*?loss_mlm\s+([\d.]+)")
ACC = re.compile(r"test \(best model on dev\).*?Acc\. \(Correct/Total\): ([0-9.]+)", re.S)


def start(script: str, *args: str) -> subprocess.Popen:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.Popen([sys.executable, str(ROOT / script), *args], cwd=ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def finish(proc: subprocess.Popen) -> str:
    out = proc.communicate()[0]
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(proc.args)} failed:\n{out[-3000:]}")
    return out


def subset(src: Path, dest: Path, rows: int) -> Path:
    lines = src.read_text(encoding="utf-8").splitlines()
    dest.write_text("\n".join(lines[:rows + 1]) + "\n", encoding="utf-8")
    return dest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--seq_length", type=int, default=128)
    parser.add_argument("--report_steps", type=int, default=50)
    parser.add_argument("--learning_rate", type=float, default=1e-3)
    parser.add_argument("--train_examples", type=int, default=6000, help="book_review fine-tuning subset.")
    parser.add_argument("--eval_examples", type=int, default=2000, help="dev and test subset sizes.")
    parser.add_argument("--workdir", default="/tmp/bf16exp")
    args = parser.parse_args()
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    vocab = str(SHARED / "models" / "google_zh_vocab.txt")
    dataset = work / "bert.pt"
    if not dataset.exists():
        finish(start("preprocess.py", "--corpus_path", str(SHARED / "corpora" / "CLUECorpusSmall_bert_sampled.txt"),
                     "--vocab_path", vocab, "--dataset_path", str(dataset), "--target", "bert", "--seq_length",
                     str(args.seq_length), "--dup_factor", "5", "--processes_num", "2"))
    runs = {}
    for name, flags in (("fp32", []), ("bf16", ["--bf16"])):
        runs[name] = start("pretrain.py", "--dataset_path", str(dataset), "--vocab_path", vocab, "--config_path",
                           "models/bert/tiny_config.json", "--output_model_path", str(work / f"{name}.bin"),
                           "--total_steps", str(args.steps), "--save_checkpoint_steps", str(args.steps),
                           "--report_steps", str(args.report_steps), "--batch_size", str(args.batch_size),
                           "--learning_rate", str(args.learning_rate), "--target", "bert", *flags)
    curves = {name: {int(s): float(l) for s, l in LOSS.findall(finish(proc))} for name, proc in runs.items()}
    print(f"tiny BERT, batch {args.batch_size} x {args.seq_length}, lr {args.learning_rate}, same seed and data")
    print(f"{'step':>6} {'fp32 loss_mlm':>14} {'bf16 loss_mlm':>14} {'relative diff':>14}")
    worst = 0.0
    for step in sorted(curves["fp32"]):
        a, b = curves["fp32"][step], curves["bf16"].get(step, float("nan"))
        worst = max(worst, abs(b - a) / a)
        print(f"{step:6d} {a:14.3f} {b:14.3f} {100 * (b - a) / a:13.2f}%")
    print(f"largest relative difference over the curve: {100 * worst:.2f}%")

    book = SHARED / "datasets" / "book_review"
    train = subset(book / "train.tsv", work / "train.tsv", args.train_examples)
    dev = subset(book / "dev.tsv", work / "dev.tsv", args.eval_examples)
    test = subset(book / "test.tsv", work / "test.tsv", args.eval_examples)
    tunes = {name: start("run_classifier.py", "--pretrained_model_path", str(work / f"{name}.bin-{args.steps}"),
                         "--vocab_path", vocab, "--config_path", "models/bert/tiny_config.json", "--train_path",
                         str(train), "--dev_path", str(dev), "--test_path", str(test), "--output_model_path",
                         str(work / f"classifier_{name}.bin"), "--epochs_num", "2", "--batch_size", "64",
                         "--learning_rate", "1e-4", "--seq_length", "128", "--seed", "7")
             for name in ("fp32", "bf16")}
    for name, proc in tunes.items():
        found = ACC.search(finish(proc))
        print(f"book_review test accuracy, classifier fine-tuned (float32) from the {name} model: "
              f"{found.group(1) if found else 'not found'}")


if __name__ == "__main__":
    main()
