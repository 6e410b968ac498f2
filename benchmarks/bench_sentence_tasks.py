#!/usr/bin/env python3
"""Issue 19 (items 3-5): SimCSE, prompt and siamese tasks, ours next to UER-py's own scripts, same recipe.

One tiny BERT pre-trained briefly on CLUECorpusSmall (--pretrained, e.g. preprocess.py + pretrain.py with
models/bert/tiny_config.json, a few hundred steps) starts every run. UER-py runs from a checkout (--uerpy: its
tree written file by file from the public repository) with its own scripts; both get the same files, batch size,
sequence length, learning rate and epochs.

- SimCSE (unsupervised, chinese_stsb train text_a): the Chinese STS-B test Spearman of each saved model is
  computed the same way for both (uer.api.TextEncoder vectors, [CLS] pooling, cosine), since UER-py's script
  has no test phase.
- Prompt (tnews, the tnews_char prompt of models/prompts.json, copied into UER-py's prompt file): zero-shot
  (--epochs_num 0) and fine-tuned test accuracy, as each script prints it.
- Siamese (chinese_stsb binarised: score >= 3 is 1; a dual config of tiny towers): test accuracy as printed.

Speed: training examples (pairs for the two-tower tasks) x epochs / CPU seconds of the whole command (one thread;
start, reading, dev evaluations included; both scripts do the same work). CPU time, not wall time: the machine is
shared. Records ``uptime`` before each run.
Training speed without start-up, for every task at once: benchmarks/bench_tasks_uer_py.py (the speed figures here
include start-up and evaluation; this script's point is the quality side by side).

    python3 benchmarks/bench_sentence_tasks.py --pretrained /tmp/tiny.bin-400 --uerpy /tmp/UER-py --work /tmp/b19
"""
from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("UER_SHARED_DATA", ROOT.parent / "shared" / "data"))
VOCAB = SHARED / "models" / "google_zh_vocab.txt"
TINY = ROOT / "models" / "bert" / "tiny_config.json"


def run(cmd: list[str], cwd: Path, env: dict | None = None) -> tuple[str, float, str]:
    """Output, CPU seconds (user + system of the command: the machine is shared, wall time is not its own) and
    the load average before the run."""
    load = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip().split("load average:")[-1]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run([str(c) for c in cmd], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})})
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    seconds = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    out = proc.stdout + proc.stderr
    if proc.returncode:
        print(f"FAILED ({proc.returncode}): {' '.join(map(str, cmd))}\n{out[-3000:]}", file=sys.stderr)
    return out, seconds, load.strip()


def last(pattern: str, text: str) -> float | None:
    found = re.findall(pattern, text)
    return float(found[-1]) if found else None


def write_tsv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    path.write_text("\n".join("\t".join(r) for r in [header] + rows) + "\n", encoding="utf-8")
    return path


def read_rows(path: Path) -> tuple[list[str], list[list[str]]]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return lines[0].split("\t"), [line.split("\t") for line in lines[1:] if line]


def sts_spearman(model: Path, test: Path, seq_length: int) -> float:
    from scipy.stats import spearmanr

    from uer.api import TextEncoder

    encoder = TextEncoder.from_pretrained(str(model), str(VOCAB), str(TINY), device="cpu", seq_length=seq_length)
    _, rows = read_rows(test)
    a = encoder.embed([r[0] for r in rows], pooling="first").astype(np.float64)
    b = encoder.embed([r[1] for r in rows], pooling="first").astype(np.float64)
    cos = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    return float(spearmanr(cos, [float(r[2]) for r in rows]).correlation)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pretrained", required=True)
    parser.add_argument("--uerpy", required=True, type=Path)
    parser.add_argument("--work", required=True, type=Path)
    parser.add_argument("--tasks", nargs="+", default=["simcse", "prompt", "siamese"])
    parser.add_argument("--simcse_texts", type=int, default=2000)
    parser.add_argument("--seq_length", type=int, default=64)
    parser.add_argument("--prompt_lr", type=float, default=1e-4)
    parser.add_argument("--prompt_epochs", type=int, default=3)
    args = parser.parse_args()
    work, uerpy = args.work, args.uerpy.resolve()
    work.mkdir(parents=True, exist_ok=True)
    sts, tnews = SHARED / "datasets" / "chinese_stsb", SHARED / "datasets" / "tnews"
    common = ["--vocab_path", VOCAB, "--config_path", TINY, "--seq_length", str(args.seq_length)]
    results: dict[str, dict] = {}

    if "simcse" in args.tasks:
        results["simcse/pretrained"] = {"test_spearman": sts_spearman(Path(args.pretrained), sts / "test.tsv",
                                                                      args.seq_length)}
        _, rows = read_rows(sts / "train.tsv")
        unsup = write_tsv(work / "simcse_train.tsv", ["text_a"], [[r[0]] for r in rows[:args.simcse_texts]])
        recipe = ["--pretrained_model_path", args.pretrained, *common, "--train_path", unsup, "--dev_path",
                  sts / "dev.tsv", "--epochs_num", "1", "--batch_size", "64", "--learning_rate", "5e-5",
                  "--eval_steps", "10", "--temperature", "0.05", "--pooling", "first"]
        for who, cmd, cwd in (("ours", [sys.executable, ROOT / "run_simcse.py"], ROOT),
                              ("uerpy", [sys.executable, "finetune/run_simcse.py"], uerpy)):
            model = work / f"simcse_{who}.bin"
            out, seconds, load = run([*cmd, *recipe, "--output_model_path", model], cwd,
                                     {"PYTHONPATH": str(ROOT)} if who == "ours" else {"PYTHONPATH": ""})
            dev = last(r"Spearman's correlation: (-?[0-9.]+)", out)
            test = sts_spearman(model, sts / "test.tsv", args.seq_length) if model.exists() else None
            results[f"simcse/{who}"] = {"last_dev_spearman": dev, "test_spearman": test, "seconds": seconds,
                                        "examples_per_s": args.simcse_texts / seconds, "load": load}
            print(json.dumps({f"simcse/{who}": results[f"simcse/{who}"]}), flush=True)

    if "prompt" in args.tasks:
        prompts = json.loads((ROOT / "models" / "prompts.json").read_text(encoding="utf-8"))
        uer_prompts = work / "uerpy_prompts.json"
        uer_prompts.write_text(json.dumps({"tnews_char": prompts["tnews_char"]}, ensure_ascii=False), encoding="utf-8")
        _, train_rows = read_rows(tnews / "train.tsv")
        files = ["--train_path", tnews / "train.tsv", "--dev_path", tnews / "dev.tsv", "--test_path", tnews / "test.tsv"]
        for epochs in (0, args.prompt_epochs):
            recipe = ["--pretrained_model_path", args.pretrained, *common, *files, "--prompt_id", "tnews_char",
                      "--epochs_num", str(epochs), "--batch_size", "32", "--learning_rate", str(args.prompt_lr)]
            for who, cmd, cwd, path in (
                    ("ours", [sys.executable, ROOT / "run_classifier_prompt.py"], ROOT, ROOT / "models/prompts.json"),
                    ("uerpy", [sys.executable, "finetune/run_classifier_prompt.py"], uerpy, uer_prompts)):
                out, seconds, load = run([*cmd, *recipe, "--prompt_path", path, "--output_model_path",
                                          work / f"prompt{epochs}_{who}.bin"], cwd,
                                         {"PYTHONPATH": str(ROOT)} if who == "ours" else {"PYTHONPATH": ""})
                test = last(r"Acc\. \(Correct/Total\): ([0-9.]+)", out)
                key = f"prompt_{'zero_shot' if epochs == 0 else 'fine_tuned'}/{who}"
                results[key] = {"test_acc": test, "seconds": seconds, "load": load}
                if epochs:
                    results[key]["examples_per_s"] = len(train_rows) * epochs / seconds
                print(json.dumps({key: results[key]}), flush=True)

    if "siamese" in args.tasks:
        for split in ("train", "dev", "test"):
            _, rows = read_rows(sts / f"{split}.tsv")
            write_tsv(work / f"pairs_{split}.tsv", ["label", "text_a", "text_b"],
                      [[str(int(float(r[2]) >= 3)), r[0], r[1]] for r in rows])
        tower = {k: v for k, v in json.loads(TINY.read_text()).items() if k not in ("target", "tie_weights",
                                                                                       "data_processor")}
        tower["vocab_size"] = 21128
        dual = {"stream_0": tower, "stream_1": tower, "embedding": ["dual"], "encoder": "dual", "pooling": "first",
                "tie_weights": True, "dropout": 0.1}
        config = work / "sbert_tiny_config.json"
        config.write_text(json.dumps(dual), encoding="utf-8")
        n = len(read_rows(work / "pairs_train.tsv")[1])
        recipe = ["--pretrained_model_path", args.pretrained, "--vocab_path", VOCAB, "--config_path", config,
                  "--seq_length", str(args.seq_length), "--train_path", work / "pairs_train.tsv", "--dev_path",
                  work / "pairs_dev.tsv", "--test_path", work / "pairs_test.tsv", "--epochs_num", "1",
                  "--batch_size", "32", "--learning_rate", "1e-4"]
        for who, cmd, cwd in (("ours", [sys.executable, ROOT / "run_classifier_siamese.py"], ROOT),
                              ("uerpy", [sys.executable, "finetune/run_classifier_siamese.py"], uerpy)):
            out, seconds, load = run([*cmd, *recipe, "--output_model_path", work / f"siamese_{who}.bin"], cwd,
                                     {"PYTHONPATH": str(ROOT)} if who == "ours" else {"PYTHONPATH": ""})
            results[f"siamese/{who}"] = {"test_acc": last(r"Acc\. \(Correct/Total\): ([0-9.]+)", out),
                                         "seconds": seconds, "examples_per_s": n / seconds, "load": load}
            print(json.dumps({f"siamese/{who}": results[f"siamese/{who}"]}), flush=True)

    (work / f"results_{'_'.join(args.tasks)}.json").write_text(json.dumps(results, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
