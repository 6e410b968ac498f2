"""The fine-tuning command lines of UER-py's docs, run on ../shared/data/datasets/test_data (paths adjusted,
tiny configs, 1-2 epochs): classification, pair classification, ALBERT, multi-task (both script names),
distillation (teacher -> inference with logits -> student with --soft_targets), DBQA, cross-validation,
and 2 gloo processes against 1. The "pre-trained" models are freshly initialised tiny models written in
UER-py's format, which is all these commands need to run.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import free_port, run_script, shared_path
from uer.model_builder import build_model
from uer.model_loader import load_state_dict
from uer.model_saver import save_model
from uer.model_config import ModelConfig

pytestmark = pytest.mark.slow

MODEL_FLAGS = ["--embedding", "word_pos_seg", "--encoder", "transformer", "--mask", "fully_visible"]
# Tiny models gain nothing from a second thread on a shared 2-core machine.
ENV = {"OMP_NUM_THREADS": "1"}
ACC = re.compile(r"test \(best model on dev\).*?\nAcc\. \(Correct/Total\): ([0-9.]+) \((\d+)/(\d+)\)", re.S)


def read_rows(path) -> tuple[list[str], list[list[str]]]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return lines[0].split("\t"), [line.split("\t") for line in lines[1:] if line]


def write_rows(path, header: list[str], rows: list[list[str]]) -> str:
    path.write_text("\n".join("\t".join(r) for r in [header] + rows) + "\n", encoding="utf-8")
    return str(path)


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    root = tmp_path_factory.mktemp("finetune")
    vocab = shared_path("models/google_zh_vocab.txt")
    book = shared_path("datasets/test_data/book_review")
    vocab_size = sum(1 for _ in open(vocab, encoding="utf-8"))
    # a "pre-trained" tiny BERT (with its MLM/NSP target, as pretrain.py writes it) and a tiny ALBERT
    torch.manual_seed(0)
    tiny = json.loads(open("models/bert/tiny_config.json").read())
    bert = ModelConfig(vocab_size=vocab_size, emb_size=128, hidden_size=128, feedforward_size=512, heads_num=2,
                       layers_num=2, tie_weights=True)
    save_model(build_model(bert), root / "tiny_model.bin")
    albert_json = dict(tiny, emb_size=32, factorized_embedding_parameterization=True, parameter_sharing=True,
                       data_processor="albert")
    (root / "albert_tiny_config.json").write_text(json.dumps(albert_json), encoding="utf-8")
    albert = ModelConfig(vocab_size=vocab_size, emb_size=32, hidden_size=128, feedforward_size=512, heads_num=2,
                         layers_num=2, factorized_embedding_parameterization=True, parameter_sharing=True)
    save_model(build_model(albert), root / "albert_tiny_model.bin")
    # pairs and DBQA made from the reviews: a review's first half asks, second halves answer
    header, rows = read_rows(book / "train.tsv")
    halves = [(r[1][: len(r[1]) // 2], r[1][len(r[1]) // 2:] or "。") for r in rows]
    pairs = [[r[0], a, b] for r, (a, b) in zip(rows, halves)]
    (root / "pairs").mkdir()
    write_rows(root / "pairs" / "train.tsv", ["label", "text_a", "text_b"], pairs[:120])
    write_rows(root / "pairs" / "dev.tsv", ["text_b", "label", "text_a"], [[b, l, a] for l, a, b in pairs[120:160]])
    write_rows(root / "pairs" / "test.tsv", ["label", "text_a", "text_b"], pairs[160:])
    dbqa = []
    for q in range(len(halves) // 3):
        question = halves[3 * q][0]
        answered = q % 5 != 4  # every fifth question has no correct sentence
        for j in range(3):
            label = int(answered and j == 0)
            dbqa.append([str(q), str(label), question, halves[3 * q + j][1]])
    (root / "dbqa").mkdir()
    write_rows(root / "dbqa" / "train.tsv", ["qid", "label", "text_a", "text_b"], dbqa[:120])
    write_rows(root / "dbqa" / "dev.tsv", ["qid", "label", "text_a", "text_b"], dbqa[120:165])
    write_rows(root / "dbqa" / "test.tsv", ["qid", "label", "text_a", "text_b"], dbqa[165:])
    write_rows(root / "dbqa" / "test_nolabel.tsv", ["qid", "text_a", "text_b"], [[r[0], r[2], r[3]] for r in dbqa[165:]])
    return {"root": root, "vocab": str(vocab), "book": book, "chn": shared_path("datasets/test_data/chnsenticorp")}


def classifier(ws, *args: str, script: str = "run_classifier.py") -> str:
    return run_script(script, "--vocab_path", ws["vocab"], "--config_path", "models/bert/tiny_config.json",
                      "--report_steps", "4", *args, env=ENV).stdout


def infer(ws, model: str, test_path, prediction: str, *args: str) -> list[list[str]]:
    run_script("inference/run_classifier_infer.py", "--load_model_path", model, "--vocab_path", ws["vocab"],
               "--config_path", "models/bert/tiny_config.json", "--test_path", str(test_path),
               "--prediction_path", prediction, "--labels_num", "2", *args, env=ENV)
    header, rows = read_rows(Path(prediction))
    return [header] + rows


def test_classification_then_inference_gives_the_printed_test_accuracy(ws):
    root, book = ws["root"], ws["book"]
    out = classifier(ws, "--pretrained_model_path", str(root / "tiny_model.bin"), "--train_path", str(book / "train.tsv"),
                     "--dev_path", str(book / "dev.tsv"), "--test_path", str(book / "test.tsv"),
                     "--output_model_path", str(root / "finetuned_model.bin"), "--epochs_num", "1", "--batch_size", "32",
                     "--learning_rate", "1e-3", *MODEL_FLAGS)
    assert "not used by this model" in out  # the MLM/NSP target of the pre-trained file, reported
    assert ", length bucketing" in out  # the default
    acc, correct, total = ACC.search(out).groups()
    rows = infer(ws, str(root / "finetuned_model.bin"), book / "test_nolabel.tsv", str(root / "prediction.tsv"),
                 "--seq_length", "128", "--batch_size", "32", "--output_logits", "--output_prob", *MODEL_FLAGS)
    header, preds = rows[0], rows[1:]
    assert header == ["label", "logits", "prob"]
    gold = [r[0] for r in read_rows(book / "test.tsv")[1]]
    assert len(preds) == len(gold) == int(total)
    assert sum(p[0] == g for p, g in zip(preds, gold)) == int(correct)
    for label, logits, prob in preds:
        logits, prob = np.array(logits.split(), float), np.array(prob.split(), float)
        assert len(logits) == 2 and abs(prob.sum() - 1) < 1e-5 and int(label) == logits.argmax()


def test_pair_classification_with_mean_pooling_random_batches_and_fp16(ws):
    root = ws["root"]
    out = classifier(ws, "--pretrained_model_path", str(root / "tiny_model.bin"),
                     "--train_path", str(root / "pairs" / "train.tsv"), "--dev_path", str(root / "pairs" / "dev.tsv"),
                     "--test_path", str(root / "pairs" / "test.tsv"), "--output_model_path", str(root / "pair.bin"),
                     "--epochs_num", "2", "--batch_size", "32", "--pooling", "mean", "--no_length_bucketing",
                     "--fp16", *MODEL_FLAGS)
    assert "bfloat16" in out and "epoch 2/2 dev" in out and ACC.search(out)
    assert "random batches (no length bucketing)" in out
    keys = load_state_dict(root / "pair.bin")
    assert keys["output_layer_2.weight"].shape == (2, 128) and "target.mlm.linear_1.weight" not in keys


def test_albert_classification_and_inference(ws):
    root, book = ws["root"], ws["book"]
    config = str(root / "albert_tiny_config.json")
    classifier(ws, "--pretrained_model_path", str(root / "albert_tiny_model.bin"), "--config_path", config,
               "--train_path", str(book / "train.tsv"), "--dev_path", str(book / "dev.tsv"),
               "--test_path", str(book / "test.tsv"), "--output_model_path", str(root / "albert_cls.bin"),
               "--learning_rate", "4e-5", "--epochs_num", "1", "--batch_size", "32",
               "--factorized_embedding_parameterization", "--parameter_sharing", *MODEL_FLAGS)
    keys = load_state_dict(root / "albert_cls.bin")
    assert "encoder.linear.weight" in keys and "encoder.transformer.self_attn.linear_layers.0.weight" in keys
    rows = infer(ws, str(root / "albert_cls.bin"), book / "test_nolabel.tsv", str(root / "albert_pred.tsv"),
                 "--config_path", config, "--factorized_embedding_parameterization", "--parameter_sharing", *MODEL_FLAGS)
    assert rows[0] == ["label"] and len(rows) == 51


def test_multitask_with_the_old_script_name(ws):
    root = ws["root"]
    out = classifier(ws, "--pretrained_model_path", str(root / "tiny_model.bin"),
                     "--dataset_path_list", str(ws["book"]) + "/", str(ws["chn"]) + "/",
                     "--output_model_path", str(root / "mt.bin"), "--epochs_num", "1", "--batch_size", "64",
                     *MODEL_FLAGS, script="run_mt_classifier.py")
    assert "epoch 1/1 dev [0: book_review]" in out and "epoch 1/1 dev [1: chnsenticorp]" in out
    keys = load_state_dict(root / "mt.bin")
    assert {"output_layers_1.0.weight", "output_layers_1.1.weight", "output_layers_2.1.bias"} <= set(keys)


def test_distillation_recipe(ws):
    root, book = ws["root"], ws["book"]
    classifier(ws, "--pretrained_model_path", str(root / "tiny_model.bin"), "--train_path", str(book / "train.tsv"),
               "--dev_path", str(book / "dev.tsv"), "--test_path", str(book / "test.tsv"),
               "--output_model_path", str(root / "teacher_classifier_model.bin"), "--epochs_num", "1",
               "--batch_size", "32", "--learning_rate", "1e-3", *MODEL_FLAGS)
    # the teacher labels the training texts; its label and logits columns go next to the texts
    header, rows = read_rows(book / "train.tsv")
    text = write_rows(root / "text.tsv", ["text_a"], [[r[header.index("text_a")]] for r in rows])
    predicted = infer(ws, str(root / "teacher_classifier_model.bin"), text, str(root / "label_logits.tsv"),
                      "--output_logits", *MODEL_FLAGS)
    assert predicted[0] == ["label", "logits"]
    student_rows = [[r[header.index("text_a")]] + p for r, p in zip(rows, predicted[1:])]
    student_train = write_rows(root / "text_label_logits.tsv", ["text_a", "label", "logits"], student_rows)
    def student(train_path: str, output: str, *flags: str) -> dict:
        out = classifier(ws, "--pretrained_model_path", str(root / "tiny_model.bin"), "--train_path", train_path,
                         "--dev_path", str(book / "dev.tsv"), "--output_model_path", str(root / output),
                         "--epochs_num", "1", "--batch_size", "64", *flags, *MODEL_FLAGS)
        assert ("soft targets, alpha 0.5" in out) == bool(flags), out
        return load_state_dict(root / output)

    def differs(a: dict, b: dict) -> float:
        return max((a[k] - b[k]).abs().max().item() for k in a)

    soft = student(student_train, "student.bin", "--soft_targets", "--soft_alpha", "0.5")
    # Same seed and data, another teacher's logits (4x sharper): the student ends elsewhere.
    sharper = [r[:2] + [" ".join(str(4 * float(x)) for x in r[2].split())] for r in student_rows]
    other = student(write_rows(root / "text_label_logits_x4.tsv", ["text_a", "label", "logits"], sharper),
                    "student_x4.bin", "--soft_targets", "--soft_alpha", "0.5")
    assert differs(soft, other) > 1e-5
    # With and without --soft_targets on one file (gold labels here: the tiny teacher may predict one class only).
    gold = write_rows(root / "text_gold_logits.tsv", ["text_a", "label", "logits"],
                      [[r[header.index("text_a")], r[header.index("label")], p[1]] for r, p in zip(rows, predicted[1:])])
    with_teacher = student(gold, "student_gold_soft.bin", "--soft_targets", "--soft_alpha", "0.5")
    without = student(gold, "student_gold_hard.bin")
    assert differs(with_teacher, without) > 1e-5


def test_dbqa_and_its_inference(ws):
    root = ws["root"]
    out = classifier(ws, "--pretrained_model_path", str(root / "tiny_model.bin"),
                     "--train_path", str(root / "dbqa" / "train.tsv"), "--dev_path", str(root / "dbqa" / "dev.tsv"),
                     "--test", str(root / "dbqa" / "test.tsv"),  # the docs abbreviate --test_path
                     "--output_model_path", str(root / "dbqa_model.bin"), "--epochs_num", "1", "--batch_size", "32",
                     *MODEL_FLAGS, script="run_dbqa.py")
    test_part = out[out.index("test (best model on dev)"):]
    assert re.search(r"Mean Reciprocal Rank: [0-9.]+  MAP: [0-9.]+  over \d+ questions \(\d+ without a correct", test_part)
    assert "Acc. (Correct/Total)" in test_part
    rows = infer(ws, str(root / "dbqa_model.bin"), root / "dbqa" / "test_nolabel.tsv", str(root / "dbqa_pred.tsv"),
                 "--output_logits", "--output_prob", *MODEL_FLAGS)
    assert rows[0] == ["label", "logits", "prob"] and len(rows) == 1 + len(read_rows(root / "dbqa" / "test.tsv")[1])


def test_cross_validation(ws):
    root, book = ws["root"], ws["book"]
    out = classifier(ws, "--pretrained_model_path", str(root / "tiny_model.bin"),
                     "--output_model_path", str(root / "classifier_model.bin"),
                     "--train_features_path", str(root / "train_features.npy"), "--train_path", str(book / "train.tsv"),
                     "--epochs_num", "1", "--batch_size", "32", "--folds_num", "3", *MODEL_FLAGS,
                     script="run_classifier_cv.py")
    assert re.search(r"cross-validation over 3 folds: Acc\. [0-9.]+  Macro F1 [0-9.]+", out)
    # one numbering (from 0, as UER-py and the fold models' names) in every line about a fold
    numbers = [int(n) for n in re.findall(r"\bfold (\d+)\b", out)]
    assert sorted(set(numbers)) == [0, 1, 2] and not re.search(r"\bfold \d+/\d+", out)
    assert all((root / f"classifier_model-fold_{k}.bin").is_file() for k in range(3))
    features = np.load(root / "train_features.npy")
    assert features.shape == (200, 2) and np.allclose(features.sum(1), 1, atol=1e-5)


@pytest.mark.distributed
def test_two_gloo_processes_train_like_one(ws):
    root, book = ws["root"], ws["book"]
    port = free_port()
    common = ["--pretrained_model_path", str(root / "tiny_model.bin"), "--train_path", str(book / "train.tsv"),
              "--dev_path", str(book / "dev.tsv"), "--epochs_num", "1", "--batch_size", "30", "--dropout", "0",
              "--learning_rate", "1e-3", "--embedding", "bert", "--encoder", "bert"]  # the 2020 spellings
    classifier(ws, *common, "--output_model_path", str(root / "one.bin"))
    out = classifier(ws, *common, "--output_model_path", str(root / "two.bin"), "--world_size", "2",
                     "--gpu_ranks", "0", "1", "--backend", "gloo", "--master_ip", f"tcp://127.0.0.1:{port}")
    assert "2 process(es)" in out
    one, two = load_state_dict(root / "one.bin"), load_state_dict(root / "two.bin")
    for key in one:
        torch.testing.assert_close(one[key], two[key], rtol=1e-4, atol=1e-5, msg=key)
