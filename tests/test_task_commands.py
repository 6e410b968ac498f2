"""The sequence labelling, reading comprehension and multiple choice command lines of UER-py's docs (NER,
CMRC, C3, each with BERT and ALBERT, and their inference commands), plus ChID, run on small real data
(paths adjusted, tiny configs, one epoch). Both spellings of the model flags are used (the finetune docs'
``--embedding word_pos_seg --encoder transformer --mask fully_visible`` and the instructions' ``--encoder
bert``). Inference scripts run in-process (same code path as their wrappers, without another interpreter
start on the shared CPU); the training scripts run as subprocesses.
"""
from __future__ import annotations

import json
import re

import pytest
import torch

from conftest import run_script, shared_path
from uer.model_builder import build_model
from uer.model_config import ModelConfig
from uer.model_loader import load_state_dict
from uer.model_saver import save_model
from uer.finetune.metrics import cmrc_report, entity_report

pytestmark = pytest.mark.slow

LONG_FLAGS = ["--embedding", "word_pos_seg", "--encoder", "transformer", "--mask", "fully_visible"]
SHORT_FLAGS = ["--encoder", "bert"]
ALBERT_FLAGS = ["--factorized_embedding_parameterization", "--parameter_sharing"]
ENV = {"OMP_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    root = tmp_path_factory.mktemp("tasks")
    vocab = shared_path("models/google_zh_vocab.txt")
    vocab_size = sum(1 for _ in open(vocab, encoding="utf-8"))
    torch.manual_seed(0)
    tiny = json.loads(open("models/bert/tiny_config.json").read())
    save_model(build_model(ModelConfig(vocab_size=vocab_size, emb_size=128, hidden_size=128, feedforward_size=512,
                                       heads_num=2, layers_num=2, tie_weights=True)), root / "bert.bin")
    albert_json = dict(tiny, emb_size=32, factorized_embedding_parameterization=True, parameter_sharing=True,
                       data_processor="albert")
    (root / "albert_config.json").write_text(json.dumps(albert_json), encoding="utf-8")
    save_model(build_model(ModelConfig(vocab_size=vocab_size, emb_size=32, hidden_size=128, feedforward_size=512,
                                       heads_num=2, layers_num=2, factorized_embedding_parameterization=True,
                                       parameter_sharing=True)), root / "albert.bin")
    ner = shared_path("datasets/test_data/msra_ner")
    lines = (ner / "train.tsv").read_text(encoding="utf-8").splitlines()
    (root / "ner_train.tsv").write_text("\n".join(lines[:81]) + "\n", encoding="utf-8")
    c3 = shared_path("datasets/c3")
    for split, n in (("train", 40), ("dev", 12), ("test", 8)):
        items = json.loads((c3 / f"{split}.json").read_text(encoding="utf-8"))[:n]
        (root / f"c3_{split}.json").write_text(json.dumps(items, ensure_ascii=False), encoding="utf-8")
    return {"root": root, "vocab": str(vocab), "ner": ner, "cmrc": shared_path("datasets/test_data/cmrc"),
            "label2id": str(shared_path("datasets/msra_ner/label2id.json"))}


def log(proc) -> str:
    return proc.stdout + proc.stderr


def read_tags(path) -> list[list[str]]:
    """The prediction file as UER-py's run_ner_infer.py writes it: header ``pred_label``, one line of
    space-separated tags per sentence."""
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "pred_label", lines[0]
    return [line.split() for line in lines[1:] if line]


def read_gold_tags(path) -> list[list[str]]:
    lines = path.read_text(encoding="utf-8").splitlines()
    header = lines[0].split("\t")
    return [line.split("\t")[header.index("label")].split() for line in lines[1:] if line]


def test_ner_bert_docs_commands_and_inference_agree_with_seqeval(ws):
    root, ner = ws["root"], ws["ner"]
    out = log(run_script("run_ner.py", "--pretrained_model_path", str(root / "bert.bin"), "--vocab_path", ws["vocab"],
                     "--train_path", str(root / "ner_train.tsv"), "--dev_path", str(ner / "dev.tsv"),
                     "--test_path", str(ner / "test.tsv"), "--output_model_path", str(root / "ner_model.bin"),
                     "--label2id_path", ws["label2id"], "--epochs_num", "1", "--batch_size", "16",
                     "--config_path", "models/bert/tiny_config.json", "--seq_length", "48",
                     *LONG_FLAGS, env=ENV))
    # sentences of up to 120 characters at --seq_length 48: windows, every character still scored
    reported = re.search(r"test \(best model on dev\).*?\nentity P/R/F1: ([0-9.]+)/([0-9.]+)/([0-9.]+)", out, re.S)
    assert reported, out[-2000:]
    from uer.cli.infer import task_main
    ner_infer = task_main("ner")

    for source, name in (("test_nolabel.tsv", "prediction.tsv"), ("test.tsv", "prediction_test.tsv")):
        ner_infer(["--load_model_path", str(root / "ner_model.bin"), "--vocab_path", ws["vocab"],
                   "--test_path", str(ner / source), "--prediction_path", str(root / name),
                   "--label2id_path", ws["label2id"], "--config_path", "models/bert/tiny_config.json",
                   "--seq_length", "48", *SHORT_FLAGS])
    gold = read_gold_tags(ner / "test.tsv")
    pred = read_tags(root / "prediction.tsv")
    assert read_tags(root / "prediction_test.tsv") == pred  # a label column in the input is ignored
    assert [len(p) for p in pred] == [len(g) for g in gold] and max(len(g) for g in gold) > 48
    seqeval = pytest.importorskip("seqeval.metrics")
    ours = entity_report(gold, pred)
    assert ours.f1 == pytest.approx(seqeval.f1_score(gold, pred), abs=1e-12)
    assert ours.precision == pytest.approx(seqeval.precision_score(gold, pred), abs=1e-12)
    assert ours.recall == pytest.approx(seqeval.recall_score(gold, pred), abs=1e-12)
    assert ours.predicted > 10  # after a few steps at 2e-5 the model still predicts many (mostly wrong) entities
    assert [float(x) for x in reported.groups()] == pytest.approx([ours.precision, ours.recall, ours.f1], abs=6e-5)


def test_ner_albert_with_crf_and_bio_constraints(ws):
    root, ner = ws["root"], ws["ner"]
    config = str(root / "albert_config.json")
    run_script("run_ner.py", "--pretrained_model_path", str(root / "albert.bin"), "--vocab_path", ws["vocab"],
               "--config_path", config, "--train_path", str(root / "ner_train.tsv"), "--dev_path", str(ner / "dev.tsv"),
               "--test_path", str(ner / "test.tsv"), "--label2id_path", ws["label2id"], "--epochs_num", "1",
               "--batch_size", "16", "--learning_rate", "1e-4", *ALBERT_FLAGS, "--crf_target", "--bio_constraints",
               "--output_model_path", str(root / "ner_crf.bin"), "--seq_length", "64", *SHORT_FLAGS, env=ENV)
    keys = load_state_dict(root / "ner_crf.bin")
    assert {"crf.transitions", "crf.start_transitions", "crf.end_transitions", "output_layer.weight"} <= set(keys)
    from uer.cli.infer import task_main
    ner_infer = task_main("ner")

    ner_infer(["--load_model_path", str(root / "ner_crf.bin"), "--vocab_path", ws["vocab"], "--config_path", config,
               "--test_path", str(ner / "test_nolabel.tsv"), "--prediction_path", str(root / "crf_prediction.tsv"),
               "--label2id_path", ws["label2id"], "--seq_length", "64", "--bio_constraints", *ALBERT_FLAGS, *LONG_FLAGS])
    for tags in read_tags(root / "crf_prediction.tsv"):
        for prev, tag in zip(["O"] + tags, tags):
            assert not tag.startswith("I-") or prev[2:] == tag[2:] and prev != "O", tags


def _cmrc_train(ws, model: str, output: str, *extra: str) -> str:
    cmrc = ws["cmrc"]
    return log(run_script("run_cmrc.py", "--pretrained_model_path", str(ws["root"] / model), "--vocab_path", ws["vocab"],
                      "--train_path", str(cmrc / "train.json"), "--dev_path", str(cmrc / "dev.json"),
                      "--output_model_path", str(ws["root"] / output), "--epochs_num", "1", "--batch_size", "8",
                      "--seq_length", "128", "--doc_stride", "48", *extra, env=ENV))


def test_cmrc_bert_docs_commands_and_official_metric_on_the_inference_file(ws):
    root, cmrc = ws["root"], ws["cmrc"]
    out = _cmrc_train(ws, "bert.bin", "cmrc_model.bin", "--config_path", "models/bert/tiny_config.json", *LONG_FLAGS)
    # read as UER-py's run_cmrc.py line is read: Avg: A,F1:F,EM:E,Total:N,Skip:S (percentages)
    dev_score = re.search(r"dev .*?in percent: Avg: ([0-9.]+),F1:([0-9.]+),EM:([0-9.]+),Total:3,Skip:0", out)
    assert dev_score, out[-2000:]
    from uer.cli.infer import task_main
    cmrc_infer = task_main("mrc")

    for source in ("test", "dev"):
        cmrc_infer(["--load_model_path", str(root / "cmrc_model.bin"), "--vocab_path", ws["vocab"],
                    "--test_path", str(cmrc / f"{source}.json"), "--prediction_path", str(root / f"cmrc_{source}.json"),
                    "--seq_length", "128", "--doc_stride", "48", "--config_path", "models/bert/tiny_config.json",
                    *SHORT_FLAGS])
    data = json.loads((cmrc / "test.json").read_text(encoding="utf-8"))
    contexts = {qa["id"]: p["context"] for a in data["data"] for p in a["paragraphs"] for qa in p["qas"]}
    answers = json.loads((root / "cmrc_test.json").read_text(encoding="utf-8"))
    assert set(answers) == set(contexts)
    assert all(text and text in contexts[qid] for qid, text in answers.items())  # spans of the original context
    # the dev score the training run reported is the official metric of what the inference script writes
    dev = json.loads((cmrc / "dev.json").read_text(encoding="utf-8"))
    refs = {qa["id"]: [x["text"] for x in qa["answers"]] for a in dev["data"] for p in a["paragraphs"] for qa in p["qas"]}
    report = cmrc_report(refs, json.loads((root / "cmrc_dev.json").read_text(encoding="utf-8")))
    assert [float(x) for x in dev_score.groups()] == pytest.approx([report.average, report.f1, report.em], abs=6e-5)


def test_cmrc_albert(ws):
    root = ws["root"]
    config = str(root / "albert_config.json")
    _cmrc_train(ws, "albert.bin", "cmrc_albert.bin", "--config_path", config, "--learning_rate", "1e-5",
                *ALBERT_FLAGS, *SHORT_FLAGS)
    from uer.cli.infer import task_main
    cmrc_infer = task_main("mrc")

    cmrc_infer(["--load_model_path", str(root / "cmrc_albert.bin"), "--vocab_path", ws["vocab"], "--config_path", config,
                "--test_path", str(ws["cmrc"] / "test.json"), "--prediction_path", str(root / "cmrc_albert_pred.json"),
                "--seq_length", "128", *ALBERT_FLAGS, *LONG_FLAGS])
    assert len(json.loads((root / "cmrc_albert_pred.json").read_text(encoding="utf-8"))) == 5


@pytest.mark.parametrize("variant", ["bert", "albert"])
def test_c3_docs_commands_and_inference(ws, variant):
    root = ws["root"]
    model_flags = (["--config_path", "models/bert/tiny_config.json"] + LONG_FLAGS if variant == "bert" else
                   ["--config_path", str(root / "albert_config.json")] + ALBERT_FLAGS + SHORT_FLAGS)
    out = log(run_script("run_c3.py", "--pretrained_model_path", str(root / f"{variant}.bin"), "--vocab_path", ws["vocab"],
                     "--train_path", str(root / "c3_train.json"), "--dev_path", str(root / "c3_dev.json"),
                     "--output_model_path", str(root / f"c3_{variant}.bin"), "--epochs_num", "1", "--batch_size", "8",
                     "--seq_length", "96", "--max_choices_num", "4", *model_flags, env=ENV))
    dev_questions = sum(len(item[1]) for item in json.loads((root / "c3_dev.json").read_text(encoding="utf-8")))
    assert re.search(rf"dev .*Acc\. \(Correct/Total\): [0-9.]+ \(\d+/{dev_questions}\)", out), out[-2000:]
    from uer.cli.infer import task_main
    c3_infer = task_main("c3")

    c3_infer(["--load_model_path", str(root / f"c3_{variant}.bin"), "--vocab_path", ws["vocab"],
              "--test_path", str(root / "c3_test.json"), "--prediction_path", str(root / f"c3_{variant}_pred.json"),
              "--max_choices_num", "4", "--seq_length", "96", *model_flags])
    test = json.loads((root / "c3_test.json").read_text(encoding="utf-8"))
    questions = [q for item in test for q in item[1]]
    lines = [json.loads(line) for line in (root / f"c3_{variant}_pred.json").read_text(encoding="utf-8").splitlines()]
    assert [r["id"] for r in lines] == [q["id"] for q in questions]
    assert all(0 <= r["label"] < len(q["choice"]) for r, q in zip(lines, questions))  # fillers never win


def write_chid(path, answer_path, passages: int, first: int, seed: int) -> None:
    import random

    rng = random.Random(seed)
    idioms = ["一帆风顺", "画蛇添足", "守株待兔", "亡羊补牢", "对牛弹琴", "井底之蛙", "掩耳盗铃", "刻舟求剑",
              "杯弓蛇影", "望梅止渴", "叶公好龙", "狐假虎威"]
    answers, blank = {}, first
    with open(path, "w", encoding="utf-8") as handle:
        for _ in range(passages):
            candidates = rng.sample(idioms, 10)
            content = []
            for _ in range(2):
                tags = [f"#idiom{blank:06d}#", f"#idiom{blank + 1:06d}#"]
                blank += 2
                for tag in tags:
                    answers[tag] = rng.randrange(10)
                content.append(f"他说这件事{tags[0]}，大家都笑了。后来{tags[1]}也没有用。")
            handle.write(json.dumps({"candidates": candidates, "content": content}, ensure_ascii=False) + "\n")
    with open(answer_path, "w", encoding="utf-8") as handle:
        json.dump(answers, handle)


def test_chid_and_inference(ws):
    root = ws["root"]
    write_chid(root / "chid_train.json", root / "chid_train_answer.json", 8, 0, 1)
    write_chid(root / "chid_dev.json", root / "chid_dev_answer.json", 3, 1000, 2)
    out = log(run_script("run_chid.py", "--pretrained_model_path", str(root / "bert.bin"), "--vocab_path", ws["vocab"],
                     "--config_path", "models/bert/tiny_config.json", "--train_path", str(root / "chid_train.json"),
                     "--train_answer_path", str(root / "chid_train_answer.json"), "--dev_path", str(root / "chid_dev.json"),
                     "--dev_answer_path", str(root / "chid_dev_answer.json"), "--output_model_path", str(root / "chid.bin"),
                     "--epochs_num", "1", "--batch_size", "4", "--seq_length", "32", "--max_choices_num", "10",
                     *SHORT_FLAGS, env=ENV))
    assert re.search(r"dev .*Acc\. \(Correct/Total\): [0-9.]+ \(\d+/12\)", out), out[-2000:]
    from uer.cli.infer import task_main
    chid_infer = task_main("chid")

    chid_infer(["--load_model_path", str(root / "chid.bin"), "--vocab_path", ws["vocab"], "--config_path",
                "models/bert/tiny_config.json", "--test_path", str(root / "chid_dev.json"),
                "--prediction_path", str(root / "chid_pred.json"), "--seq_length", "32", *SHORT_FLAGS])
    pred = json.loads((root / "chid_pred.json").read_text(encoding="utf-8"))
    assert set(pred) == set(json.loads((root / "chid_dev_answer.json").read_text(encoding="utf-8")))
    assert all(0 <= v < 10 for v in pred.values())
