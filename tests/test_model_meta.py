"""A fine-tuned model remembers how it was trained (uer/model_meta.py): inference without the training's input
options gives the same predictions, a contradicting option is one line and exit status 2, and a model file
without a record (UER-py's) still needs its options, as before."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT, run_script, subprocess_env

pytestmark = pytest.mark.slow

TEXTS = ["这本书很好看", "酒店的服务太差了", "我很喜欢这个故事", "房间又小又脏", "作者写得真好", "再也不来了",
         "推荐大家去读", "价格贵质量差"]
# Non-default input options: shorter inputs, no closing [SEP], mean pooling, a small config.
TRAINING_OPTIONS = ["--config_path", "models/bert/tiny_config.json", "--seq_length", "16", "--no_closing_sep",
                    "--pooling", "mean"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("meta")
    chars = sorted({c for text in TEXTS for c in text})
    (root / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *chars]) + "\n",
                                    encoding="utf-8")
    rows = [f"{i % 2}\t{TEXTS[i % len(TEXTS)]}" for i in range(32)]
    for name in ("train", "dev"):
        (root / f"{name}.tsv").write_text("label\ttext_a\n" + "\n".join(rows) + "\n", encoding="utf-8")
    (root / "test.tsv").write_text("text_a\n" + "\n".join(TEXTS) + "\n", encoding="utf-8")
    run_script("run_classifier.py", "--vocab_path", str(root / "vocab.txt"), "--train_path", str(root / "train.tsv"),
               "--dev_path", str(root / "dev.tsv"), "--output_model_path", str(root / "model.bin"),
               "--epochs_num", "2", "--batch_size", "8", "--learning_rate", "1e-3", "--seed", "3", *TRAINING_OPTIONS)
    return root


def infer(root, output: str, *options: str, model: str = "model.bin") -> subprocess.CompletedProcess:
    cmd = [sys.executable, str(ROOT / "inference/run_classifier_infer.py"), "--load_model_path", str(root / model),
           "--vocab_path", str(root / "vocab.txt"), "--test_path", str(root / "test.tsv"),
           "--prediction_path", str(root / output), "--output_prob", *options]
    return subprocess.run(cmd, capture_output=True, text=True, env=subprocess_env(), cwd=ROOT, timeout=300)


def infer_here(root, output: str, *options: str) -> int:
    """The inference command in this process (the error cases: no interpreter start); its exit status."""
    from uer.cli.infer import task_main

    try:
        task_main("classifier")(["--load_model_path", str(root / "model.bin"), "--vocab_path", str(root / "vocab.txt"),
                                 "--test_path", str(root / "test.tsv"), "--prediction_path", str(root / output),
                                 *options])
    except SystemExit as stop:
        return stop.code
    return 0


def probabilities(path) -> np.ndarray:
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "label\tprob"
    return np.array([[float(v) for v in line.split("\t")[1].split()] for line in lines[1:]])


def test_the_record_holds_the_input_options(trained):
    record = json.loads((trained / "model.bin.json").read_text(encoding="utf-8"))
    options = record["options"]
    assert record["task"] == "classifier" and len(record["vocab_sha256"]) == 64
    assert (options["seq_length"], options["no_closing_sep"], options["pooling"], options["labels_num"]) == \
        (16, True, "mean", 2)
    assert (options["hidden_size"], options["layers_num"], options["heads_num"]) == (128, 2, 2)  # the tiny config


def test_inference_without_the_options_predicts_the_same(trained):
    given = infer(trained, "given.tsv", "--labels_num", "2", *TRAINING_OPTIONS)
    assert given.returncode == 0, given.stderr
    omitted = infer(trained, "omitted.tsv")  # no config, seq_length, closing [SEP], pooling or label count
    assert omitted.returncode == 0, omitted.stderr
    expected = probabilities(trained / "given.tsv")
    np.testing.assert_array_equal(probabilities(trained / "omitted.tsv"), expected)
    # the record really changed the inputs: the defaults ([CLS] text [SEP], [CLS] pooling) predict otherwise
    (trained / "model.bin.json").rename(trained / "record.json")
    try:
        other = infer(trained, "defaults.tsv", "--labels_num", "2", "--config_path", "models/bert/tiny_config.json")
        assert other.returncode == 0, other.stderr
        assert np.abs(probabilities(trained / "defaults.tsv") - expected).max() > 1e-4
        # a file without a record (UER-py's) needs its options, as before
        assert infer_here(trained, "bare.tsv", "--config_path", "models/bert/tiny_config.json") == 2
    finally:
        (trained / "record.json").rename(trained / "model.bin.json")


@pytest.mark.parametrize("options, needle", [
    (["--seq_length", "64"], "--seq_length 64 contradicts the model, which was trained with --seq_length 16"),
    (["--pooling", "first"], "--pooling first contradicts the model, which was trained with --pooling mean"),
    (["--config_path", "models/bert/mini_config.json"],
     "(from --config_path models/bert/mini_config.json) contradicts the model"),
])
def test_a_contradicting_option_is_one_line_and_exit_status_2(trained, options, needle, capsys):
    assert infer_here(trained, "bad.tsv", *options) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0] and "model.bin.json" in lines[0], lines
    assert not (trained / "bad.tsv").exists()


def test_the_python_api_reads_the_record(trained):
    from uer.api import TextEncoder
    from uer.errors import UsageError

    encoder = TextEncoder.from_pretrained(str(trained / "model.bin"), vocab_path=str(trained / "vocab.txt"),
                                          device="cpu")
    assert (encoder.seq_length, encoder.closing_sep, encoder.cfg.hidden_size) == (16, False, 128)
    ids = encoder.encode(["这本书很好看"]).tokens.tolist()
    vocab = encoder.tokenizer.vocab
    assert ids[0] == vocab.cls_id and vocab.sep_id not in ids and len(ids) == 7  # [CLS] + 6 characters, no [SEP]
    with pytest.raises(UsageError, match="seq_length=64 contradicts the model"):
        TextEncoder.from_pretrained(str(trained / "model.bin"), vocab_path=str(trained / "vocab.txt"),
                                    device="cpu", seq_length=64)
