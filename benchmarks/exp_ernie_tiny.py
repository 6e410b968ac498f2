#!/usr/bin/env python3
"""The ERNIE-tiny experiment at this machine's scale (issue 22): layer distillation, subword vocabulary, data
distillation, on chnsenticorp (../shared/data).

1. Teacher: mini (L4/H256, models/bert/mini_config.json) fine-tuned from random initialisation (no pre-trained
   Chinese weights can be downloaded here) on a subset of chnsenticorp's training set.
2. Student: tiny (L2/H128, models/bert/tiny_config.json), trained on the same subset three ways: no distillation,
   prediction-layer distillation only (--distill_losses logits), layer + prediction distillation
   (--distill_losses hidden attention logits; teacher layers 2 and 4). Test accuracy of each (full test set).
3. Speed: the student's and the teacher's encoder forward passes on the same batches, one thread, alternated,
   best of several rounds (inference speed ratio).
4. Subword vocabulary: scripts/build_vocab.py --subword wordpiece on CLUECorpusSmall (first 2,000 documents) plus
   chnsenticorp's training texts; mean sequence length ([CLS] + tokens + [SEP]) of chnsenticorp's test set and of
   the 500 held-out CLUECorpusSmall documents with the character vocabulary (google_zh_vocab) and with it.
5. Data distillation: scripts/augment_data.py on the training subset (--aug_times), the teacher's logits on the
   originals + new texts, the student trained on them (--soft_targets); its test accuracy against the student
   trained on the labelled subset only.

    python3 benchmarks/exp_ernie_tiny.py --workdir /tmp/ernie_tiny --train_size 4000 --epochs 4

Every command runs with --threads 1 (the machine is shared). Prints a Markdown table and the load (uptime).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(os.environ.get("UER_SHARED_DATA", ROOT.parent / "shared" / "data"))
VOCAB = DATA / "models" / "google_zh_vocab.txt"
TEST_ACC = re.compile(r"test \(.*?\).*?Acc\. \(Correct/Total\): ([0-9.]+)", re.S)  # the report spans lines


def run(*args: str, log: Path) -> str:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, env=env)
    out = proc.stdout + proc.stderr
    with open(log, "a", encoding="utf-8") as handle:
        handle.write(f"$ {' '.join(args)}\n{out}\n[{time.perf_counter() - started:.0f} s]\n")
    if proc.returncode != 0:
        raise SystemExit(f"failed: {' '.join(args)}\n{out[-3000:]}")
    return out


def uptime() -> str:
    return open("/proc/loadavg").read().split()[:3].__str__()


def subset(src: Path, dst: Path, rows: int) -> None:
    lines = src.read_text(encoding="utf-8").splitlines()
    dst.write_text("\n".join(lines[:rows + 1]) + "\n", encoding="utf-8")


def finetune(work: Path, name: str, config: str, train: Path, args: argparse.Namespace, lr: float,
             *extra: str, epochs: int | None = None) -> tuple[float, float]:
    started = time.perf_counter()
    out = run("run_classifier.py", "--threads", "1", "--vocab_path", str(VOCAB), "--config_path", config,
              "--train_path", str(train), "--dev_path", str(work / "dev.tsv"), "--test_path", str(work / "test.tsv"),
              "--output_model_path", str(work / f"{name}.bin"), "--epochs_num", str(epochs or args.epochs),
              "--batch_size", "32",
              "--seq_length", str(args.seq_length), "--learning_rate", str(lr), "--report_steps", "1000",
              "--seed", str(args.seed), "--pooling", args.pooling, *extra, log=work / "log.txt")
    match = TEST_ACC.search(out)
    if match is None:
        raise SystemExit(f"{name}: no test accuracy in the output:\n{out[-2000:]}")
    return float(match.group(1)), time.perf_counter() - started


def encoder_speed(configs: dict[str, str], seq_length: int, rounds: int = 5) -> dict[str, float]:
    """Instances per second of each config's embedding + encoder forward (batch 32, one thread)."""
    import torch

    from uer.model_builder import build_model
    from uer.model_config import ModelConfig

    torch.set_num_threads(1)
    torch.manual_seed(0)
    models = {}
    for name, path in configs.items():
        c = json.load(open(ROOT / path))
        cfg = ModelConfig(vocab_size=21128, hidden_size=c["hidden_size"], emb_size=c["emb_size"],
                          feedforward_size=c["feedforward_size"], heads_num=c["heads_num"], layers_num=c["layers_num"],
                          target=())
        models[name] = build_model(cfg, with_target=False).eval()
    src = torch.randint(106, 21128, (32, seq_length))
    seg = torch.ones_like(src)
    best = {name: float("inf") for name in models}
    with torch.inference_mode():
        for _ in range(rounds):
            for name, model in models.items():
                started = time.perf_counter()
                for _ in range(10):
                    model.encode(src, seg)
                best[name] = min(best[name], time.perf_counter() - started)
    return {name: 320 / seconds for name, seconds in best.items()}


def mean_lengths(vocab_path: Path, texts: dict[str, list[str]]) -> dict[str, tuple[float, float]]:
    from uer.text.tokenizers import build_tokenizer

    chars = build_tokenizer("bert", str(VOCAB))
    subword = build_tokenizer("jieba_wordpiece", str(vocab_path))
    out = {}
    for name, lines in texts.items():
        n_char = sum(len(chars.encode(t)) + 2 for t in lines) / len(lines)
        n_sub = sum(len(subword.encode(t)) + 2 for t in lines) / len(lines)
        out[name] = (n_char, n_sub)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", default="/tmp/ernie_tiny")
    parser.add_argument("--train_size", type=int, default=4000)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--seq_length", type=int, default=64)
    parser.add_argument("--aug_times", type=int, default=2)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--pooling", default="mean",
                        help="Classifier pooling (from random initialisation [CLS] pooling did not learn in a few epochs).")
    parser.add_argument("--teacher_lr", type=float, default=3e-4)
    parser.add_argument("--student_lr", type=float, default=5e-4)
    parser.add_argument("--student_epochs", type=int, default=None, help="Epochs of the students (default --epochs).")
    parser.add_argument("--parallel", type=int, default=1,
                        help="Student runs at a time (each one thread; on a machine shared with others this is "
                             "what makes the experiment fit in its time).")
    parser.add_argument("--reuse_teacher", action="store_true",
                        help="Keep the workdir's teacher.bin (and its test accuracy in log.txt) from an earlier run.")
    parser.add_argument("--skip", nargs="*", default=[], choices=["subword", "data"])
    args = parser.parse_args()
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    previous = (work / "log.txt").read_text(encoding="utf-8") if (work / "log.txt").exists() else ""
    (work / "log.txt").write_text(previous if args.reuse_teacher else "", encoding="utf-8")
    started = time.perf_counter()
    loads = [uptime()]
    source = DATA / "datasets" / "chnsenticorp"
    subset(source / "train.tsv", work / "train.tsv", args.train_size)
    subset(source / "dev.tsv", work / "dev.tsv", 600)
    subset(source / "test.tsv", work / "test.tsv", 10 ** 9)
    teacher_cfg, student_cfg = "models/bert/mini_config.json", "models/bert/tiny_config.json"
    rows = []

    if args.reuse_teacher:
        match = re.search(r"teacher\.bin.*?" + TEST_ACC.pattern + r".*?\n\[(\d+) s\]", previous, re.S)
        if match is None or not (work / "teacher.bin").exists():
            raise SystemExit(f"--reuse_teacher: no finished teacher run in {work / 'log.txt'}")
        acc_t, sec_t = float(match.group(1)), float(match.group(2))
    else:
        acc_t, sec_t = finetune(work, "teacher", teacher_cfg, work / "train.tsv", args, args.teacher_lr)
    rows.append(("teacher mini L4/H256", acc_t, sec_t))
    loads.append(uptime())
    teacher = ["--teacher_model_path", str(work / "teacher.bin"), "--teacher_config_path", teacher_cfg]
    epochs = args.student_epochs or args.epochs

    def student(name: str, train: Path, *extra: str) -> tuple[float, float]:
        return finetune(work, name, student_cfg, train, args, args.student_lr, *extra, epochs=epochs)

    def data_distillation() -> tuple[float, float]:
        started = time.perf_counter()
        if not (args.reuse_teacher and (work / "aug.tsv").exists()):  # the same seed gives the same file
            run("scripts/augment_data.py", "--input_path", str(work / "train.tsv"), "--output_path",
                str(work / "aug.tsv"), "--aug_times", str(args.aug_times), "--seed", str(args.seed),
                log=work / "log.txt")
        run("inference/run_classifier_infer.py", "--threads", "1", "--load_model_path", str(work / "teacher.bin"),
            "--vocab_path", str(VOCAB), "--config_path", teacher_cfg, "--test_path", str(work / "aug.tsv"),
            "--prediction_path", str(work / "aug_teacher.tsv"), "--labels_num", "2", "--output_logits",
            "--seq_length", str(args.seq_length), log=work / "log.txt")
        texts = (work / "aug.tsv").read_text(encoding="utf-8").splitlines()
        labels = (work / "aug_teacher.tsv").read_text(encoding="utf-8").splitlines()
        (work / "aug_labelled.tsv").write_text("".join(f"{a}\t{b}\n" for a, b in zip(texts, labels)), encoding="utf-8")
        acc, _ = student("student_data", work / "aug_labelled.tsv", "--soft_targets", "--soft_alpha", "0.5")
        return acc, time.perf_counter() - started

    from concurrent.futures import ThreadPoolExecutor

    jobs = {"student tiny L2/H128, no distillation": lambda: student("student", work / "train.tsv"),
            "student, prediction-layer distillation": lambda: student("student_logits", work / "train.tsv", *teacher,
                                                                      "--distill_losses", "logits"),
            "student, layer + prediction distillation": lambda: student(
                "student_layers", work / "train.tsv", *teacher, "--distill_losses", "hidden", "attention", "logits")}
    if "data" not in args.skip:
        jobs[f"student, data distillation (originals + x{args.aug_times} augmented texts, teacher's logits, "
             "--soft_targets)"] = data_distillation
    with ThreadPoolExecutor(max_workers=args.parallel) as pool:
        futures = {name: pool.submit(job) for name, job in jobs.items()}
        rows += [(name, *future.result()) for name, future in futures.items()]
    loads.append(uptime())

    speed = encoder_speed({"teacher": teacher_cfg, "student": student_cfg}, args.seq_length)
    print(f"\n## ERNIE tiny (issue 22)\n\nchnsenticorp: train {args.train_size} (first rows), dev 600, test 1200 "
          f"(full); seq_length {args.seq_length}, teacher {args.epochs} epochs (lr {args.teacher_lr}), students "
          f"{epochs} (lr {args.student_lr}), batch 32, {args.pooling} pooling, from random initialisation (no "
          f"pre-trained weights); "
          f"one thread; load (1/5/15 min) {' -> '.join(loads)}.\n")
    print("| model | test acc | of teacher | wall s |\n| --- | --- | --- | --- |")
    for name, acc, sec in rows:
        print(f"| {name} | {acc:.4f} | {100 * acc / acc_t:.1f}% | {sec:.0f} |")
    print(f"\nEncoder forward, batch 32 x {args.seq_length}, one thread: teacher {speed['teacher']:.0f} instances/s, "
          f"student {speed['student']:.0f} instances/s ({speed['student'] / speed['teacher']:.1f}x).")

    if "subword" not in args.skip:
        clue = [l.strip() for l in open(DATA / "corpora" / "CLUECorpusSmall_sampled.txt", encoding="utf-8") if l.strip()]
        corpus = work / "subword_corpus.txt"
        train_texts = [l.split("\t", 1)[1] for l in (source / "train.tsv").read_text(encoding="utf-8").splitlines()[1:]]
        corpus.write_text("\n".join(clue[:2000] + train_texts) + "\n", encoding="utf-8")
        out = run("scripts/build_vocab.py", "--corpus_path", str(corpus), "--vocab_path", str(work / "subword.txt"),
                  "--subword", "wordpiece", "--vocab_size", "30000", log=work / "log.txt")
        test_texts = [l.split("\t", 1)[1] for l in (work / "test.tsv").read_text(encoding="utf-8").splitlines()[1:]]
        lengths = mean_lengths(work / "subword.txt", {"chnsenticorp test": test_texts,
                                                      "CLUECorpusSmall (500 held-out documents)": clue[2000:2500]})
        print(f"\nSubword vocabulary: {out.strip().splitlines()[-1].split(': ', 1)[1]}\n")
        print("| text | characters (google_zh_vocab) | subwords (jieba_wordpiece) | reduction |\n| --- | --- | --- | --- |")
        for name, (n_char, n_sub) in lengths.items():
            print(f"| {name} | {n_char:.1f} | {n_sub:.1f} | {100 * (1 - n_sub / n_char):.0f}% |")
    print(f"\n(total {time.perf_counter() - started:.0f} s; load at the end {uptime()})")


if __name__ == "__main__":
    main()
