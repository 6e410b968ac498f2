#!/usr/bin/env python3
"""Fine-tuning speed of every task UER-py has a script for: UER-py's finetune/run_*.py next to our script of the
same name, on the same recipe, in one run.

Both start from the same tiny BERT (models/bert/tiny_config.json, L2/H128), made once by our preprocess.py and
pretrain.py (20 steps: a speed benchmark needs a model that loads, not a good one; its embedding and encoder
keys load into UER-py's models unchanged), and get the same files, --seq_length, --batch_size, --learning_rate,
one epoch, one thread (OMP_NUM_THREADS=1; ours also --threads 1). UER-py's code is its public repository's,
written from a git snapshot into a temporary folder (benchmarks/uer_py.py).

Recipes (UER-py's documented ones): sentence and pair classification, regression, multi-label, SimCSE, siamese,
prompt, cross-validation, grid, multi-task and DBQA at --seq_length 128 and --batch_size 64 (run_classifier.py's
defaults; prompt 32); NER at 128, batch 16 (its README's MSRA recipe), with and without --crf_target; CMRC 2018
and C3 at 512, batch 8 (their README recipes; --doc_stride 128, 4 choices). Learning rate 1e-4 for all.
Data (../shared/data/datasets): book_review (classifier, cv, grid, mt with chnsenticorp), msra_ner dev
sentences (NER), cmrc2018 dev questions, c3 train questions, chinese_stsb (regression; simcse its text_a;
siamese its pairs with score >= 3 as 1, two tied tiny towers), legal_multi_label, tnews (prompt, the tnews_char
prompt given to both); DBQA has no shared data set, so its rows are made from CMRC 2018: each question against
each sentence of its passage, label 1 where the sentence holds the answer. ChID has no data here: not run.

UER-py's run_ner.py --crf_target imports pytorch-crf (``pip install --no-deps pytorch-crf==0.7.2``, pure Python); the
ner_crf row is left out with a message without it.

Speed without start-up: every script runs on the first N and on the first 3N training units (sentences,
questions, pairs; the dev file the same small one in both runs), and the throughput is 2N over the difference of
the two runs, in CPU time of the process (steadier on a shared machine) and in wall time; our script runs
--repeats times per size (default 2; its runs are short, so start-up noise weighs more) and the least time of
each size counts. The difference includes what grows with the data: reading and tokenising, the training steps,
cv's fold predictions. Units per task: training examples of one epoch (cv: N x (folds - 1), each fold's training
part; grid: N x configurations; mt: N per data set; C3: questions, 4 sequences each; CMRC: questions, the
windows they make).

    python3 benchmarks/bench_tasks_uer_py.py                  # every task, ~20-30 minutes on 2 cores
    python3 benchmarks/bench_tasks_uer_py.py --only ner ner_crf --scale 0.5
    python3 benchmarks/bench_tasks_uer_py.py --only ner cmrc multi_label --ours_flags=--fp16
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import uer_py  # benchmarks/uer_py.py: the script's folder is on the path when it runs

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("UER_SHARED_DATA", ROOT.parent / "shared" / "data"))
DATA = SHARED / "datasets"
VOCAB = SHARED / "models" / "google_zh_vocab.txt"
TINY = ROOT / "models" / "bert" / "tiny_config.json"
DEV_ROWS = 64  # the dev file of every run: evaluation is a fixed cost, it cancels out


def read_tsv(path: Path) -> tuple[list[str], list[list[str]]]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return lines[0].split("\t"), [line.split("\t") for line in lines[1:] if line.strip()]


def write_tsv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join("\t".join(r) for r in [header, *rows]) + "\n", encoding="utf-8")
    return path


def tsv_slice(src: Path, dest: Path, start: int, n: int, fn: Callable[[list[str]], list[str]] | None = None,
              header: list[str] | None = None) -> Path:
    cols, rows = read_tsv(src)
    if len(rows) < start + n:
        sys.exit(f"{src} has {len(rows)} rows; this run needs {start + n} (lower --scale)")
    rows = rows[start:start + n]
    return write_tsv(dest, header or cols, [fn(r) for r in rows] if fn else rows)


def cmrc_subset(questions: list[tuple[dict, dict, dict]], dest: Path) -> Path:
    """SQuAD-format file of (document, paragraph, question) triples, in order."""
    docs: dict[str, dict] = {}
    for doc, para, qa in questions:
        d = docs.setdefault(doc["id"], {"id": doc["id"], "title": doc.get("title", ""), "paragraphs": []})
        if not d["paragraphs"] or d["paragraphs"][-1]["id"] != para["id"]:
            d["paragraphs"].append({"id": para["id"], "context": para["context"], "qas": []})
        d["paragraphs"][-1]["qas"].append(qa)
    dest.write_text(json.dumps({"version": "v1.0", "data": list(docs.values())}, ensure_ascii=False), encoding="utf-8")
    return dest


def cmrc_questions() -> list[tuple[dict, dict, dict]]:
    data = json.loads((DATA / "cmrc2018" / "dev.json").read_text(encoding="utf-8"))["data"]
    return [(doc, para, qa) for doc in data for para in doc["paragraphs"] for qa in para["qas"]]


def c3_subset(dest: Path, start: int, n: int) -> Path:
    """The C3 documents holding questions start..start+n-1 (whole documents: the first n questions or a few more)."""
    docs, seen, out = json.loads((DATA / "c3" / "train.json").read_text(encoding="utf-8")), 0, []
    for doc in docs:
        if seen >= start + n:
            break
        if seen >= start:
            out.append(doc)
        seen += len(doc[1])
    dest.write_text(json.dumps(out, ensure_ascii=False), encoding="utf-8")
    return dest


def c3_questions(path: Path) -> int:
    return sum(len(doc[1]) for doc in json.loads(path.read_text(encoding="utf-8")))


def dbqa_rows() -> list[list[str]]:
    """DBQA rows (qid, label, question, sentence) from CMRC 2018: every question against every sentence of its
    passage (~30,000 rows)."""
    rows: list[list[str]] = []
    for qid, (_, para, qa) in enumerate(cmrc_questions()):
        answer = qa["answers"][0]["text"]
        for sentence in filter(None, re.split(r"(?<=[。！？])", para["context"])):
            rows.append([str(qid), str(int(answer in sentence)), qa["question"], sentence])
    return rows


@dataclass
class Task:
    """One row of the table: UER-py's script and ours, the recipe, and how to write N training units."""
    script: str  # finetune/run_X.py in UER-py, run_X.py here
    units: int  # N at --scale 1
    unit_name: str
    recipe: list[str]
    make: Callable[[Path, int], tuple[list[str], int]]  # (folder, N) -> (data flags, training units)
    ours_extra: list[str] = field(default_factory=list)
    uer_extra: list[str] = field(default_factory=list)
    saves_model: bool = True  # grid: neither writes a model here (ours would need --keep_best_model)
    needs: str | None = None  # a module UER-py's script imports that may be missing


def classification_data(dataset: str, folder: Path, n: int, dev: bool = True) -> list[str]:
    flags = ["--train_path", tsv_slice(DATA / dataset / "train.tsv", folder / "train.tsv", 0, n)]
    if dev:
        flags += ["--dev_path", tsv_slice(DATA / dataset / "dev.tsv", folder / "dev.tsv", 0, DEV_ROWS)]
    return flags


def binarised(row: list[str]) -> list[str]:
    return [str(int(float(row[2]) >= 3)), row[0], row[1]]


def make_tasks(work: Path, scale: float) -> dict[str, Task]:
    cls = ["--seq_length", "128", "--batch_size", "64", "--learning_rate", "1e-4"]
    ner = ["--seq_length", "128", "--batch_size", "16", "--learning_rate", "1e-4",
           "--label2id_path", DATA / "msra_ner" / "label2id.json"]
    long = ["--seq_length", "512", "--batch_size", "8", "--learning_rate", "1e-4"]

    def ner_data(folder: Path, n: int) -> tuple[list[str], int]:
        return ["--train_path", tsv_slice(DATA / "msra_ner" / "dev.tsv", folder / "train.tsv", 0, n),
                "--dev_path", tsv_slice(DATA / "msra_ner" / "test.tsv", folder / "dev.tsv", 0, DEV_ROWS)], n

    def cmrc_data(folder: Path, n: int) -> tuple[list[str], int]:
        qs = cmrc_questions()
        dev = cmrc_subset(qs[-DEV_ROWS // 2:], folder / "dev.json")
        return ["--train_path", cmrc_subset(qs[:n], folder / "train.json"), "--dev_path", dev], n

    def c3_data(folder: Path, n: int) -> tuple[list[str], int]:
        train = c3_subset(folder / "train.json", 0, n)
        dev = c3_subset(folder / "dev.json", 10000, DEV_ROWS // 4)
        return ["--train_path", train, "--dev_path", dev], c3_questions(train)

    def dbqa_data(folder: Path, n: int) -> tuple[list[str], int]:
        header = ["qid", "label", "text_a", "text_b"]
        rows = dbqa_rows()
        return ["--train_path", write_tsv(folder / "train.tsv", header, rows[:n]),
                "--dev_path", write_tsv(folder / "dev.tsv", header, rows[-DEV_ROWS:])], n

    def sts_data(folder: Path, n: int) -> tuple[list[str], int]:
        return classification_data("chinese_stsb", folder, n), n

    def simcse_data(folder: Path, n: int) -> tuple[list[str], int]:
        train = tsv_slice(DATA / "chinese_stsb" / "train.tsv", folder / "train.tsv", 0, n, lambda r: [r[0]], ["text_a"])
        return ["--train_path", train, "--dev_path", tsv_slice(DATA / "chinese_stsb" / "dev.tsv", folder / "dev.tsv",
                                                               0, DEV_ROWS)], n

    def siamese_data(folder: Path, n: int) -> tuple[list[str], int]:
        header = ["label", "text_a", "text_b"]
        sts = DATA / "chinese_stsb"
        return ["--train_path", tsv_slice(sts / "train.tsv", folder / "train.tsv", 0, n, binarised, header),
                "--dev_path", tsv_slice(sts / "dev.tsv", folder / "dev.tsv", 0, DEV_ROWS, binarised, header)], n

    def multi_label_data(folder: Path, n: int) -> tuple[list[str], int]:
        """UER-py sizes the output by the labels seen in training: dev rows with other labels are left out."""
        d = DATA / "legal_multi_label"
        train = tsv_slice(d / "train.tsv", folder / "train.tsv", 0, n)
        cols, rows = read_tsv(train)
        seen = {x for r in rows for x in r[cols.index("label")].split(",")}
        cols, rows = read_tsv(d / "dev.tsv")
        dev = [r for r in rows if set(r[cols.index("label")].split(",")) <= seen][:DEV_ROWS]
        return ["--train_path", train, "--dev_path", write_tsv(folder / "dev.tsv", cols, dev)], n

    def mt_data(folder: Path, n: int) -> tuple[list[str], int]:
        dirs = []
        for name in ("book_review", "chnsenticorp"):
            classification_data(name, folder / name, n)
            dirs.append(folder / name)
        return ["--dataset_path_list", *dirs], 2 * n

    folds = 5
    tasks = {
        "classifier": Task("run_classifier.py", 1000, "reviews", cls,
                           lambda f, n: (classification_data("book_review", f, n), n)),
        "ner": Task("run_ner.py", 600, "sentences", ner, ner_data),
        "ner_crf": Task("run_ner.py", 600, "sentences", [*ner, "--crf_target"], ner_data, needs="torchcrf"),
        "cmrc": Task("run_cmrc.py", 80, "questions", [*long, "--doc_stride", "128"], cmrc_data),
        "c3": Task("run_c3.py", 32, "questions", [*long, "--max_choices_num", "4"], c3_data),
        "dbqa": Task("run_dbqa.py", 1000, "pairs", cls, dbqa_data),
        "regression": Task("run_regression.py", 1000, "pairs", cls, sts_data),
        "multi_label": Task("run_classifier_multi_label.py", 250, "documents", cls, multi_label_data),
        "simcse": Task("run_simcse.py", 800, "texts", [*cls, "--eval_steps", "1000000", "--temperature", "0.05",
                                                        "--pooling", "first"], simcse_data),
        "siamese": Task("run_classifier_siamese.py", 500, "pairs", cls, siamese_data),
        "prompt": Task("run_classifier_prompt.py", 390, "titles", ["--seq_length", "128", "--batch_size", "32",
                                                                   "--learning_rate", "1e-4", "--prompt_id",
                                                                   "tnews_char"],
                       lambda f, n: (classification_data("tnews", f, n), n)),
        "cv": Task("run_classifier_cv.py", 300, "training examples (N x 4 folds)", [*cls, "--folds_num", str(folds)],
                   lambda f, n: (classification_data("book_review", f, n, dev=False) +
                                 ["--train_features_path", f / "features.npy"], n * (folds - 1))),
        "grid": Task("run_classifier_grid.py", 500, "training examples (N x 2 configurations)",
                     ["--seq_length", "128", "--batch_size_list", "32", "64", "--learning_rate_list", "1e-4",
                      "--epochs_num_list", "1"],
                     lambda f, n: (classification_data("book_review", f, n), 2 * n), saves_model=False),
        "mt": Task("run_classifier_mt.py", 500, "reviews (N per data set, 2 data sets)", cls, mt_data),
    }
    # the prompt: our models/prompts.json's tnews_char, given to UER-py in a file of its own
    prompts = json.loads((ROOT / "models" / "prompts.json").read_text(encoding="utf-8"))
    uer_prompts = work / "uer_py_prompts.json"
    uer_prompts.write_text(json.dumps({"tnews_char": prompts["tnews_char"]}, ensure_ascii=False), encoding="utf-8")
    tasks["prompt"].ours_extra = ["--prompt_path", ROOT / "models" / "prompts.json"]
    tasks["prompt"].uer_extra = ["--prompt_path", uer_prompts]
    # siamese: two tied tiny towers (UER-py's sbert layout)
    tower = {k: v for k, v in json.loads(TINY.read_text()).items() if k not in ("target", "tie_weights",
                                                                                  "data_processor")}
    dual = {"stream_0": tower, "stream_1": tower, "embedding": ["dual"], "encoder": "dual", "pooling": "first",
            "tie_weights": True, "dropout": 0.1}
    (work / "sbert_tiny_config.json").write_text(json.dumps(dual), encoding="utf-8")
    tasks["siamese"].recipe = [*tasks["siamese"].recipe, "--config_path", work / "sbert_tiny_config.json"]
    for task in tasks.values():
        task.units = max(8, round(task.units * scale))
    return tasks


def pretrained_model(work: Path) -> Path:
    """A tiny BERT from our preprocess.py + pretrain.py (20 steps), made once per --work folder."""
    model = work / "tiny_bert.bin"
    if model.exists():
        return model
    corpus = work / "corpus.txt"
    lines = (SHARED / "corpora" / "CLUECorpusSmall_bert_sampled.txt").read_text(encoding="utf-8").splitlines()
    corpus.write_text("\n".join(lines[:3000]) + "\n", encoding="utf-8")
    py = sys.executable
    uer_py.run_measured([py, ROOT / "preprocess.py", "--corpus_path", corpus, "--vocab_path", VOCAB, "--dataset_path",
                         work / "corpus.pt", "--seq_length", "128", "--target", "bert", "--processes_num", "1"], ROOT)
    uer_py.run_measured([py, ROOT / "pretrain.py", "--dataset_path", work / "corpus.pt", "--vocab_path", VOCAB,
                         "--config_path", TINY, "--output_model_path", work / "tiny_bert.bin", "--total_steps", "20",
                         "--save_checkpoint_steps", "20", "--batch_size", "16", "--learning_rate", "1e-3"], ROOT)
    (work / "tiny_bert.bin-20").rename(model)
    return model


@dataclass
class Measured:
    units: tuple[int, int]
    runs: tuple[list[uer_py.Usage], list[uer_py.Usage]]  # the runs of N and of 3N units

    def per_s(self) -> tuple[float, float]:
        """(units per CPU second, per wall second) over the difference of the two sizes, each size's least CPU and
        least wall time over its repeats (what other jobs on the machine added is never negative)."""
        extra = self.units[1] - self.units[0]
        cpu = min(u.cpu_s for u in self.runs[1]) - min(u.cpu_s for u in self.runs[0])
        wall = min(u.wall_s for u in self.runs[1]) - min(u.wall_s for u in self.runs[0])
        return (extra / cpu if cpu > 0 else float("nan")), (extra / wall if wall > 0 else float("nan"))


def bench_task(name: str, task: Task, work: Path, uer_dir: Path, model: Path, repeats: int,
               ours_flags: list[str]) -> dict[str, Measured]:
    """Runs UER-py's and our script on N and 3N units, interleaved (both see the same load); ours ``repeats``
    times per size (its runs are short, so start-up noise weighs more)."""
    py = sys.executable
    runs: dict[str, list[list[uer_py.Usage]]] = {"uer_py": [], "ours": []}
    units: list[int] = []
    for n in (task.units, 3 * task.units):
        folder = work / name / f"n{n}"
        folder.mkdir(parents=True, exist_ok=True)
        data_flags, count = task.make(folder, n)
        units.append(count)
        epochs = [] if "--epochs_num_list" in task.recipe else ["--epochs_num", "1"]  # the grid's is a list
        common = ["--pretrained_model_path", model, "--vocab_path", VOCAB, "--config_path", TINY, *epochs,
                  "--seed", "7", *task.recipe, *data_flags]  # a later --config_path (siamese's) wins
        for who in ("uer_py", "ours"):
            out = folder / f"{who}.bin"
            if who == "uer_py":
                cmd, cwd, extra = [py, uer_dir / "finetune" / task.script], uer_dir, task.uer_extra
            else:
                cmd, cwd, extra = [py, ROOT / task.script], ROOT, [*task.ours_extra, "--threads", "1", *ours_flags]
            output = ["--output_model_path", str(out)] if task.saves_model else []
            usages = []
            for _ in range(1 if who == "uer_py" else repeats):
                # each project's own ``uer`` package first (UER-py's scripts append their folder to sys.path)
                usages.append(uer_py.run_measured([*map(str, cmd), *map(str, common), *map(str, extra), *output], cwd,
                                                  env={"PYTHONPATH": str(cwd)}))
            (folder / f"{who}.log").write_text(usages[-1].output, encoding="utf-8")
            (folder / f"{who}.json").write_text(json.dumps([[u.cpu_s, u.wall_s, u.peak_rss_mb] for u in usages]))
            runs[who].append(usages)
    return {who: Measured((units[0], units[1]), (r[0], r[1])) for who, r in runs.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="+", metavar="TASK", help="Tasks to run (default: all).")
    parser.add_argument("--scale", type=float, default=1.0, help="Multiplies every task's N (default 1).")
    parser.add_argument("--repeats", type=int, default=2, help="Runs of our script per size; the least time counts.")
    parser.add_argument("--work", type=Path, default=None, help="Keep data, logs and the model here (default: a "
                        "temporary folder, deleted afterwards).")
    parser.add_argument("--uer_py_git", default=uer_py.DEFAULT_GIT, help="UER-py git snapshot or clone.")
    parser.add_argument("--ours_flags", nargs="+", default=[], metavar="FLAG",
                        help="More flags for our scripts only, e.g. --ours_flags=--fp16 (bfloat16 on this CPU; UER-py "
                             "has no CPU mixed precision, so its runs stay float32).")
    args = parser.parse_args()
    for path in (VOCAB, DATA / "book_review"):
        if not path.exists():
            sys.exit(f"needs {path} (the shared data beside the project)")
    temp = None if args.work else tempfile.mkdtemp(prefix="bench_tasks_")
    work = (args.work or Path(temp)).resolve()
    work.mkdir(parents=True, exist_ok=True)
    try:
        tasks = make_tasks(work, args.scale)
        unknown = set(args.only or []) - set(tasks)
        if unknown:
            sys.exit(f"unknown task(s) {', '.join(sorted(unknown))}; known: {', '.join(tasks)}")
        names = args.only or list(tasks)
        uer_dir = uer_py.write_uer_py(args.uer_py_git, work / "UER-py")
        model = pretrained_model(work)
        start = datetime.now(timezone.utc)
        print(f"UER-py {uer_py.uer_py_commit(args.uer_py_git)}; start {start:%Y-%m-%d %H:%M} UTC, {uer_py.load()}"
              + (f"; our scripts with {' '.join(args.ours_flags)}" if args.ours_flags else ""), flush=True)
        rows = []
        for name in names:
            task = tasks[name]
            if task.needs and importlib.util.find_spec(task.needs) is None:
                print(f"{name}: not run: UER-py's {task.script} needs the {task.needs} module (pytorch-crf: "
                      "pip install --no-deps pytorch-crf==0.7.2)", flush=True)
                continue
            try:
                measured = bench_task(name, task, work, uer_dir, model, args.repeats, args.ours_flags)
            except RuntimeError as err:
                print(f"{name}: failed: {err}", flush=True)
                continue
            (uc, uw), (oc, ow) = measured["uer_py"].per_s(), measured["ours"].per_s()
            rss = (measured["uer_py"].runs[1][0].peak_rss_mb, measured["ours"].runs[1][0].peak_rss_mb)
            row = (name, f"{measured['ours'].units[0]}/{measured['ours'].units[1]} {task.unit_name}", uc, oc, oc / uc,
                   uw, ow, ow / uw, *rss)
            rows.append(row)
            print(f"{name}: UER-py {uc:.1f}/s CPU {uw:.1f}/s wall, ours {oc:.1f}/s CPU {ow:.1f}/s wall "
                  f"({oc / uc:.1f}x CPU, {ow / uw:.1f}x wall); {uer_py.load()}", flush=True)
        end = datetime.now(timezone.utc)
        print(f"\nend {end:%H:%M} UTC, {uer_py.load()}; units per second over the difference of N- and 3N-unit runs\n")
        print("| task | units (N / 3N) | UER-py /CPU-s | ours /CPU-s | x (CPU) | UER-py /s wall | ours /s wall "
              "| x (wall) | peak RSS MB UER-py / ours |")
        print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
        for r in rows:
            print(f"| {r[0]} | {r[1]} | {r[2]:.1f} | {r[3]:.1f} | {r[4]:.1f} | {r[5]:.1f} | {r[6]:.1f} | {r[7]:.1f} "
                  f"| {r[8]:.0f} / {r[9]:.0f} |")
    finally:
        if temp:
            shutil.rmtree(temp, ignore_errors=True)


if __name__ == "__main__":
    main()
