#!/usr/bin/env python3
"""Experiment: does knowledge masking help a tiny BERT at CPU scale?

Pre-trains a tiny BERT from random initialisation on CLUECorpusSmall (../shared/data) for the same number of
steps (the same model and batch, so the same wall time) with character masking, whole-word masking, entity
masking, and entity masking + sentence distance (multi-task: bert and sd datasets); then fine-tunes each on
chnsenticorp and, when run_ner.py exists, on MSRA NER (train on dev, score on test), over several seeds,
and prints the scores side by side with their spread.

    python3 benchmarks/exp_knowledge_masking.py --steps 600 --seeds 1 2 3 --workdir /tmp/kmexp

Everything is written under --workdir; nothing in the repository changes.
"""
from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
ACC = re.compile(r"test \(best model on dev\).*?Acc\. \(Correct/Total\): ([0-9.]+)", re.S)
F1 = re.compile(r"test \(best model on dev\).*?entity P/R/F1: [0-9.]+/[0-9.]+/([0-9.]+)", re.S)


def run(script: str, *args: str) -> str:
    proc = subprocess.run([sys.executable, str(ROOT / script), *args], cwd=ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{script} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc.stdout + proc.stderr


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=600, help="Pre-training steps of every variant.")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3], help="Fine-tuning seeds.")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/knowledge_masking_experiment"))
    parser.add_argument("--epochs", type=int, default=2, help="Fine-tuning epochs.")
    parser.add_argument("--no_ner", action="store_true", help="Skip MSRA NER (chnsenticorp only).")
    args = parser.parse_args()
    work = args.workdir
    work.mkdir(parents=True, exist_ok=True)
    vocab = str(SHARED / "models/google_zh_vocab.txt")
    corpus = str(SHARED / "corpora/CLUECorpusSmall_bert_sampled.txt")
    config = "models/bert/tiny_config.json"
    datasets = {"char": ("bert", []), "word": ("bert", ["--whole_word_masking"]),
                "entity": ("bert", ["--entity_masking"]), "entity_sd": ("sd", ["--entity_masking"])}
    for name, (target, flags) in datasets.items():
        out = work / f"{name}.pt"
        if not out.exists():
            run("preprocess.py", "--corpus_path", corpus, "--vocab_path", vocab, "--dataset_path", str(out),
                "--target", target, "--seq_length", "128", "--dynamic_masking", "--processes_num", "2", *flags)
    variants = {"char": ["--dataset_path", str(work / "char.pt"), "--target", "bert"],
                "word": ["--dataset_path", str(work / "word.pt"), "--target", "bert"],
                "entity": ["--dataset_path", str(work / "entity.pt"), "--target", "bert"],
                "entity+sd": ["--dataset_path_list", str(work / "entity.pt"), str(work / "entity_sd.pt"),
                              "--target", "mlm", "sp", "sd"]}
    results: dict[str, dict[str, list[float]]] = {}
    for name, data_args in variants.items():
        model = work / f"{name}.bin"
        start = time.perf_counter()
        if not Path(f"{model}-{args.steps}").exists():
            run("pretrain.py", *data_args, "--vocab_path", vocab, "--config_path", config, "--output_model_path",
                str(model), "--total_steps", str(args.steps), "--save_checkpoint_steps", str(args.steps),
                "--report_steps", "100", "--batch_size", "32", "--learning_rate", "1e-3", "--seed", "7")
        minutes = (time.perf_counter() - start) / 60
        scores: dict[str, list[float]] = {"chnsenticorp acc": [], "msra ner f1": []}
        for seed in args.seeds:
            out = run("run_classifier.py", "--pretrained_model_path", f"{model}-{args.steps}", "--vocab_path", vocab,
                      "--config_path", config, "--train_path", str(SHARED / "datasets/chnsenticorp/train.tsv"),
                      "--dev_path", str(SHARED / "datasets/chnsenticorp/dev.tsv"),
                      "--test_path", str(SHARED / "datasets/chnsenticorp/test.tsv"),
                      "--output_model_path", str(work / f"cls_{name}_{seed}.bin"), "--epochs_num", str(args.epochs),
                      "--batch_size", "64", "--learning_rate", "3e-4", "--seed", str(seed), "--report_steps", "1000")
            match = ACC.search(out)
            if match:
                scores["chnsenticorp acc"].append(float(match.group(1)))
            if not args.no_ner:
                out = run("run_ner.py", "--pretrained_model_path", f"{model}-{args.steps}", "--vocab_path", vocab,
                          "--config_path", config, "--train_path", str(SHARED / "datasets/msra_ner/dev.tsv"),
                          "--dev_path", str(SHARED / "datasets/msra_ner/dev.tsv"),
                          "--test_path", str(SHARED / "datasets/msra_ner/test.tsv"),
                          "--label2id_path", str(SHARED / "datasets/msra_ner/label2id.json"), "--crf_target",
                          "--output_model_path", str(work / f"ner_{name}_{seed}.bin"), "--epochs_num",
                          str(args.epochs), "--batch_size", "32", "--learning_rate", "1e-3", "--seed", str(seed),
                          "--report_steps", "1000")
                match = F1.findall(out)
                if match:
                    scores["msra ner f1"].append(float(match[-1]))
        results[name] = scores
        print(f"{name}: pre-training {minutes:.1f} min; " + "; ".join(
            f"{k} {statistics.mean(v):.4f} ± {statistics.pstdev(v):.4f} ({', '.join(f'{x:.4f}' for x in v)})"
            for k, v in scores.items() if v), flush=True)


if __name__ == "__main__":
    main()
