#!/usr/bin/env python3
"""Quality of the task scripts for a tiny BERT trained from random initialisation (no pre-training), on the
real data of ../shared/data: MSRA NER (with and without CRF), CMRC 2018 and C3.

Splits (written to --work_dir; nothing from shared/ enters the repository):
    NER   train on the first 2,100 sentences of MSRA dev, select the epoch on the other 218, report MSRA test
    CMRC  the dev articles split 80/10/10: train, select, report on the last 10% (376 questions)
    C3    train on train (11,869 questions), select and report on dev (3,816), as the issue asks

    OMP_NUM_THREADS=1 python3 benchmarks/eval_tasks.py --tasks ner ner_crf cmrc c3

The scores are the scripts' own reports (entity F1 as seqeval; the official CMRC 2018 Avg/F1/EM; accuracy).
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

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("UER_SHARED_DATA", ROOT.parent / "shared" / "data"))
DATA = SHARED / "datasets"
MODEL = ["--config_path", "models/bert/tiny_config.json", "--vocab_path", str(SHARED / "models" / "google_zh_vocab.txt"),
         "--embedding", "word_pos_seg", "--encoder", "transformer", "--mask", "fully_visible", "--report_steps", "1000"]


def prepare(work: Path) -> None:
    work.mkdir(parents=True, exist_ok=True)
    lines = (DATA / "msra_ner" / "dev.tsv").read_text(encoding="utf-8").splitlines()
    (work / "ner_train.tsv").write_text("\n".join([lines[0]] + lines[1:2101]) + "\n", encoding="utf-8")
    (work / "ner_dev.tsv").write_text("\n".join([lines[0]] + lines[2101:]) + "\n", encoding="utf-8")
    doc = json.loads((DATA / "cmrc2018" / "dev.json").read_text(encoding="utf-8"))
    arts = doc["data"]
    a, b = int(len(arts) * 0.8), int(len(arts) * 0.9)
    for name, part in (("train", arts[:a]), ("dev", arts[a:b]), ("test", arts[b:])):
        (work / f"cmrc_{name}.json").write_text(json.dumps({"data": part}, ensure_ascii=False), encoding="utf-8")


def recipes(work: Path) -> dict[str, list[str]]:
    ner = ["run_ner.py", "--train_path", str(work / "ner_train.tsv"), "--dev_path", str(work / "ner_dev.tsv"),
           "--test_path", str(DATA / "msra_ner" / "test.tsv"), "--label2id_path", str(DATA / "msra_ner" / "label2id.json"),
           "--seq_length", "128", "--batch_size", "16", "--epochs_num", "8", "--learning_rate", "1e-3"]
    return {
        "ner": ner + ["--output_model_path", str(work / "ner.bin")],
        "ner_crf": ner + ["--crf_target", "--output_model_path", str(work / "ner_crf.bin")],
        "cmrc": ["run_cmrc.py", "--train_path", str(work / "cmrc_train.json"), "--dev_path", str(work / "cmrc_dev.json"),
                 "--test_path", str(work / "cmrc_test.json"), "--seq_length", "256", "--doc_stride", "128",
                 "--batch_size", "16", "--epochs_num", "1", "--learning_rate", "1e-3",
                 "--output_model_path", str(work / "cmrc.bin")],
        "c3": ["run_c3.py", "--train_path", str(DATA / "c3" / "train.json"), "--dev_path", str(DATA / "c3" / "dev.json"),
               "--seq_length", "128", "--max_choices_num", "4", "--batch_size", "16", "--epochs_num", "1",
               "--learning_rate", "5e-4", "--output_model_path", str(work / "c3.bin")],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", nargs="+", default=["ner", "ner_crf", "cmrc", "c3"], choices=["ner", "ner_crf", "cmrc", "c3"])
    parser.add_argument("--work_dir", default="/tmp/uer_task_quality")
    parser.add_argument("--parallel", type=int, default=1, help="Tasks run at once (one thread each).")
    args = parser.parse_args()
    work = Path(args.work_dir)
    prepare(work)
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    pending = list(args.tasks)
    running: list[tuple[str, subprocess.Popen, float]] = []
    while pending or running:
        while pending and len(running) < args.parallel:
            task = pending.pop(0)
            cmd = recipes(work)[task]
            log = open(work / f"{task}.log", "w", encoding="utf-8")
            running.append((task, subprocess.Popen([sys.executable, str(ROOT / cmd[0]), *cmd[1:], *MODEL], cwd=ROOT,
                                                   env=env, stdout=log, stderr=subprocess.STDOUT), time.perf_counter()))
        time.sleep(5)
        for item in list(running):
            task, proc, start = item
            if proc.poll() is None:
                continue
            running.remove(item)
            report(task, proc.returncode, (work / f"{task}.log").read_text(encoding="utf-8"), time.perf_counter() - start)


def report(task: str, code: int, log: str, seconds: float) -> None:
    if code:
        print(f"{task}: failed ({code})", flush=True)
        return
    dev = re.findall(r"epoch (\d+)/\d+ dev \([^)]*\): (.*)", log)
    final = re.search(r"test \(best model on dev\)[^\n]*:\s*\n?(.*)", log)
    print(f"{task}: {seconds:.0f} s; dev per epoch: {[d[1][:48] for d in dev]}", flush=True)
    print(f"  test: {final.group(1).strip() if final else '(no test set: the dev figure is the result)'}", flush=True)

if __name__ == "__main__":
    main()
