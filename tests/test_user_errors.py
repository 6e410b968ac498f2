"""Issue 12's data-loss, misread-input and misleading-message cases (1, 2, 3, 6, 8, 11, 12, 16), the error
convention's Ctrl-C / debug / bug behaviour, and the one atomic writer (issue 9 items 6 and 7).

Each test makes the bad input or the fault, runs the real entry script (in this process, as ``__main__``)
and checks the message, the exit status and the files.
"""
from __future__ import annotations

import errno
import os
import shutil
import stat
from pathlib import Path

import numpy as np
import pytest
import torch

from errors_workspace import (BAD_BYTES, MICRO, ROOT, VOCAB, assert_one_line_error, classifier_args, error_ws,  # noqa: F401
                              infer_args, labelled_rows, leftovers, run_entry, tsv)
from conftest import free_port
from uer.data.dataset import PretrainDataset
from uer.errors import DataError
from uer.finetune.loop import FineTuner


def copy(src: Path, dst: Path) -> Path:
    shutil.copyfile(src, dst)
    return dst


@pytest.fixture
def no_training(monkeypatch):
    """Fails the test if fine-tuning starts: the error must come before it."""
    def fit(self, *args, **kwargs):
        raise AssertionError("training started before the input was checked")

    monkeypatch.setattr(FineTuner, "fit", fit)


def run(capsys, script: str, *args) -> tuple[int, str, str]:
    capsys.readouterr()
    code = run_entry(script, *args)
    out = capsys.readouterr()
    return code, out.out, out.err


# ------------------------------------------------------------------------------------------------ case 1

def test_case1_output_equal_to_an_input_is_refused_before_writing(error_ws, tmp_path, capsys) -> None:
    ws = error_ws
    corpus = copy(ws["corpus.txt"], tmp_path / "corpus.txt")
    test = copy(ws["test.tsv"], tmp_path / "test.tsv")
    prompts = copy(ws["prompts.txt"], tmp_path / "prompts.txt")
    model = copy(ws["classifier.bin"], tmp_path / "model.bin")
    (tmp_path / "link.tsv").symlink_to(test)  # another name for the same file
    before = {p: p.read_bytes() for p in (corpus, test, prompts, model)}
    runs = [
        ("preprocess.py", ["--corpus_path", corpus, "--vocab_path", ws["vocab.txt"], "--dataset_path", corpus,
                           "--target", "bert"], "--dataset_path is the same file as --corpus_path"),
        ("inference/run_classifier_infer.py", infer_args(ws, tmp_path / "link.tsv", test=test),
         "--prediction_path is the same file as --test_path"),
        ("scripts/generate.py", ["--load_model_path", ws["lm.bin"], "--vocab_path", ws["vocab.txt"], "--input_path",
                                 prompts, "--output_path", prompts, "--config_path", ws["config.json"], "--encoder", "gpt"],
         "--output_path is the same file as --input_path"),
        ("scripts/convert_uer_legacy_to_current.py", ["--input_model_path", model, "--output_model_path", model],
         "--output_model_path is the same file as --input_model_path"),
        ("run_classifier.py", classifier_args(ws, model) + ["--pretrained_model_path", model],
         "--output_model_path is the same file as --pretrained_model_path"),
        ("scripts/build_vocab.py", ["--corpus_path", corpus, "--vocab_path", corpus],
         "--vocab_path is the same file as --corpus_path"),
    ]
    for script, args, message in runs:
        code, _, err = run(capsys, script, *args)
        assert_one_line_error(code, err, script, message)
    assert {p: p.read_bytes() for p in before} == before
    assert leftovers(tmp_path) == []


# ------------------------------------------------------------------------------------------------ case 2

def generate_args(ws: dict, prompts: Path, output: Path) -> list:
    return ["--load_model_path", ws["lm.bin"], "--vocab_path", ws["vocab.txt"], "--input_path", prompts,
            "--output_path", output, "--config_path", ws["config.json"], "--encoder", "gpt", "--seq_length", "12",
            "--top_k", "1"]


def test_case2_generate_keeps_the_old_output_until_the_new_one_is_complete(error_ws, tmp_path, capsys) -> None:
    ws = error_ws
    output = tmp_path / "story_full.txt"
    output.write_text("the previous run's stories\n", encoding="utf-8")
    code, _, err = run(capsys, "scripts/generate.py", *generate_args(ws, ws["nonutf8_prompts.txt"], output))
    assert_one_line_error(code, err, "generate.py", f"{ws['nonutf8_prompts.txt']}:2", "invalid UTF-8")
    assert output.read_text(encoding="utf-8") == "the previous run's stories\n"  # was emptied before reading
    old_umask = os.umask(0o022)
    try:
        code, _, err = run(capsys, "scripts/generate.py", *generate_args(ws, ws["prompts.txt"], output))
    finally:
        os.umask(old_umask)
    assert code == 0, err
    lines = output.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 2 and lines[0].startswith("这本") and lines[1].startswith("好书"), lines
    assert stat.S_IMODE(output.stat().st_mode) == 0o644
    assert leftovers(tmp_path) == []


# ------------------------------------------------------------------------------------------------ case 3

@pytest.mark.parametrize("bad_line,needle", [
    (b"1\tx\t" + "好书".encode() + b"\n", "label 'x' is not an integer"),
    (b"1\t5\t" + "好书".encode() + b"\n", "label 5 is not below the number of labels 2"),
    (b"1\t1\t" + BAD_BYTES + b"\n", "invalid UTF-8 at byte offset"),
], ids=["label_not_an_integer", "label_out_of_range", "invalid_utf8"])  # plain node ids (no escapes, quotes)
def test_case3_test_file_is_checked_before_training(error_ws, tmp_path, capsys, no_training, bad_line, needle) -> None:
    ws = error_ws
    test = tmp_path / "test.tsv"
    test.write_bytes(ws["test.tsv"].read_bytes() + bad_line)  # line 14 (blank lines are refused: issue 23)
    model = tmp_path / "finetuned_model.bin"
    model.write_bytes(b"the model of an earlier run")
    code, _, err = run(capsys, "run_classifier.py", *classifier_args(ws, model, test_path=test))
    assert_one_line_error(code, err, "run_classifier.py", f"{test}:14", needle)
    assert model.read_bytes() == b"the model of an earlier run"
    assert leftovers(tmp_path) == []


# ------------------------------------------------------------------------------------------------ case 6

def test_case6_pairs_and_stray_tabs_are_errors_naming_file_and_line(error_ws, tmp_path, capsys, no_training) -> None:
    ws = error_ws
    pairs = [[q, label, text, text[::-1]] for q, label, text in labelled_rows()]
    train = tmp_path / "train.tsv"
    train.write_text(tsv(pairs, ["qid", "label", "text_a", "text_b"]), encoding="utf-8")
    model = tmp_path / "model.bin"
    for script in ("run_classifier.py", "run_dbqa.py"):
        code, _, err = run(capsys, script, *classifier_args(ws, model, train_path=train))  # dev.tsv: no text_b
        assert_one_line_error(code, err, script, f"{ws['dev.tsv']}:1", "no 'text_b' column", str(train))
    stray = tmp_path / "stray.tsv"
    rows = labelled_rows(4)
    rows[1][2] = rows[1][2] + "\t后半句"  # a tab inside the text of file line 3
    stray.write_text(tsv(rows, ["qid", "label", "text_a"]), encoding="utf-8")
    code, _, err = run(capsys, "run_classifier.py", *classifier_args(ws, model, train_path=stray))
    assert_one_line_error(code, err, "run_classifier.py", f"{stray}:3", "4 fields, but the header has 3")
    assert not model.exists()


# ------------------------------------------------------------------------------------------------ case 8

def test_case8_invalid_utf8_in_a_later_worker_names_line_and_offset(error_ws, tmp_path, capsys) -> None:
    """The bad byte lies in the second worker's byte range: the line is still the file's line."""
    ws = error_ws
    corpus = tmp_path / "corpus.txt"
    good = ws["corpus.txt"].read_bytes()
    corpus.write_bytes(good * 3 + b"\n" + BAD_BYTES + b"\n")
    line = (good * 3).count(b"\n") + 2
    code, _, err = run(capsys, "preprocess.py", "--corpus_path", corpus, "--vocab_path", ws["vocab.txt"],
                       "--dataset_path", tmp_path / "dataset.pt", "--target", "bert", "--seq_length", "16",
                       "--processes_num", "2")
    assert_one_line_error(code, err, "preprocess.py", f"{corpus}:{line}", f"byte offset {len(good) * 3 + 1}")
    assert not (tmp_path / "dataset.pt").exists() and leftovers(tmp_path) == []


def test_case8_replacement_is_a_choice_and_is_counted(error_ws, tmp_path, capsys) -> None:
    ws = error_ws
    code, out, err = run(capsys, "preprocess.py", "--corpus_path", ws["nonutf8_corpus.txt"], "--vocab_path",
                         ws["vocab.txt"], "--dataset_path", tmp_path / "dataset.pt", "--target", "bert",
                         "--seq_length", "16", "--replace_invalid_utf8")
    assert code == 0, err
    assert (f"{ws['nonutf8_corpus.txt']}: 1 line(s) with bytes that are not UTF-8 were read with U+FFFD "
            "(--replace_invalid_utf8), the first at line 13") in out
    assert len(PretrainDataset.open(tmp_path / "dataset.pt")) > 0


# ------------------------------------------------------------------------------------------------ case 11

BOM = b"\xef\xbb\xbf"


def test_case11_a_byte_order_mark_is_skipped(error_ws, tmp_path, capsys) -> None:
    ws = error_ws
    datasets = []
    for name, prefix in (("plain", b""), ("bom", BOM)):
        corpus = tmp_path / f"{name}.txt"
        corpus.write_bytes(prefix + ws["corpus.txt"].read_bytes())
        code, _, err = run(capsys, "preprocess.py", "--corpus_path", corpus, "--vocab_path", ws["vocab.txt"],
                           "--dataset_path", tmp_path / f"{name}.pt", "--target", "bert", "--seq_length", "16",
                           "--dup_factor", "1")
        assert code == 0, err
        datasets.append(PretrainDataset.open(tmp_path / f"{name}.pt"))
    for array in datasets[0].arrays:
        assert np.array_equal(datasets[0].arrays[array], datasets[1].arrays[array]), array
    # An Excel-exported TSV: "\ufefflabel" used to be reported as a missing 'label' column.
    plain_files, bom_files = {}, {}
    for name in ("train.tsv", "dev.tsv", "test.tsv"):
        text = tsv([[label, text] for _, label, text in labelled_rows()], ["label", "text_a"]).encode("utf-8")
        plain_files[name], bom_files[name] = tmp_path / f"plain_{name}", tmp_path / f"bom_{name}"
        plain_files[name].write_bytes(text)
        bom_files[name].write_bytes(BOM + text)
    code, _, err = run(capsys, "run_classifier.py", *classifier_args(
        ws, tmp_path / "bom.bin", train_path=bom_files["train.tsv"], dev_path=bom_files["dev.tsv"],
        test_path=bom_files["test.tsv"]))
    assert code == 0, err
    predictions = []
    for test in (plain_files["test.tsv"], bom_files["test.tsv"]):
        out = tmp_path / f"pred_{len(predictions)}.tsv"
        code, _, err = run(capsys, "inference/run_classifier_infer.py", *infer_args(ws, out, test=test),
                           "--output_logits")
        assert code == 0, err
        predictions.append(out.read_text(encoding="utf-8"))
    assert predictions[0] == predictions[1] and len(predictions[0].splitlines()) == 13


# ------------------------------------------------------------------------------------------------ case 12

def test_case12_messages_name_the_real_cause(error_ws, tmp_path, capsys) -> None:
    ws = error_ws
    out = tmp_path / "prediction.tsv"
    code, _, err = run(capsys, "inference/run_classifier_infer.py", *infer_args(ws, out, model=ws["random.bin"]))
    line = assert_one_line_error(code, err, "run_classifier_infer.py", str(ws["random.bin"]), "not a model file")
    assert "weights_only" not in line and "pickle" not in line
    # A model file without its record (UER-py's, or copied alone): the weights' shapes name the cause. (With the
    # record, uer.model_meta names the contradicting option first: tests/test_model_meta.py.)
    plain = tmp_path / "plain_classifier.bin"
    shutil.copyfile(ws["classifier.bin"], plain)
    # Hidden size 16 in the file, 32 in the config: the config is to blame, not the vocabulary.
    bigger = tmp_path / "h32.json"
    bigger.write_text(__import__("json").dumps({**MICRO, "hidden_size": 32, "emb_size": 32}), encoding="utf-8")
    code, _, err = run(capsys, "inference/run_classifier_infer.py", *infer_args(ws, out, model=plain), "--config_path",
                       bigger)
    line = assert_one_line_error(code, err, "run_classifier_infer.py", str(plain), "--config_path",
                                 "(13, 16)", "(13, 32)")
    assert "vocabulary" not in line
    # One token more in the vocabulary: now the vocabulary is the cause.
    vocab = tmp_path / "vocab14.txt"
    vocab.write_text("\n".join(VOCAB + ["新"]) + "\n", encoding="utf-8")
    code, _, err = run(capsys, "inference/run_classifier_infer.py", *infer_args(ws, out, model=plain), "--vocab_path",
                       vocab)
    assert_one_line_error(code, err, "run_classifier_infer.py", "a different vocabulary (13 tokens in the file, 14")
    # A 2-label model asked for 3 labels: --labels_num is to blame, not --config_path.
    code, _, err = run(capsys, "inference/run_classifier_infer.py", *infer_args(ws, out, model=plain), "--labels_num",
                       "3")
    line = assert_one_line_error(code, err, "run_classifier_infer.py", "fine-tuned with 2 labels", "--labels_num 2")
    assert "--config_path" not in line
    assert not out.exists()


def test_case12_label_errors_name_the_file_line(error_ws, tmp_path, capsys, no_training) -> None:
    ws = error_ws
    dev = tmp_path / "dev.tsv"
    dev.write_text("qid\tlabel\ttext_a\n0\t1\t好书\n1\t0\t坏书\n2\tpositive\t好书\n", encoding="utf-8")
    code, _, err = run(capsys, "run_classifier.py", *classifier_args(ws, tmp_path / "m.bin", dev_path=dev))
    line = assert_one_line_error(code, err, "run_classifier.py", f"{dev}:4", "label 'positive' is not an integer")
    assert "row" not in line


# ------------------------------------------------------------------------------------------------ case 16

def test_case16_output_problems_are_found_before_the_work(error_ws, tmp_path, capsys, monkeypatch, no_training) -> None:
    ws = error_ws
    folder = tmp_path / "dataset.pt"
    folder.mkdir()
    code, out, err = run(capsys, "preprocess.py", "--corpus_path", ws["corpus.txt"], "--vocab_path", ws["vocab.txt"],
                         "--dataset_path", folder, "--target", "bert", "--seq_length", "16")
    assert_one_line_error(code, err, "preprocess.py", str(folder), "--dataset_path is a directory")
    assert "Building" not in out  # refused before the workers ran
    missing = tmp_path / "no_such_folder" / "model.bin"
    code, _, err = run(capsys, "run_classifier.py", *classifier_args(ws, missing))
    assert_one_line_error(code, err, "run_classifier.py", "the folder", "no_such_folder", "does not exist")
    assert not missing.parent.exists()
    # A full disk while the predictions are written: one line, the previous file intact, no temp file left.
    prediction = tmp_path / "prediction.tsv"
    prediction.write_text("label\n1\n", encoding="utf-8")

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    code, _, err = run(capsys, "inference/run_classifier_infer.py", *infer_args(ws, prediction))
    assert_one_line_error(code, err, "run_classifier_infer.py", str(prediction), "no space left on the device")
    assert prediction.read_text(encoding="utf-8") == "label\n1\n"
    assert leftovers(tmp_path) == []


# --------------------------------------------------------------------------------- the convention itself

def test_ctrl_c_ends_in_one_line_naming_what_was_saved(error_ws, tmp_path, capsys, monkeypatch) -> None:
    from uer.training.pretrain_loop import Trainer

    def interrupted(self, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(FineTuner, "fit", interrupted)
    code, _, err = run(capsys, "run_classifier.py", *classifier_args(error_ws, tmp_path / "m.bin"))
    assert code == 130 and err.strip() == "run_classifier.py: interrupted; no output was written", err

    def saved_then_interrupted(self):
        self.save_checkpoint()
        raise KeyboardInterrupt

    monkeypatch.setattr(Trainer, "fit", saved_then_interrupted)
    output = tmp_path / "pretrained.bin"
    code, _, err = run(capsys, "pretrain.py", "--dataset_path", error_ws["dataset.pt"], "--vocab_path",
                       error_ws["vocab.txt"], "--config_path", error_ws["config.json"], "--output_model_path", output,
                       "--total_steps", "1", "--batch_size", "2")
    assert code == 130, err
    assert err.strip() == f"pretrain.py: interrupted; 2 files written before that, the last {output}-0.trainer", err
    assert (tmp_path / "pretrained.bin-0").is_file() and leftovers(tmp_path) == []


def test_bugs_and_debug_mode_keep_the_traceback(error_ws, tmp_path, capsys, monkeypatch) -> None:
    args = classifier_args(error_ws, tmp_path / "m.bin", dev_path=error_ws["notext.tsv"])
    monkeypatch.setenv("UER_DEBUG", "1")
    with pytest.raises(DataError, match="text_a"):
        run_entry("run_classifier.py", *args)
    monkeypatch.delenv("UER_DEBUG")

    def bug(*a, **k):
        raise ZeroDivisionError("a real bug")

    monkeypatch.setattr(FineTuner, "fit", bug)
    with pytest.raises(ZeroDivisionError):
        run_entry("run_classifier.py", *classifier_args(error_ws, tmp_path / "m.bin"))


@pytest.mark.slow
@pytest.mark.distributed
def test_a_user_error_in_spawned_ranks_ends_in_one_line(error_ws, tmp_path, capsys) -> None:
    model = tmp_path / "m.bin"
    code, _, err = run(capsys, "run_classifier.py", *classifier_args(error_ws, model, dev_path=error_ws["nonutf8.tsv"]),
                       "--world_size", "2", "--gpu_ranks", "0", "1", "--backend", "gloo",
                       # its own port and a short rendezvous bound: never --master_ip's default 12345, which another
                       # run on the machine may hold (the ranks then waited the default 300 s for each other)
                       "--master_ip", f"tcp://127.0.0.1:{free_port()}", "--dist_timeout", "60")
    assert_one_line_error(code, err, "run_classifier.py", f"{error_ws['nonutf8.tsv']}:6", "invalid UTF-8", "(rank ")
    assert not model.exists() and leftovers(tmp_path) == []


# ------------------------------------------------------------------------------------- the atomic writer

def test_atomic_writes_follow_the_umask_and_leave_nothing_on_failure(tmp_path) -> None:
    from uer.model_saver import save_state_dict
    from uer.text.vocab import Vocab
    from uer.utils.io import atomic_write

    state = {"w": torch.ones(2)}
    for umask, mode in ((0o022, 0o644), (0o002, 0o664), (0o077, 0o600)):
        old = os.umask(umask)
        try:
            save_state_dict(state, tmp_path / f"m{umask}.bin")
            save_state_dict(state, tmp_path / f"m{umask}.safetensors")
            Vocab.from_tokens(VOCAB).save(tmp_path / f"v{umask}.txt")
        finally:
            os.umask(old)
        for name in (f"m{umask}.bin", f"m{umask}.safetensors", f"v{umask}.txt"):
            assert stat.S_IMODE((tmp_path / name).stat().st_mode) == mode, (name, oct(umask))
    target = tmp_path / "m18.bin"
    before = target.read_bytes()

    def half_then_crash(tmp: str) -> None:
        Path(tmp).write_bytes(b"half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(target, half_then_crash)
    assert target.read_bytes() == before and leftovers(tmp_path) == []


def test_one_atomic_writer_no_copies() -> None:
    """Only uer/utils/io.py renames files into place or makes temp files (the writers used to be copied)."""
    offenders = []
    for path in [*ROOT.glob("uer/**/*.py"), *ROOT.glob("scripts/*.py"), *ROOT.glob("*.py"), *ROOT.glob("inference/*.py")]:
        if path == ROOT / "uer/utils/io.py":
            continue
        text = path.read_text(encoding="utf-8")
        offenders += [f"{path.relative_to(ROOT)}: {word}" for word in ("os.replace(", "os.rename(", "mkstemp(")
                      if word in text]
    assert offenders == []
