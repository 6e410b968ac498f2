"""Issue 23 (reliability, round two): each case makes the faulty input or fault and runs the real entry point
(in this process, as ``python3 SCRIPT`` would; a subprocess only where a resource limit is needed). The
classes are enforced in one place each: outputs (uer/utils/io.py), non-finite values (uer/model_loader.py,
uer/model_saver.py, uer/training/engine.py), TSV and label syntax (uer/data/finetune_data.py), vocabularies
(uer/text/vocab.py), config ranges (uer/model_config.py); numeric options: tests/test_option_ranges.py."""
from __future__ import annotations

import argparse
import json
import os
import resource
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import torch

from conftest import subprocess_env
from errors_workspace import (MICRO, ROOT, assert_one_line_error, classifier_args, error_ws, infer_args,  # noqa: F401
                              leftovers, run_entry)


def one_line(capsys, script: str, *args, needles=()) -> str:
    capsys.readouterr()
    code = run_entry(script, *args)
    return assert_one_line_error(code, capsys.readouterr().err, script, *needles)


def pretrain_args(ws: dict, out: Path, *extra) -> list:
    return ["--dataset_path", ws["dataset.pt"], "--vocab_path", ws["vocab.txt"], "--config_path", ws["config.json"],
            "--output_model_path", out, "--total_steps", "2", "--save_checkpoint_steps", "2", "--batch_size", "2",
            "--report_steps", "1", "--learning_rate", "1e-3", *extra]


def nan_copy(source: Path, target: Path) -> Path:
    state = torch.load(source, weights_only=True)
    key = next(k for k in state if k.startswith("encoder."))
    state[key] = state[key].clone()
    state[key].view(-1)[0] = float("nan")
    torch.save(state, target)
    return target


# ------------------------------------------------------------------------------------------------------
# 1. outputs that are devices, pipes, symlinks, or standard output

def test_device_output_stays_a_device_and_training_goes_on(error_ws, tmp_path, capsys) -> None:
    code = run_entry("run_classifier.py", *classifier_args(error_ws, Path(os.devnull)))
    assert code == 0, capsys.readouterr().err
    assert stat.S_ISCHR(os.stat(os.devnull).st_mode)  # was replaced by a 12 MB regular file
    assert "Acc." in capsys.readouterr().out  # the test set was evaluated with the best model (kept in memory)


def test_predictions_to_stdout_symlink_and_pipe(error_ws, tmp_path, capsys) -> None:
    capsys.readouterr()
    assert run_entry("inference/run_classifier_infer.py", *infer_args(error_ws, "-")) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == "label" and len(printed) == 13, printed  # header + one row per test row
    target = tmp_path / "real.tsv"
    target.write_text("old\n")
    link = tmp_path / "link.tsv"
    link.symlink_to(target)
    assert run_entry("inference/run_classifier_infer.py", *infer_args(error_ws, link)) == 0
    assert link.is_symlink() and target.read_text().splitlines() == printed
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    got: list[str] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_text()))
    reader.start()
    assert run_entry("inference/run_classifier_infer.py", *infer_args(error_ws, fifo)) == 0
    reader.join(30)
    assert got[0].splitlines() == printed and stat.S_ISFIFO(os.stat(fifo).st_mode)
    assert leftovers(tmp_path) == []


# ------------------------------------------------------------------------------------------------------
# 2-4. every output of a run against every input: checkpoint names, the log, TensorBoard

def test_checkpoint_name_of_an_input_is_refused(error_ws, tmp_path, capsys) -> None:
    ws = error_ws
    model = tmp_path / "m.bin-2"
    model.write_bytes(ws["lm.bin"].read_bytes())
    before = model.read_bytes()
    one_line(capsys, "pretrain.py", *pretrain_args(ws, tmp_path / "m.bin", "--pretrained_model_path", model),
             needles=("--pretrained_model_path", "checkpoint of --output_model_path"))
    assert model.read_bytes() == before
    dataset = tmp_path / "out.bin-2"
    dataset.write_bytes(ws["dataset.pt"].read_bytes())
    one_line(capsys, "pretrain.py", *pretrain_args(ws, tmp_path / "out.bin"), "--dataset_path", dataset,
             needles=("--dataset_path", "checkpoint of --output_model_path"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.bin-2", "out.bin-2"]


def test_log_and_tensorboard_paths_are_outputs(error_ws, tmp_path, capsys) -> None:
    train = tmp_path / "train.tsv"
    train.write_bytes(error_ws["train.tsv"].read_bytes())
    args = classifier_args(error_ws, tmp_path / "m.bin", train_path=train)
    one_line(capsys, "run_classifier.py", *args, "--log_path", train, needles=("--log_path", "--train_path"))
    assert train.read_bytes() == error_ws["train.tsv"].read_bytes()
    one_line(capsys, "run_classifier.py", *args, "--tensorboard_dir", train, needles=("--tensorboard_dir",))
    one_line(capsys, "inference/run_classifier_infer.py", *infer_args(error_ws, tmp_path / "p.tsv"), "--log_path",
             error_ws["test.tsv"], needles=("--log_path", "--test_path"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["train.tsv"]


# ------------------------------------------------------------------------------------------------------
# 5. resuming: pruning removes only this run's files; later checkpoints are never overwritten

@pytest.mark.slow
def test_resume_prunes_only_its_own_files(error_ws, tmp_path, capsys) -> None:
    out = tmp_path / "m.bin"
    assert run_entry("pretrain.py", *pretrain_args(error_ws, out, "--total_steps", "4", "--keep_trainer_state",
                                                    "all")) == 0
    first_run = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert sorted(first_run) == ["m.bin-2", "m.bin-2.trainer", "m.bin-4", "m.bin-4.trainer"]
    # resuming from an earlier checkpoint would overwrite m.bin-4: refused before any work
    one_line(capsys, "pretrain.py", *pretrain_args(error_ws, out, "--total_steps", "4", "--resume_from",
                                                    f"{out}-2"), needles=("m.bin-4", "would overwrite it"))
    assert run_entry("pretrain.py", *pretrain_args(error_ws, out, "--total_steps", "8", "--resume_from",
                                                    f"{out}-4")) == 0
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["m.bin-2", "m.bin-2.trainer", "m.bin-4", "m.bin-4.trainer", "m.bin-6", "m.bin-8",
                     "m.bin-8.trainer"], names  # the earlier run's sidecars stay; this run's m.bin-6.trainer went
    assert all((tmp_path / name).read_bytes() == data for name, data in first_run.items())


def test_malicious_trainer_sidecar_is_one_line(error_ws, tmp_path, capsys) -> None:
    assert run_entry("pretrain.py", *pretrain_args(error_ws, tmp_path / "m.bin")) == 0
    checkpoint = tmp_path / "m.bin-2"
    torch.save({"step": 2, "payload": argparse.Namespace(x=1)}, f"{checkpoint}.trainer")  # a pickled object
    one_line(capsys, "pretrain.py", *pretrain_args(error_ws, tmp_path / "m.bin", "--total_steps", "4",
                                                    "--resume_from", checkpoint),
             needles=("m.bin-2.trainer", "refused", "Unsupported global"))


# ------------------------------------------------------------------------------------------------------
# 6. a full disk or a file-size limit: one line, the old file intact, no temp file

def _limited(script: str, *args, limit: int) -> subprocess.CompletedProcess:
    def set_limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return subprocess.run([sys.executable, str(ROOT / script), *map(str, args)], capture_output=True, text=True,
                          env=subprocess_env(), preexec_fn=set_limit, timeout=300)


@pytest.mark.slow
@pytest.mark.parametrize("script", ["run_classifier.py", "preprocess.py"])
def test_file_size_limit_is_one_line(error_ws, tmp_path, script: str) -> None:
    if script == "preprocess.py":
        target = tmp_path / "dataset.pt"
        args = ["--corpus_path", error_ws["corpus.txt"], "--vocab_path", error_ws["vocab.txt"], "--dataset_path",
                target, "--target", "bert", "--seq_length", "16", "--dup_factor", "50"]
    else:
        target = tmp_path / "model.bin"
        args = [*classifier_args(error_ws, target), "--test_path", error_ws["dev.tsv"]]
    target.write_bytes(b"the previous file")
    done = _limited(script, *args, limit=2048)
    lines = [line for line in done.stderr.splitlines() if line.strip() and ": error: " in line]
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr[-3000:]
    assert len(lines) == 1 and "file-size limit" in lines[0], done.stderr[-3000:]
    # (preprocess.py's workers hit the limit in their shard files, .dataset.pt.shard-I-PID beside the dataset)
    assert str(target) in lines[0] or f"{tmp_path}/.dataset.pt.shard-" in lines[0], lines[0]
    assert target.read_bytes() == b"the previous file" and leftovers(tmp_path) == []


# ------------------------------------------------------------------------------------------------------
# 9. non-finite weights and losses

def test_nan_weights_are_refused_everywhere(error_ws, tmp_path, capsys) -> None:
    bad = nan_copy(error_ws["classifier.bin"], tmp_path / "nan.bin")
    needles = (str(bad), "NaN or infinite")
    one_line(capsys, "run_classifier.py", *classifier_args(error_ws, tmp_path / "o.bin"), "--pretrained_model_path",
             bad, needles=needles)
    one_line(capsys, "inference/run_classifier_infer.py", *infer_args(error_ws, tmp_path / "p.tsv", model=bad),
             needles=needles)
    one_line(capsys, "scripts/average_model.py", "--model_list_path", error_ws["classifier.bin"], bad,
             "--output_model_path", tmp_path / "avg.bin", needles=needles)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["nan.bin"]


@pytest.mark.parametrize("script", ["run_classifier.py", "pretrain.py"])
def test_training_stops_at_the_first_nan_loss_and_saves_nothing(error_ws, tmp_path, capsys, script: str) -> None:
    out = tmp_path / "m.bin"
    args = (classifier_args(error_ws, out) + ["--epochs_num", "3"] if script == "run_classifier.py"
            else pretrain_args(error_ws, out, "--total_steps", "6"))
    line = one_line(capsys, script, *args, "--learning_rate", "1e30", needles=("NaN or infinite at optimiser step",))
    assert "nothing from this step on was saved" in line
    assert list(tmp_path.iterdir()) == []


def test_deferred_finite_check_names_the_same_step(error_ws, tmp_path, capsys, monkeypatch) -> None:
    """The GPU way (the first bad step kept on the device, read at reports and before saves), run on the CPU."""
    import uer.training.engine

    monkeypatch.setattr(uer.training.engine, "defer_finite_check", lambda device: True)
    line = one_line(capsys, "run_classifier.py", *classifier_args(error_ws, tmp_path / "m.bin"), "--epochs_num", "3",
                    "--learning_rate", "1e30", "--report_steps", "100", needles=("at optimiser step 2 ",))
    assert "nothing from this step on was saved" in line and list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------------------------------------------
# 7, 10, 14. TSV and label syntax

@pytest.mark.parametrize("content,line,needle", [
    ("label\ttext_a\n1_0\t好\n0\t坏\n", 2, "label '1_0' is not an integer"),
    ("label\ttext_a\n0\t好\n99999999999999999999\t坏\n", 3, "is too large"),
    ("label\ttext_a\tlabel\n1\t好\t0\n", 1, "names the column 'label' twice"),
    ("label\ttext_a\n1\t好\n\n0\t坏\n", 3, "blank line"),
])
def test_label_and_header_syntax(error_ws, tmp_path, capsys, content: str, line: int, needle: str) -> None:
    train = tmp_path / "train.tsv"
    train.write_text(content, encoding="utf-8")
    one_line(capsys, "run_classifier.py", *classifier_args(error_ws, tmp_path / "m.bin", train_path=train),
             needles=(f"{train}:{line}", needle))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["train.tsv"]


def test_trailing_tab_in_the_header_is_accepted(error_ws, tmp_path, capsys) -> None:
    train = tmp_path / "train.tsv"
    train.write_text(error_ws["train.tsv"].read_text(encoding="utf-8").replace("text_a\n", "text_a\t\n", 1))
    assert run_entry("run_classifier.py", *classifier_args(error_ws, tmp_path / "m.bin", train_path=train)) == 0


def test_one_prediction_row_per_input_row(error_ws, tmp_path, capsys) -> None:
    """A one-column test file: an empty line is an empty text and gets its prediction (classifier and NER)."""
    test = tmp_path / "texts.tsv"
    test.write_text("text_a\n好书\n\n坏书\n\n", encoding="utf-8")  # the last blank line ends the file
    assert run_entry("inference/run_classifier_infer.py", *infer_args(error_ws, tmp_path / "p.tsv", test=test)) == 0
    assert len((tmp_path / "p.tsv").read_text().splitlines()) == 1 + 3
    ner = tmp_path / "ner.tsv"
    ner.write_text("text_a\n这 本\n\n好 书\n", encoding="utf-8")
    flags = ["--vocab_path", error_ws["vocab.txt"], "--config_path", error_ws["config.json"], "--label2id_path",
             error_ws["label2id.json"], "--seq_length", "16"]
    assert run_entry("run_ner.py", f"--train_path={error_ws['ner.tsv']}", f"--dev_path={error_ws['ner.tsv']}", *flags,
                     "--output_model_path", tmp_path / "ner.bin", "--epochs_num", "1", "--batch_size", "2") == 0
    # NER refuses the empty sentence, naming its line (it was dropped, shifting the later rows)
    one_line(capsys, "inference/run_ner_infer.py", "--load_model_path", tmp_path / "ner.bin", *flags, "--test_path",
             ner, "--prediction_path", tmp_path / "ner_p.tsv", needles=(f"{ner}:3", "empty text_a"))
    ner.write_text("text_a\tlabel\n这 本\tO O\n\n好 书\tO O\n", encoding="utf-8")
    one_line(capsys, "inference/run_ner_infer.py", "--load_model_path", tmp_path / "ner.bin", *flags, "--test_path",
             ner, "--prediction_path", tmp_path / "ner_p.tsv", needles=(f"{ner}:3", "blank line"))
    assert not (tmp_path / "ner_p.tsv").exists()


# ------------------------------------------------------------------------------------------------------
# 8. vocabularies

def test_duplicated_special_token_is_refused_ordinary_ones_warned(error_ws, tmp_path, capsys) -> None:
    vocab = tmp_path / "vocab.txt"
    vocab.write_text(error_ws["vocab.txt"].read_text(encoding="utf-8") + "[CLS]\n", encoding="utf-8")
    one_line(capsys, "run_classifier.py", *classifier_args(error_ws, tmp_path / "m.bin"), "--vocab_path", vocab,
             needles=("[CLS] is on line 3 and again on line 14",))
    vocab.write_text(error_ws["vocab.txt"].read_text(encoding="utf-8") + "好\n书\n", encoding="utf-8")
    capsys.readouterr()
    code = run_entry("inference/run_classifier_infer.py", *infer_args(error_ws, tmp_path / "p.tsv"), "--vocab_path",
                     vocab, "--seq_length", "8")
    out = capsys.readouterr()
    assert code == 2 and "15 tokens in --vocab_path" not in out.err  # the model has 13 rows: refused, but later
    warnings = [line for line in (out.out + out.err).splitlines() if "more than once" in line]
    assert len(warnings) == 1 and "2 tokens occur more than once" in warnings[0], warnings


# ------------------------------------------------------------------------------------------------------
# 12. config values

@pytest.mark.parametrize("change,needle", [
    ({"layernorm_eps": float("inf")}, "layernorm_eps inf"), ({"hidden_size": -16}, "hidden_size must be a positive"),
    ({"heads_num": 0}, "heads_num must be a positive"), ({"feedforward_size": 10**12}, "more than this machine"),
])
def test_config_values_out_of_range(error_ws, tmp_path, capsys, change: dict, needle: str) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({**MICRO, **change}))
    one_line(capsys, "run_classifier.py", *classifier_args(error_ws, tmp_path / "m.bin"), "--config_path", config,
             needles=(needle,))


# ------------------------------------------------------------------------------------------------------
# 11. CMRC and C3 inputs

SQUAD_CASES = [
    ({"text": "不在", "answer_start": 0}, "is not in the context"),
    ({"text": "很好", "answer_start": "x"}, "answer_start 'x' is not a character offset"),
    ({"answer_start": 3}, "needs a 'text' string"),
]


@pytest.mark.parametrize("answer,needle", SQUAD_CASES)
def test_cmrc_answers_are_checked(error_ws, tmp_path, capsys, answer: dict, needle: str) -> None:
    squad = {"data": [{"paragraphs": [{"context": "这本书很好", "qas": [
        {"id": "q1", "question": "书", "answers": [answer]}]}]}]}
    train = tmp_path / "train.json"
    train.write_text(json.dumps(squad, ensure_ascii=False), encoding="utf-8")
    one_line(capsys, "run_cmrc.py", f"--train_path={train}", f"--dev_path={error_ws['squad.json']}", "--vocab_path",
             error_ws["vocab.txt"], "--config_path", error_ws["config.json"], "--output_model_path",
             tmp_path / "m.bin", "--epochs_num", "1", "--batch_size", "2", "--seq_length", "16",
             needles=(str(train), "id q1", needle))


def test_cmrc_empty_context_and_repeated_ids(error_ws, tmp_path, capsys) -> None:
    squad = {"data": [{"paragraphs": [{"context": "", "qas": [
        {"id": "q1", "question": "书", "answers": [{"text": "好", "answer_start": 0}]}]}]}]}
    path = tmp_path / "empty.json"
    path.write_text(json.dumps(squad, ensure_ascii=False), encoding="utf-8")
    flags = ["--vocab_path", error_ws["vocab.txt"], "--config_path", error_ws["config.json"], "--seq_length", "16"]
    one_line(capsys, "run_cmrc.py", f"--train_path={path}", f"--dev_path={path}", *flags, "--output_model_path",
             tmp_path / "m.bin", "--epochs_num", "1", needles=("empty context",))
    squad = {"data": [{"paragraphs": [{"context": "这本书很好", "qas": [
        {"id": "q1", "question": "书", "answers": []}, {"id": "q1", "question": "好", "answers": []}]}]}]}
    path.write_text(json.dumps(squad, ensure_ascii=False), encoding="utf-8")
    one_line(capsys, "inference/run_cmrc_infer.py", "--load_model_path", error_ws["classifier.bin"],
             f"--test_path={path}", "--prediction_path", tmp_path / "p.json", *flags,
             needles=("id q1", "also used at"))


def test_c3_answer_given_as_two_choices(error_ws, tmp_path, capsys) -> None:
    c3 = [[["这本书很好"], [{"question": "书", "choice": ["好", "坏", "好"], "answer": "好", "id": 1}], "x"]]
    path = tmp_path / "c3.json"
    path.write_text(json.dumps(c3, ensure_ascii=False), encoding="utf-8")
    one_line(capsys, "run_c3.py", f"--train_path={path}", f"--dev_path={error_ws['c3.json']}", "--vocab_path",
             error_ws["vocab.txt"], "--config_path", error_ws["config.json"], "--output_model_path",
             tmp_path / "m.bin", "--epochs_num", "1", "--seq_length", "16",
             needles=(str(path), "choice 1 and again choice 3"))


# ------------------------------------------------------------------------------------------------------
# 14. tools

def test_build_vocab_with_nothing_to_keep_writes_nothing(error_ws, tmp_path, capsys) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    out = tmp_path / "vocab.txt"
    one_line(capsys, "scripts/build_vocab.py", "--corpus_path", empty, "--vocab_path", out,
             needles=("no token is seen", "no tokens at all"))
    one_line(capsys, "scripts/build_vocab.py", "--corpus_path", error_ws["corpus.txt"], "--vocab_path", out,
             "--min_count", "1000", needles=("--min_count 1000",))
    assert not out.exists()


def test_dynamic_vocab_adapter_refuses_an_empty_vocabulary(error_ws, tmp_path, capsys) -> None:
    empty = tmp_path / "empty_vocab.txt"
    empty.write_text("")
    one_line(capsys, "scripts/dynamic_vocab_adapter.py", "--old_model_path", error_ws["lm.bin"], "--old_vocab_path",
             error_ws["vocab.txt"], "--new_vocab_path", empty, "--new_model_path", tmp_path / "new.bin",
             needles=("--new_vocab_path", "empty"))
    assert not (tmp_path / "new.bin").exists()


# ------------------------------------------------------------------------------------------------------
# 13. --no_verify_dataset on a damaged dataset: token ids outside the vocabulary are one line

def test_out_of_range_ids_with_no_verify_dataset(error_ws, tmp_path, capsys) -> None:
    import struct

    data = bytearray(error_ws["dataset.pt"].read_bytes())
    (size,) = struct.unpack("<Q", data[8:16])
    src = json.loads(data[16:16 + size])["arrays"]["src"]
    data[src["offset"]:src["offset"] + 8] = b"\xff" * 8  # the first instance's first ids
    damaged = tmp_path / "damaged.pt"
    damaged.write_bytes(bytes(data))
    out = tmp_path / "out"
    out.mkdir()
    # one epoch within the 4 steps, the checkpoint at the last: length bucketing may put the damaged instance
    # in any batch of the epoch, and it must be found before anything is written
    one_line(capsys, "pretrain.py", *pretrain_args(error_ws, out / "m.bin", "--total_steps", "4", "--batch_size",
                                                    "64", "--save_checkpoint_steps", "4"), "--dataset_path", damaged,
             "--no_verify_dataset",
             needles=("outside the vocabulary of 13 tokens", "--no_verify_dataset"))
    assert list(out.iterdir()) == []
