#!/usr/bin/env python3
"""Experiment: does bf16 mixed precision (--bf16 / --fp16 on a CPU) learn what float32 learns?

For each pre-training seed (--pretrain_seeds, pretrain.py's --seed: initial weights, masks, dropout), pre-trains a
tiny BERT on the CLUECorpusSmall bert dataset (../shared/data) once in float32 and once with --bf16 from the same
initialisation and batches, two processes at a time, one thread each, and prints the MLM loss curves
side by side with the relative difference at every report. Then fine-tunes (in float32, same recipe, two runs at a
time) a book_review classifier from every checkpoint with every fine-tuning seed (--finetune_seeds), and prints the
test accuracy per (precision, pre-training seed, fine-tuning seed), the mean per precision, and the noise reference
next to the fp32-vs-bf16 gap: how far apart two float32 pre-training seeds land downstream.

    python3 benchmarks/exp_bf16_curve.py --steps 1000 --pretrain_seeds 1 2 --finetune_seeds 7 8 9 --workdir /tmp/bf16exp

Everything is written under --workdir; nothing in the repository changes. Each run's output is kept there
(pretrain_<precision>_p<seed>_s<steps>.log, finetune_<precision>_p<seed>_s<steps>_f<seed>.log); a run whose log is complete is not
repeated, so the experiment can be extended with more seeds (or its tables reprinted) by running it again.
"""
from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

from uer.utils.ranges import seed_int

ROOT = Path(__file__).resolve().parents[1]

SHARED = ROOT.parent / "shared" / "data"
LOSS = re.compile(r"\|\s+(\d+)/\s*\d+ steps\|.*?loss_mlm\s+([\d.]+)")
ACC = re.compile(r"test \(best model on dev\).*?Acc\. \(Correct/Total\): ([0-9.]+)", re.S)
PRECISIONS = {"fp32": [], "bf16": ["--bf16"]}
CONFIG = "models/bert/tiny_config.json"


def stamp() -> str:
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    return f"{time.strftime('%H:%M:%S', time.gmtime())} UTC, load average {load}"


def run_jobs(jobs: list[tuple[list[str], Path, list[Path]]], slots: int = 2) -> None:
    """Runs the (command, log, needs) jobs `slots` at a time, one thread each, in list order as far as `needs` (the
    logs of jobs that must finish first) allow, so a slot freed early (bf16 pre-training ends first) takes the next
    job that can start. A job whose log exists is done already. A log is written as <log>.part and renamed when its
    command succeeds, so an interrupted run is repeated next time."""
    pending = [job for job in jobs if not job[1].exists()]
    running = []
    while pending or running:
        while len(running) < slots:
            ready = next((job for job in pending if all(need.exists() for need in job[2])), None)
            if ready is None:
                break
            pending.remove(ready)
            cmd, log, _ = ready
            part = log.with_name(log.name + ".part")
            handle = part.open("w", encoding="utf-8")
            env = dict(os.environ, OMP_NUM_THREADS="1")
            proc = subprocess.Popen([sys.executable, *cmd], cwd=ROOT, env=env, text=True, stdout=handle,
                                    stderr=subprocess.STDOUT)
            running.append((proc, handle, part, log, time.monotonic()))
            print(f"[{stamp()}] started {log.name}", flush=True)
        if not running:
            raise SystemExit(f"jobs wait for logs no job writes: {[str(job[1]) for job in pending]}")
        time.sleep(1)
        for entry in [entry for entry in running if entry[0].poll() is not None]:
            proc, handle, part, log, began = entry
            running.remove(entry)
            handle.close()
            if proc.returncode != 0:
                for other in running:
                    other[0].kill()
                tail = part.read_text(encoding="utf-8")[-3000:]
                raise SystemExit(f"{' '.join(proc.args)} failed (log {part}):\n{tail}")
            part.rename(log)
            print(f"[{stamp()}] finished {log.name} in {time.monotonic() - began:.0f} s", flush=True)


def subset(src: Path, dest: Path, rows: int) -> Path:
    lines = src.read_text(encoding="utf-8").splitlines()
    dest.write_text("\n".join(lines[:rows + 1]) + "\n", encoding="utf-8")
    return dest


def mean(values: list[float]) -> float:
    return statistics.fmean(values) if values else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--seq_length", type=int, default=128)
    parser.add_argument("--report_steps", type=int, default=50)
    parser.add_argument("--learning_rate", type=float, default=1e-3)
    parser.add_argument("--pretrain_seeds", type=seed_int, nargs="+", default=[1, 2],
                        help="pretrain.py --seed values; each is pre-trained in fp32 and bf16. Two or more give the "
                             "noise reference (the spread between float32 pre-training seeds).")
    parser.add_argument("--finetune_seeds", type=seed_int, nargs="+", default=[7, 8, 9],
                        help="run_classifier.py --seed values, each used on every checkpoint.")
    parser.add_argument("--train_examples", type=int, default=6000, help="book_review fine-tuning subset.")
    parser.add_argument("--eval_examples", type=int, default=2000, help="dev and test subset sizes.")
    parser.add_argument("--workdir", default="/tmp/bf16exp")
    args = parser.parse_args()
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    print(f"[{stamp()}] begin", flush=True)
    vocab = str(SHARED / "models" / "google_zh_vocab.txt")
    dataset = work / "bert.pt"
    run_jobs([(["preprocess.py", "--corpus_path", str(SHARED / "corpora" / "CLUECorpusSmall_bert_sampled.txt"),
                    "--vocab_path", vocab, "--dataset_path", str(dataset), "--target", "bert", "--seq_length",
                    str(args.seq_length), "--dup_factor", "5", "--processes_num", "2"], work / "preprocess.log", [])])
    book = SHARED / "datasets" / "book_review"
    train = subset(book / "train.tsv", work / "train.tsv", args.train_examples)
    dev = subset(book / "dev.tsv", work / "dev.tsv", args.eval_examples)
    test = subset(book / "test.tsv", work / "test.tsv", args.eval_examples)

    def checkpoint(name: str, pseed: int) -> Path:
        return work / f"{name}_p{pseed}.bin-{args.steps}"

    def pretrain_log(name: str, pseed: int) -> Path:
        return work / f"pretrain_{name}_p{pseed}_s{args.steps}.log"

    def finetune_log(name: str, pseed: int, fseed: int) -> Path:
        return work / f"finetune_{name}_p{pseed}_s{args.steps}_f{fseed}.log"

    # Listed seed by seed (its fp32 and bf16 pre-training, then its fine-tuning runs), so the seeds finish in order
    # and a shorter run keeps whole seeds; a fine-tuning run starts as soon as its checkpoint is written.
    jobs = []
    for pseed in args.pretrain_seeds:
        for name, flags in PRECISIONS.items():
            jobs.append((["pretrain.py", "--dataset_path", str(dataset), "--vocab_path", vocab, "--config_path", CONFIG,
                          "--output_model_path", str(work / f"{name}_p{pseed}.bin"), "--total_steps", str(args.steps),
                          "--save_checkpoint_steps", str(args.steps), "--report_steps", str(args.report_steps),
                          "--batch_size", str(args.batch_size), "--learning_rate", str(args.learning_rate),
                          "--target", "bert", "--seed", str(pseed), *flags], pretrain_log(name, pseed), []))
        for fseed in args.finetune_seeds:
            for name in PRECISIONS:
                jobs.append((["run_classifier.py", "--pretrained_model_path", str(checkpoint(name, pseed)),
                              "--vocab_path", vocab, "--config_path", CONFIG, "--train_path", str(train), "--dev_path",
                              str(dev), "--test_path", str(test), "--output_model_path",
                              str(work / f"classifier_{name}_p{pseed}_f{fseed}.bin"), "--epochs_num", "2",
                              "--batch_size", "64", "--learning_rate", "1e-4", "--seq_length", "128",
                              "--seed", str(fseed)], finetune_log(name, pseed, fseed), [pretrain_log(name, pseed)]))
    run_jobs(jobs)
    print(f"[{stamp()}] end\n", flush=True)

    print(f"tiny BERT, {args.steps} steps, batch {args.batch_size} x {args.seq_length}, lr {args.learning_rate}; "
          f"fp32 and bf16 from the same seed share initial weights, batches, masks and dropout draws")
    for pseed in args.pretrain_seeds:
        curves = {name: {int(s): float(v) for s, v in LOSS.findall(pretrain_log(name, pseed).read_text("utf-8"))}
                  for name in PRECISIONS}
        print(f"\npre-training seed {pseed}")
        print(f"{'step':>6} {'fp32 loss_mlm':>14} {'bf16 loss_mlm':>14} {'relative diff':>14}")
        worst = 0.0
        for step in sorted(curves["fp32"]):
            a, b = curves["fp32"][step], curves["bf16"].get(step, float("nan"))
            worst = max(worst, abs(b - a) / a)
            print(f"{step:6d} {a:14.3f} {b:14.3f} {100 * (b - a) / a:13.2f}%")
        print(f"largest relative difference over the curve: {100 * worst:.2f}%")

    acc: dict[tuple[str, int], list[float]] = {}
    print(f"\nbook_review test accuracy (%), classifier fine-tuned in float32: {args.train_examples} train reviews, "
          f"2 epochs, batch 64, lr 1e-4; dev/test the first {args.eval_examples}")
    header = "".join(f"{'ft seed ' + str(f):>12}" for f in args.finetune_seeds)
    print(f"{'pre-trained':<12}{'pt seed':>8}{header}{'mean':>10}")
    for name in PRECISIONS:
        for pseed in args.pretrain_seeds:
            row = []
            for fseed in args.finetune_seeds:
                found = ACC.search(finetune_log(name, pseed, fseed).read_text("utf-8"))
                if found is None:
                    raise SystemExit(f"no test accuracy in {finetune_log(name, pseed, fseed)}")
                row.append(100 * float(found.group(1)))
            acc[name, pseed] = row
            cells = "".join(f"{a:12.2f}" for a in row)
            print(f"{name:<12}{pseed:>8}{cells}{mean(row):10.2f}")

    means = {name: mean([a for p in args.pretrain_seeds for a in acc[name, p]]) for name in PRECISIONS}
    for name in PRECISIONS:
        print(f"mean over all {name} runs: {means[name]:.2f}%")
    seed_means = {name: [mean(acc[name, p]) for p in args.pretrain_seeds] for name in PRECISIONS}
    gap = means["fp32"] - means["bf16"]
    paired = [mean(acc["fp32", p]) - mean(acc["bf16", p]) for p in args.pretrain_seeds]
    print(f"fp32 - bf16 gap (means over all runs): {gap:+.2f} points; per pre-training seed (same initial "
          f"weights): {', '.join(f'{d:+.2f}' for d in paired)}")
    if len(args.finetune_seeds) > 1:
        within = mean([statistics.stdev(row) for row in acc.values()])
        print(f"fine-tuning noise: stdev over fine-tuning seeds from one checkpoint, averaged: {within:.2f} points")
    if len(args.pretrain_seeds) > 1:
        for name in PRECISIONS:
            spread = max(seed_means[name]) - min(seed_means[name])
            print(f"noise reference: spread of the per-seed means between {name} pre-training seeds "
                  f"(largest - smallest): {spread:.2f} points (stdev {statistics.stdev(seed_means[name]):.2f})")
        # The paired differences share initial weights and batches, so their scatter is the gap's own noise.
        error = statistics.stdev(paired) / len(paired) ** 0.5
        print(f"paired fp32 - bf16 gap: {mean(paired):+.2f} +- {error:.2f} points (mean +- standard error over "
              f"{len(paired)} pre-training seeds)")
    else:
        print("noise reference: needs two or more --pretrain_seeds")


if __name__ == "__main__":
    main()
