"""run_regression.py, run_classifier_multi_label.py (with their inference scripts and prediction-server answers)
and run_classifier_grid.py end to end on subsets of the shared data (Chinese STS-B, the legal multi-label set,
tnews), tiny model, sequence length 32, one epoch; every printed dev/test metric equals the one scipy or
scikit-learn computes from the inference script's prediction file. The scripts run in this process (runpy)."""
from __future__ import annotations

import re

import numpy as np
import pytest

from conftest import shared_path
from errors_workspace import run_entry

pytestmark = pytest.mark.slow
TINY = "models/bert/tiny_config.json"


def subset(src, dst, every: int, limit: int) -> str:
    """Every ``every``-th row of a TSV (the files are sorted by label), at most ``limit`` rows, with the header."""
    lines = src.read_text(encoding="utf-8").splitlines()
    dst.write_text("\n".join([lines[0]] + lines[1::every][:limit]) + "\n", encoding="utf-8")
    return str(dst)


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    root = tmp_path_factory.mktemp("new_tasks")
    data = shared_path("datasets")
    files = {"root": root, "vocab": str(shared_path("models/google_zh_vocab.txt"))}
    for name, folder, every in (("sts", "chinese_stsb", 10), ("legal", "legal_multi_label", 2), ("tnews", "tnews", 4)):
        files[f"{name}_train"] = subset(data / folder / "train.tsv", root / f"{name}_train.tsv", every, 200)
        files[f"{name}_dev"] = subset(data / folder / "dev.tsv", root / f"{name}_dev.tsv", every, 100)
        files[f"{name}_test"] = subset(data / folder / "test.tsv", root / f"{name}_test.tsv", every * 2, 100)
    return files


def common(ws) -> list[str]:
    """The model and input flags of every command; one thread each, so the loop's and the inference script's
    sums run in the same order (the tiny models' outputs differ little between texts)."""
    return ["--vocab_path", ws["vocab"], "--config_path", TINY, "--seq_length", "32", "--threads", "1"]


BATCH = ["--batch_size", "16"]


def run(capsys, script: str, *args) -> str:
    capsys.readouterr()
    code = run_entry(script, *map(str, args))
    out = capsys.readouterr()
    assert code == 0, out.err[-3000:]
    return out.out + out.err


def column(path, name: str) -> list[str]:
    lines = open(path, encoding="utf-8").read().split("\n")
    index = lines[0].split("\t").index(name)
    return [line.split("\t")[index] for line in lines[1:-1]]


def served(task: str, flags: list[str], texts: list[str], texts_b: list[str] | None):
    from uer.cli import prediction_server
    from uer.config import parse_args_with_config
    from uer.serving.backends import TextPairs

    args = parse_args_with_config(prediction_server.build_parser(task), ["--task", task, *flags])
    service = prediction_server.build_service(args)
    return service.run([TextPairs(texts, texts_b)])[0]


def test_regression_prints_scipy_spearman_and_pearson_of_its_predictions(ws, capsys):
    from scipy import stats

    root, model = ws["root"], ws["root"] / "regression.bin"
    log = run(capsys, "run_regression.py", *common(ws), *BATCH, "--train_path", ws["sts_train"],
              "--dev_path", ws["sts_dev"], "--test_path", ws["sts_test"], "--output_model_path", model, "--epochs_num", "1",
              "--learning_rate", "1e-3", "--eval_steps", "8", "--use_adv", "--adv_type", "fgm")
    dev_scores = [float(x) for x in re.findall(r"dev \(\d+ instances.*?\): spearman (-?[\d.]+)", log)]
    assert len(dev_scores) == 2  # step 8 and the end of the epoch (13 steps)
    test_spearman = float(re.search(r"Spearman corr: (-?[\d.]+)", log).group(1))
    test_pearson = float(re.search(r"Pearson corr: (-?[\d.]+)", log).group(1))
    for split, printed in (("dev", {"spearman": max(dev_scores)}), ("test", {"spearman": test_spearman,
                                                                             "pearson": test_pearson})):
        prediction = root / f"regression_{split}.tsv"
        run(capsys, "inference/run_regression_infer.py", *common(ws), *BATCH, "--load_model_path", model,
            "--test_path", ws[f"sts_{split}"], "--prediction_path", prediction)
        pred = np.array([float(v) for v in column(prediction, "label")])
        gold = np.array([float(v) for v in column(ws[f"sts_{split}"], "label")])
        assert len(pred) == len(gold) and np.std(pred) > 0
        assert round(stats.spearmanr(gold, pred).statistic, 4) == pytest.approx(printed["spearman"], abs=1e-4)
        if "pearson" in printed:
            assert round(stats.pearsonr(gold, pred).statistic, 4) == pytest.approx(printed["pearson"], abs=1e-4)
    # the prediction server answers the inference script's scores
    texts_a, texts_b = column(ws["sts_test"], "text_a")[:5], column(ws["sts_test"], "text_b")[:5]
    answers = served("regression", ["--load_model_path", str(model), *common(ws)], texts_a, texts_b)
    assert [a["score"] for a in answers] == pytest.approx(pred[:5].tolist(), abs=1e-4)


def test_multi_label_prints_scikit_learn_f1_of_its_predictions(ws, capsys):
    from sklearn.metrics import accuracy_score, f1_score

    root, model = ws["root"], ws["root"] / "multi_label.bin"
    log = run(capsys, "run_classifier_multi_label.py", *common(ws), *BATCH, "--train_path", ws["legal_train"],
              "--dev_path", ws["legal_dev"], "--test_path", ws["legal_test"], "--output_model_path", model,
              "--epochs_num", "1", "--learning_rate", "1e-3", "--threshold", "0.3", "--use_adv", "--adv_type", "pgd",
              "--pgd_k", "2")
    assert "4 labels" in log
    test_report = log[log.index("test (best model on dev)"):]
    printed = {name: float(re.search(rf"{label}: ([\d.]+)", test_report).group(1))
               for name, label in (("micro", "Micro F1"), ("macro", "Macro F1"), ("acc", r"Acc\. \(Correct/Total\)"))}
    prediction = root / "multi_label_test.tsv"
    flags = [*common(ws), *BATCH, "--load_model_path", model, "--labels_num", "4", "--threshold", "0.3"]
    run(capsys, "inference/run_classifier_multi_label_infer.py", *flags, "--test_path", ws["legal_test"],
        "--prediction_path", prediction, "--output_prob")

    def indicator(cells: list[str]) -> np.ndarray:
        out = np.zeros((len(cells), 4), dtype=int)
        for row, cell in enumerate(cells):
            for i in filter(None, cell.split(",")):
                out[row, int(i)] = 1
        return out

    pred, gold = indicator(column(prediction, "label")), indicator(column(ws["legal_test"], "label"))
    probs = np.array([[float(v) for v in cell.split()] for cell in column(prediction, "prob")])
    assert (pred == (probs > 0.3)).all() and pred.sum() > 0
    assert round(f1_score(gold, pred, average="micro"), 4) == pytest.approx(printed["micro"], abs=1e-4)
    assert round(f1_score(gold, pred, average="macro", zero_division=0), 4) == pytest.approx(printed["macro"], abs=1e-4)
    assert round(accuracy_score(gold, pred), 4) == pytest.approx(printed["acc"], abs=1e-4)
    # nothing above the threshold: an empty label cell
    empty = root / "multi_label_empty.tsv"
    run(capsys, "inference/run_classifier_multi_label_infer.py", *flags, "--threshold", "0.999",
        "--test_path", ws["legal_test"], "--prediction_path", empty)
    assert set(column(empty, "label")) == {""} and len(column(empty, "label")) == len(gold)
    # the prediction server answers the same label sets
    answers = served("multi_label", ["--load_model_path", str(model), "--labels_num", "4", "--threshold", "0.3",
                                     *common(ws)], column(ws["legal_test"], "text_a")[:6], None)
    assert [a["labels"] for a in answers] == [np.flatnonzero(row).tolist() for row in pred[:6]]


def test_grid_prints_every_configuration_and_keeps_the_best(ws, capsys):
    from sklearn.metrics import accuracy_score

    root, model = ws["root"], ws["root"] / "grid_best.bin"
    log = run(capsys, "run_classifier_grid.py", *common(ws), "--train_path", ws["tnews_train"],
              "--dev_path", ws["tnews_dev"],
              "--test_path", ws["tnews_test"], "--batch_size_list", "16", "32", "--learning_rate_list", "1e-3",
              "--epochs_num_list", "1", "--keep_best_model", "--output_model_path", model, "--report_steps", "1000")
    scores = {int(b): float(s) for b, s in
              re.findall(r"configuration \d/2: batch_size (\d+), learning_rate 0.001, epochs_num 1: dev acc ([\d.]+)", log)}
    assert set(scores) == {16, 32}
    best_batch = max(scores, key=scores.get)
    best = re.search(r"best configuration: batch_size (\d+), learning_rate 0.001, epochs_num 1, dev acc ([\d.]+)", log)
    assert int(best.group(1)) == best_batch and float(best.group(2)) == scores[best_batch]
    assert [p.name for p in root.iterdir() if p.name.startswith(".grid")] == []  # no scratch left
    test_acc = float(re.findall(r"Acc\. \(Correct/Total\): ([\d.]+)", log[log.index("test (best configuration"):])[0])
    for split, printed in (("dev", scores[best_batch]), ("test", test_acc)):
        prediction = root / f"grid_{split}.tsv"
        run(capsys, "inference/run_classifier_infer.py", *common(ws), "--batch_size", str(best_batch),
            "--load_model_path", model, "--labels_num", "15",
            "--test_path", ws[f"tnews_{split}"], "--prediction_path", prediction)
        gold = [int(v) for v in column(ws[f"tnews_{split}"], "label")]
        assert round(accuracy_score(gold, [int(v) for v in column(prediction, "label")]), 4) == pytest.approx(printed, abs=1e-4)
    # the lists replace the single values: giving one is a mistake, not silently ignored
    capsys.readouterr()
    code = run_entry("run_classifier_grid.py", "--vocab_path", ws["vocab"], "--train_path", ws["tnews_train"],
                     "--dev_path", ws["tnews_dev"], "--batch_size", "8")
    assert code == 2 and "--batch_size is what the grid search varies" in capsys.readouterr().err
