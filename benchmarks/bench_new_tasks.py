#!/usr/bin/env python3
"""Quality and training speed of run_regression.py, run_classifier_multi_label.py and run_classifier_grid.py next
to UER-py's scripts of the same names, same pre-trained model, data, batch size, length, learning rate, epochs.

    python3 benchmarks/bench_new_tasks.py --pretrained_model_path tiny_bert.bin \
        --vocab_path ../shared/data/models/google_zh_vocab.txt --data_dir ../shared/data/datasets \
        --uerpy_dir /tmp/UER-py --work_dir /tmp/bench_new_tasks [--only regression multi_label grid]

UER-py's tree is a checkout of github.com/dbiir/UER-py (its finetune/, inference/, uer/ and models/). Every run
uses one thread (OMP_NUM_THREADS=1, ours also --threads 1). Speed is the median examples/s of the report windows
(ours: the report line's figure; UER-py: report_steps x batch size over the time between its report lines), for
the grid the training examples of all configurations over the whole run's wall time. UER-py's multi-label micro-F1
is computed with scikit-learn from its inference script's prediction file (it prints exact match only).
Training speed without start-up, for every task at once: benchmarks/bench_tasks_uer_py.py (this script's
speed figures include start-up and evaluation; its point is the quality side by side).
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run(cmd: list[str], cwd: Path, log: Path) -> tuple[str, float]:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(cwd))
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, *map(str, cmd)], cwd=cwd, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    text = proc.stdout + proc.stderr
    log.write_text(text, encoding="utf-8")
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(map(str, cmd))} failed (log {log}):\n{text[-2000:]}")
    return text, seconds


def ours_speed(text: str) -> float:
    rates = [float(r.replace(",", "")) for r in re.findall(r"\| +([\d,.]+) examples/s", text)]
    return statistics.median(rates[1:] or rates)


def uerpy_speed(text: str, report_steps: int, batch_size: int) -> float:
    stamps = [dt.datetime.strptime(t, "%Y-%m-%d %H:%M:%S,%f") for t in
              re.findall(r"\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+) INFO\] Epoch id: \d+, Training steps", text)]
    gaps = [(b - a).total_seconds() for a, b in zip(stamps, stamps[1:])]
    return report_steps * batch_size / statistics.median(gaps)


def rows(path: Path) -> int:
    return sum(1 for line in open(path, encoding="utf-8") if line.strip()) - 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pretrained_model_path", required=True)
    parser.add_argument("--vocab_path", required=True)
    parser.add_argument("--data_dir", required=True)
    parser.add_argument("--uerpy_dir", required=True)
    parser.add_argument("--work_dir", required=True)
    parser.add_argument("--config_path", default=str(ROOT / "models/bert/tiny_config.json"))
    parser.add_argument("--only", nargs="+", default=["regression", "multi_label", "grid"])
    args = parser.parse_args()
    work, data, uer = Path(args.work_dir), Path(args.data_dir), Path(args.uerpy_dir)
    work.mkdir(parents=True, exist_ok=True)
    model = ["--pretrained_model_path", args.pretrained_model_path, "--vocab_path", args.vocab_path,
             "--config_path", args.config_path]
    results = []

    if "regression" in args.only:
        d = data / "chinese_stsb"
        flags = [*model, "--train_path", d / "train.tsv", "--dev_path", d / "dev.tsv", "--test_path", d / "test.tsv",
                 "--batch_size", "32", "--seq_length", "64", "--learning_rate", "3e-4", "--epochs_num", "1",
                 "--report_steps", "20"]
        ours, t_ours = run(["run_regression.py", *flags, "--output_model_path", work / "reg_ours.bin",
                            "--threads", "1"], ROOT, work / "reg_ours.log")
        theirs, t_theirs = run(["finetune/run_regression.py", *flags, "--output_model_path", work / "reg_uerpy.bin"],
                               uer, work / "reg_uerpy.log")
        results.append(("regression, Chinese STS-B test Spearman",
                        float(re.findall(r"Spearman corr: (-?[\d.]+)", ours)[-1]),
                        float(re.findall(r"Spearman corr: (-?[\d.]+)", theirs)[-1]),
                        ours_speed(ours), uerpy_speed(theirs, 20, 32), t_ours, t_theirs))

    if "multi_label" in args.only:
        from sklearn.metrics import f1_score

        d = data / "legal_multi_label"
        flags = [*model, "--train_path", d / "train.tsv", "--dev_path", d / "dev.tsv", "--test_path", d / "test.tsv",
                 "--batch_size", "32", "--seq_length", "128", "--learning_rate", "3e-4", "--epochs_num", "5",
                 "--report_steps", "5"]
        ours, t_ours = run(["run_classifier_multi_label.py", *flags, "--output_model_path", work / "ml_ours.bin",
                            "--threads", "1"], ROOT, work / "ml_ours.log")
        theirs, t_theirs = run(["finetune/run_classifier_multi_label.py", *flags, "--output_model_path",
                                work / "ml_uerpy.bin"], uer, work / "ml_uerpy.log")
        run(["inference/run_classifier_multi_label_infer.py", "--load_model_path", work / "ml_uerpy.bin",
             "--vocab_path", args.vocab_path, "--config_path", args.config_path, "--test_path", d / "test.tsv",
             "--prediction_path", work / "ml_uerpy_pred.tsv", "--labels_num", "4", "--seq_length", "128"],
            uer, work / "ml_uerpy_infer.log")

        def indicator(path: Path) -> list[list[int]]:
            lines = open(path, encoding="utf-8").read().splitlines()
            col = lines[0].split("\t").index("label")
            cells = [line.split("\t")[col] if line.split("\t") else "" for line in lines[1:]]
            return [[int(str(i) in c.split(",")) for i in range(4)] for c in cells]

        uer_micro = f1_score(indicator(d / "test.tsv"), indicator(work / "ml_uerpy_pred.tsv"), average="micro")
        test = ours[ours.index("test (best model on dev)"):]
        micro = float(re.search(r"Micro F1: ([\d.]+)", test).group(1))
        exact = float(re.search(r"Acc\. \(Correct/Total\): ([\d.]+)", test).group(1))
        uer_exact = float(re.findall(r"Acc\. \(Correct/Total\): ([\d.]+)", theirs)[-1])
        results.append(("multi-label, legal test micro-F1 (exact match)", f"{micro:.4f} ({exact:.4f})",
                        f"{uer_micro:.4f} ({uer_exact:.4f})", ours_speed(ours), uerpy_speed(theirs, 5, 32), t_ours,
                        t_theirs))

    if "grid" in args.only:
        d = data / "tnews"
        grid = ["--batch_size_list", "32", "64", "--learning_rate_list", "1e-4", "3e-4", "--epochs_num_list", "2"]
        flags = [*model, "--train_path", d / "train.tsv", "--dev_path", d / "dev.tsv", "--seq_length", "64", *grid]
        ours, t_ours = run(["run_classifier_grid.py", *flags, "--test_path", d / "test.tsv", "--keep_best_model",
                            "--output_model_path", work / "grid_ours.bin", "--threads", "1", "--report_steps", "1000"],
                           ROOT, work / "grid_ours.log")
        theirs, t_theirs = run(["finetune/run_classifier_grid.py", *flags], uer, work / "grid_uerpy.log")
        examples = rows(d / "train.tsv") * 2 * 4
        best = re.search(r"best configuration: (.*), dev acc ([\d.]+)", ours)
        test = float(re.findall(r"Acc\. \(Correct/Total\): ([\d.]+)", ours[ours.index("test (best configuration"):])[0])
        uer_best = re.search(r"Best Acc. is: ([\d.]+), on configuration (.*)\.", theirs)
        results.append(("tnews grid (4 configurations x 2 epochs): best dev acc, test acc",
                        f"dev {float(best.group(2)):.4f} ({best.group(1)}), test {test:.4f}",
                        f"dev {float(uer_best.group(1)):.4f} ({uer_best.group(2)}), no test",
                        examples / t_ours, examples / t_theirs, t_ours, t_theirs))

    print("| task | ours | UER-py | ours examples/s | UER-py examples/s | ours run s | UER-py run s |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name, a, b, sa, sb, ta, tb in results:
        print(f"| {name} | {a} | {b} | {sa:.0f} | {sb:.0f} | {ta:.0f} | {tb:.0f} |")


if __name__ == "__main__":
    main()
