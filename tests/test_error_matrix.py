"""Every entry script, given a bad config, a TSV without text_a, a non-UTF-8 file or a missing path, ends
with one line ``SCRIPT: error: FILE[:LINE]: ...`` on stderr, exit status 2, no traceback and no output file
(issue 9 item 6). The scripts run in this process (runpy, as ``__main__``): no interpreter start per case.

A new entry script must be added to MATRIX (test_every_entry_script_is_in_the_matrix fails otherwise).
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import pytest

from tools_error_cases import tool_matrix
from uer.finetune.tasks import get_task, task_names
from errors_workspace import (BAD_BYTES, ROOT, assert_one_line_error, classifier_args, error_ws, infer_args, leftovers,  # noqa: F401
                              run_entry)

Args = Callable[[dict, Path], list]
# case -> (extra options appended to the base command (the last occurrence wins), what the line must name)
Cases = dict[str, tuple[Callable[[dict], list], Callable[[dict], list]]]


def _s(path: Path) -> str:
    return str(path)


BAD_CONFIG = (lambda ws: ["--config_path", ws["bad_config.json"]], lambda ws: [f"{ws['bad_config.json']}:2", "JSON"])


def tsv_cases(option: str) -> Cases:
    return {
        "bad_config": BAD_CONFIG,
        "no_text_a": (lambda ws: [f"--{option}", ws["notext.tsv"]], lambda ws: [f"{ws['notext.tsv']}:1", "text_a"]),
        "non_utf8": (lambda ws: [f"--{option}", ws["nonutf8.tsv"]],
                     lambda ws: [f"{ws['nonutf8.tsv']}:6", "invalid UTF-8 at byte offset"]),
        "missing": (lambda ws: [f"--{option}", ws["root"] / "missing.tsv"], lambda ws: [f"{ws['root'] / 'missing.tsv'}"]),
    }


def finetune_base(ws: dict, out: Path) -> list:
    return classifier_args(ws, out / "model.bin")


def cv_base(ws: dict, out: Path) -> list:
    return [a for a in classifier_args(ws, out / "model.bin") if not a.startswith(("--dev_path", "--test_path"))] + [
        "--train_features_path", out / "features.npy", "--folds_num", "2"]


def mt_base(ws: dict, out: Path) -> list:
    return ["--dataset_path_list", ws["root"] / "task", "--vocab_path", ws["vocab.txt"], "--config_path",
            ws["config.json"], "--output_model_path", out / "model.bin", "--epochs_num", "1", "--batch_size", "4",
            "--seq_length", "16"]


MT_CASES: Cases = {
    "bad_config": BAD_CONFIG,
    "no_text_a": (lambda ws: ["--dataset_path_list", ws["root"] / "task_notext"],
                  lambda ws: [f"{ws['root'] / 'task_notext' / 'train.tsv'}:1", "text_a"]),
    "non_utf8": (lambda ws: ["--dataset_path_list", ws["root"] / "task_nonutf8"],
                 lambda ws: [f"{ws['root'] / 'task_nonutf8' / 'dev.tsv'}:6", "invalid UTF-8"]),
    "missing": (lambda ws: ["--dataset_path_list", ws["root"] / "no_task"], lambda ws: [_s(ws["root"] / "no_task")]),
}


def infer_base(ws: dict, out: Path) -> list:
    return infer_args(ws, out / "prediction.tsv")


INFER_CASES: Cases = {**tsv_cases("test_path"), "missing": (
    lambda ws: ["--load_model_path", ws["root"] / "missing.bin"], lambda ws: [_s(ws["root"] / "missing.bin"), "not found"])}


def pretrain_base(ws: dict, out: Path) -> list:
    return ["--dataset_path", ws["dataset.pt"], "--vocab_path", ws["vocab.txt"], "--config_path", ws["config.json"],
            "--output_model_path", out / "model.bin", "--total_steps", "1", "--batch_size", "2"]


PRETRAIN_CASES: Cases = {
    "bad_config": BAD_CONFIG,
    "non_utf8": (lambda ws: ["--vocab_path", ws["bad_vocab.txt"]], lambda ws: [f"{ws['bad_vocab.txt']}:7", "UTF-8"]),
    "missing": (lambda ws: ["--dataset_path", ws["root"] / "missing.pt"], lambda ws: [_s(ws["root"] / "missing.pt")]),
}


def preprocess_base(ws: dict, out: Path) -> list:
    return ["--corpus_path", ws["corpus.txt"], "--vocab_path", ws["vocab.txt"], "--dataset_path", out / "dataset.pt",
            "--target", "bert", "--seq_length", "16"]


CORPUS_CASES: Cases = {
    "non_utf8": (lambda ws: ["--corpus_path", ws["nonutf8_corpus.txt"]],
                 lambda ws: [f"{ws['nonutf8_corpus.txt']}:13", "invalid UTF-8 at byte offset"]),
    "missing": (lambda ws: ["--corpus_path", ws["root"] / "missing.txt"], lambda ws: [_s(ws["root"] / "missing.txt")]),
}


def generate_base(ws: dict, out: Path) -> list:
    return ["--load_model_path", ws["lm.bin"], "--vocab_path", ws["vocab.txt"], "--input_path", ws["prompts.txt"],
            "--output_path", out / "generated.txt", "--config_path", ws["config.json"], "--encoder", "gpt",
            "--seq_length", "12"]


GENERATE_CASES: Cases = {
    "bad_config": BAD_CONFIG,
    "non_utf8": (lambda ws: ["--input_path", ws["nonutf8_prompts.txt"]],
                 lambda ws: [f"{ws['nonutf8_prompts.txt']}:2", "invalid UTF-8"]),
    "missing": (lambda ws: ["--input_path", ws["root"] / "missing.txt"], lambda ws: [_s(ws["root"] / "missing.txt")]),
}


def build_vocab_base(ws: dict, out: Path) -> list:
    return ["--corpus_path", ws["corpus.txt"], "--vocab_path", out / "vocab.txt"]


def demo_base(ws: dict, out: Path) -> list:
    return ["--output_dir", out / "demo"]


DEMO_CASES: Cases = {"missing": (lambda ws: ["--output_dir", ws["corpus.txt"]], lambda ws: [_s(ws["corpus.txt"]), "a file"])}


def converter_base(ws: dict, out: Path) -> list:
    return ["--input_model_path", ws["classifier.bin"], "--output_model_path", out / "model.bin"]


CONVERTER_CASES: Cases = {
    "missing": (lambda ws: ["--input_model_path", ws["root"] / "missing.bin"], lambda ws: [_s(ws["root"] / "missing.bin")]),
    "not_a_model": (lambda ws: ["--input_model_path", ws["random.bin"]], lambda ws: [_s(ws["random.bin"]), "not a model file"]),
}
TO_OTHER_CASES: Cases = {
    **CONVERTER_CASES,
    "bad_config": BAD_CONFIG,
    "non_utf8": (lambda ws: ["--config_path", ws["nonutf8_config.json"]],
                 lambda ws: [f"{ws['nonutf8_config.json']}:2", "invalid UTF-8"]),
}
GOOGLE_IN_CASES: Cases = {
    "missing": (lambda ws: ["--input_model_path", ws["root"] / "missing.ckpt"], lambda ws: [_s(ws["root"] / "missing.ckpt")]),
}

def encoder_server_base(ws: dict, out: Path) -> list:
    return ["--load_model_path", ws["lm.bin"], "--vocab_path", ws["vocab.txt"], "--config_path", ws["config.json"],
            "--seq_length", "16", "--port", "0"]


def prediction_server_base(ws: dict, out: Path) -> list:
    return ["--load_model_path", ws["classifier.bin"], "--vocab_path", ws["vocab.txt"], "--config_path",
            ws["config.json"], "--labels_num", "2", "--seq_length", "16", "--port", "0"]


def export_onnx_base(ws: dict, out: Path) -> list:
    return ["--kind", "classifier", *prediction_server_base(ws, out)[:-2], "--output_path", out / "model.onnx"]


# The servers fail before they listen; the export writes nothing.
SERVING_CASES: Cases = {
    "bad_config": BAD_CONFIG,
    "non_utf8": (lambda ws: ["--vocab_path", ws["bad_vocab.txt"]], lambda ws: [f"{ws['bad_vocab.txt']}:7", "UTF-8"]),
    "missing": (lambda ws: ["--load_model_path", ws["root"] / "missing.bin"],
                lambda ws: [_s(ws["root"] / "missing.bin"), "not found"]),
}


def _task_files(ws: dict, **files) -> list:
    return [f"--{k}={ws[v] if v in ws else v}" for k, v in files.items()]


TASK_TRAINING = ["--epochs_num", "1", "--batch_size", "2", "--seq_length", "16", "--report_steps", "1000"]


def task_base(**files: str) -> Args:
    """A task script's command on the tiny files: ``files`` maps option -> workspace file name."""
    def base(ws: dict, out: Path) -> list:
        return _task_files(ws, **files) + ["--vocab_path", ws["vocab.txt"], "--config_path", ws["config.json"],
                                           "--output_model_path", out / "model.bin", *TASK_TRAINING]
    return base


def task_infer_base(**files: str) -> Args:
    def base(ws: dict, out: Path) -> list:
        return _task_files(ws, **files) + ["--load_model_path", ws["classifier.bin"], "--vocab_path", ws["vocab.txt"],
                                           "--config_path", ws["config.json"], "--prediction_path", out / "prediction",
                                           "--seq_length", "16"]
    return base


def json_cases(option: str, broken: str = "bad.json", line: int = 3) -> Cases:
    return {
        "bad_config": BAD_CONFIG,
        "bad_json": (lambda ws: [f"--{option}", ws[broken]], lambda ws: [f"{ws[broken]}:{line}", "JSON"]),
        "non_utf8": (lambda ws: [f"--{option}", ws["nonutf8_config.json"]],
                     lambda ws: [f"{ws['nonutf8_config.json']}:2", "invalid UTF-8"]),
        "missing": (lambda ws: [f"--{option}", ws["root"] / "missing.json"], lambda ws: [_s(ws["root"] / "missing.json")]),
    }


NER_FILES = {"train_path": "ner.tsv", "dev_path": "ner.tsv", "label2id_path": "label2id.json"}
NER_CASES: Cases = {**tsv_cases("train_path"),
                    "bad_tags": (lambda ws: ["--dev_path", ws["ner_badtags.tsv"]],
                                 lambda ws: [f"{ws['ner_badtags.tsv']}:3", "1 tags"]),
                    "bad_label2id": (lambda ws: ["--label2id_path", ws["bad_config.json"]],
                                     lambda ws: [f"{ws['bad_config.json']}:2", "JSON"])}
CHID_FILES = {"train_path": "chid.json", "train_answer_path": "chid_answer.json", "dev_path": "chid.json",
              "dev_answer_path": "chid_answer.json"}
CHID_CASES: Cases = {**json_cases("train_answer_path"),
                     "bad_lines": (lambda ws: ["--dev_path", ws["bad.json"]], lambda ws: [f"{ws['bad.json']}:1", "JSON"])}
PROMPT_FLAGS = lambda ws: ["--prompt_path", ws["prompts.json"], "--prompt_id", "p"]  # noqa: E731


def with_flags(base: Args, flags: Callable[[dict], list]) -> Args:
    return lambda ws, out: base(ws, out) + flags(ws)


SIAMESE_FILES = {"train_path": "pairs.tsv", "dev_path": "pairs.tsv"}


def pair_tsv_cases(option: str) -> Cases:
    """tsv_cases for files of pairs (a file without text_b fails on its header first)."""
    return tsv_cases(option) | {"non_utf8": (lambda ws: [f"--{option}", ws["nonutf8_pairs.tsv"]],
                                             lambda ws: [f"{ws['nonutf8_pairs.tsv']}:6", "invalid UTF-8 at byte offset"])}


PROMPT_CASES: Cases = {**tsv_cases("train_path"), **{f"prompt_{k}": v for k, v in json_cases("prompt_path").items()
                                                     if k != "bad_config"}}
TASKS_19B = [  # issue 19: SimCSE, Sentence-BERT, prompts
    ("run_simcse.py", task_base(train_path="train.tsv", dev_path="pairs.tsv"), tsv_cases("train_path")),
    ("run_classifier_siamese.py", task_base(**SIAMESE_FILES), pair_tsv_cases("train_path")),
    ("inference/run_classifier_siamese_infer.py",
     with_flags(task_infer_base(test_path="pairs.tsv"), lambda ws: ["--labels_num", "2"]), pair_tsv_cases("test_path")),
    ("run_classifier_prompt.py", with_flags(task_base(train_path="train.tsv", dev_path="dev.tsv"), PROMPT_FLAGS),
     PROMPT_CASES),
    ("inference/run_classifier_prompt_infer.py", with_flags(task_infer_base(test_path="test.tsv"), PROMPT_FLAGS),
     {**tsv_cases("test_path"), "prompt_bad_json": PROMPT_CASES["prompt_bad_json"]}),
    ("scripts/convert_sbert_from_huggingface_to_uer.py", converter_base, CONVERTER_CASES),
    ("scripts/convert_sbert_from_uer_to_huggingface.py", converter_base, TO_OTHER_CASES),
]
TASKS = [
    ("run_ner.py", task_base(**NER_FILES), NER_CASES),
    ("inference/run_ner_infer.py", task_infer_base(test_path="ner.tsv", label2id_path="label2id.json"),
     tsv_cases("test_path")),
    ("run_cmrc.py", task_base(train_path="squad.json", dev_path="squad.json"), json_cases("train_path")),
    ("inference/run_cmrc_infer.py", task_infer_base(test_path="squad.json"), json_cases("test_path")),
    ("run_c3.py", task_base(train_path="c3.json", dev_path="c3.json"), json_cases("dev_path")),
    ("inference/run_c3_infer.py", task_infer_base(test_path="c3.json"), json_cases("test_path")),
    ("run_chid.py", task_base(**CHID_FILES), CHID_CASES),
    ("inference/run_chid_infer.py", task_infer_base(test_path="chid.json"),
     {**json_cases("test_path", line=1),
      "non_utf8": (lambda ws: ["--test_path", ws["nonutf8_lines.json"]],
                   lambda ws: [f"{ws['nonutf8_lines.json']}:2", "invalid UTF-8"])}),
]

def glue_workspace(ws: dict) -> None:
    """A tiny HF BERT folder (random weights, the workspace's vocabulary) and MRPC-format folders, made once."""
    if "hf_bert" in ws:
        return
    import shutil

    from safetensors.torch import save_file
    from transformers import BertConfig, BertModel

    root = ws["root"]
    folder = root / "hf_bert"
    folder.mkdir()
    config = BertConfig(vocab_size=13, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=32)
    config.to_json_file(folder / "config.json")  # save_pretrained's progress bar would be on stderr
    save_file({k: v.contiguous() for k, v in BertModel(config).state_dict().items()}, folder / "model.safetensors")
    shutil.copyfile(ws["vocab.txt"], folder / "vocab.txt")
    header = "Quality\t#1 ID\t#2 ID\t#1 String\t#2 String\n"
    good = "".join(f"{i % 2}\t{i}\t{i + 100}\t{TEXT}\t{TEXT[::-1]}\n" for i, TEXT in enumerate(["这本书很好", "好书", "不好看"]))
    for name, dev in (("glue", good.encode()), ("glue_nonutf8", good.encode() + b"1\t7\t8\t" + BAD_BYTES + b"\tx\n"),
                      ("glue_badlabel", (good + "2\t7\t8\t好\t书\n").encode())):
        (root / name).mkdir()
        (root / name / "train.tsv").write_text(header + good, encoding="utf-8")
        (root / name / "dev.tsv").write_bytes(header.encode() + dev)
        ws[name] = root / name
    ws["hf_bert"] = folder


def glue_base(ws: dict, out: Path) -> list:
    glue_workspace(ws)
    return ["--model_type", "bert", "--model_name_or_path", ws["hf_bert"], "--task_name", "MRPC", "--do_train",
            "--do_eval", "--data_dir", ws["glue"], "--max_seq_length", "16", "--output_dir", out,
            "--num_train_epochs", "1"]


GLUE_CASES: Cases = {
    "missing": (lambda ws: ["--data_dir", ws["root"] / "no_glue"], lambda ws: [_s(ws["root"] / "no_glue" / "train.tsv")]),
    "non_utf8": (lambda ws: ["--data_dir", ws["glue_nonutf8"]],
                 lambda ws: [f"{ws['glue_nonutf8'] / 'dev.tsv'}:5", "invalid UTF-8"]),
    "bad_label": (lambda ws: ["--data_dir", ws["glue_badlabel"]],
                  lambda ws: [f"{ws['glue_badlabel'] / 'dev.tsv'}:5", "label '2'"]),
    "not_a_folder": (lambda ws: ["--model_name_or_path", ws["vocab.txt"]], lambda ws: [_s(ws["vocab.txt"]), "folder"]),
}


def plot_base(ws: dict, out: Path) -> list:
    return ["--input_path", ws["corpus.txt"], "--output_path", out / "plot.png"]


PLOT_CASES: Cases = {
    "missing": (lambda ws: ["--input_path", ws["root"] / "missing.log"], lambda ws: [_s(ws["root"] / "missing.log")]),
    "no_report_lines": (lambda ws: [], lambda ws: [_s(ws["corpus.txt"]), "no report lines"]),
}

def grid_base(ws: dict, out: Path) -> list:
    """run_classifier_grid.py: the lists replace --batch_size / --epochs_num."""
    args = classifier_args(ws, out / "model.bin")
    for flag in ("--batch_size", "--epochs_num"):
        i = args.index(flag)
        del args[i:i + 2]
    return args + ["--batch_size_list", "4", "--learning_rate_list", "1e-3", "--epochs_num_list", "1",
                   "--keep_best_model"]


def regression_infer_base(ws: dict, out: Path) -> list:
    args = infer_args(ws, out / "prediction.tsv")
    i = args.index("--labels_num")
    return args[:i] + args[i + 2:]


BAD_LABEL_CASE = {"bad_label": (lambda ws: ["--train_path", ws["badlabels.tsv"]],
                                lambda ws: [f"{ws['badlabels.tsv']}:3", "label '0;x'"])}
FINETUNE_CASES = tsv_cases("train_path") | {"non_utf8": tsv_cases("dev_path")["non_utf8"]}
FINETUNE = [(script, finetune_base, FINETUNE_CASES) for script in ("run_classifier.py", "run_dbqa.py")] + [
    (script, finetune_base, FINETUNE_CASES | BAD_LABEL_CASE)
    for script in ("run_regression.py", "run_classifier_multi_label.py")] + [
    ("run_classifier_grid.py", grid_base, FINETUNE_CASES),
    ("inference/run_regression_infer.py", regression_infer_base, INFER_CASES),
    ("inference/run_classifier_multi_label_infer.py", infer_base, INFER_CASES)]
MATRIX: list[tuple[str, Args, Cases]] = FINETUNE + TASKS + [
    ("run_classifier_cv.py", cv_base, tsv_cases("train_path")),
    ("run_classifier_mt.py", mt_base, MT_CASES),
    ("run_mt_classifier.py", mt_base, MT_CASES),
    ("inference/run_classifier_infer.py", infer_base, INFER_CASES),
    ("pretrain.py", pretrain_base, PRETRAIN_CASES),
    ("preprocess.py", preprocess_base, CORPUS_CASES),
    ("scripts/generate.py", generate_base, GENERATE_CASES),
    ("scripts/generate_lm.py", generate_base, GENERATE_CASES),
    ("scripts/build_vocab.py", build_vocab_base, CORPUS_CASES),
    ("scripts/build_demo_data.py", demo_base, DEMO_CASES),
    ("scripts/plot_training.py", plot_base, PLOT_CASES),
    ("run_glue.py", glue_base, GLUE_CASES),
    ("scripts/convert_bert_from_huggingface_to_uer.py", converter_base, CONVERTER_CASES),
    ("scripts/convert_bert_text_classification_from_huggingface_to_uer.py", converter_base, CONVERTER_CASES),
    ("scripts/convert_bert_token_classification_from_huggingface_to_uer.py", converter_base, CONVERTER_CASES),
    ("scripts/convert_gpt2_from_huggingface_to_uer.py", converter_base, CONVERTER_CASES),
    ("scripts/convert_uer_legacy_to_current.py", converter_base, CONVERTER_CASES),
    ("scripts/convert_bert_from_uer_to_huggingface.py", converter_base, TO_OTHER_CASES),
    ("scripts/convert_bert_text_classification_from_uer_to_huggingface.py", converter_base, TO_OTHER_CASES),
    ("scripts/convert_bert_token_classification_from_uer_to_huggingface.py", converter_base, TO_OTHER_CASES),
    ("scripts/convert_gpt2_from_uer_to_huggingface.py", converter_base, TO_OTHER_CASES),
    ("scripts/convert_roberta_from_huggingface_to_uer.py", converter_base, CONVERTER_CASES),
    ("scripts/convert_xlmroberta_from_huggingface_to_uer.py", converter_base, CONVERTER_CASES),
    ("scripts/convert_roberta_from_uer_to_huggingface.py", converter_base, TO_OTHER_CASES),
    ("scripts/convert_xlmroberta_from_uer_to_huggingface.py", converter_base, TO_OTHER_CASES),
    ("scripts/convert_bert_from_uer_to_google.py", converter_base, TO_OTHER_CASES),
    ("scripts/convert_bert_from_uer_to_original_tf.py", converter_base, TO_OTHER_CASES),
    ("scripts/convert_bert_extractive_qa_from_huggingface_to_uer.py", converter_base, CONVERTER_CASES),
    ("scripts/convert_bert_multiple_choice_from_huggingface_to_uer.py", converter_base, CONVERTER_CASES),
    ("scripts/convert_bert_extractive_qa_from_uer_to_huggingface.py", converter_base, TO_OTHER_CASES),
    ("scripts/convert_bert_multiple_choice_from_uer_to_huggingface.py", converter_base, TO_OTHER_CASES),
    ("scripts/convert_albert_from_huggingface_to_uer.py", converter_base, CONVERTER_CASES),
    ("scripts/convert_albert_from_uer_to_huggingface.py", converter_base, TO_OTHER_CASES),
    ("scripts/convert_bert_from_google_to_uer.py", converter_base, GOOGLE_IN_CASES),
    ("scripts/convert_bert_from_original_tf_to_uer.py", converter_base, GOOGLE_IN_CASES),
    ("scripts/encoder_server.py", encoder_server_base, SERVING_CASES),
    ("scripts/prediction_server.py", prediction_server_base, SERVING_CASES),
    ("scripts/export_onnx.py", export_onnx_base, SERVING_CASES),
] + TASKS_19B + tool_matrix(tsv_cases)  # the tool scripts (tests/tools_error_cases.py)


def entry_scripts() -> set[str]:
    """Every runnable script of the repository: top level, inference/ and scripts/."""
    found = {p.name for p in ROOT.glob("*.py")} - {"hubconf.py"}  # torch.hub's module (tests/test_hub.py), no command
    for folder in ("inference", "scripts"):
        found |= {f"{folder}/{p.name}" for p in (ROOT / folder).glob("*.py")}
    return found


def test_every_entry_script_is_in_the_matrix() -> None:
    assert entry_scripts() == {script for script, _, _ in MATRIX}


def test_every_task_command_is_in_the_matrix() -> None:
    """A registered task's UER-py script names (training, inference, their aliases) are rows of the matrix."""
    rows = {script for script, _, _ in MATRIX}
    for name in task_names():
        task = get_task(name)
        scripts = [task.train_script, *task.script_aliases] if task.train_script else []
        if task.infer_script:
            scripts += [f"inference/{s}" for s in (task.infer_script, *task.infer_script_aliases)]
        assert set(scripts) <= rows, (name, set(scripts) - rows)


# A bad dev or test file of every task that reads them ends the run with one line before any training, and an
# existing output model stays as it was. task -> (base command, bad file for that task's format, its line).
BAD_EVAL_FILES: dict[str, tuple[Args, str, int]] = {
    "classifier": (finetune_base, "nonutf8.tsv", 6),
    "regression": (finetune_base, "nonutf8.tsv", 6),
    "multi_label": (finetune_base, "nonutf8.tsv", 6),
    "classifier_grid": (grid_base, "nonutf8.tsv", 6),
    "dbqa": (finetune_base, "nonutf8.tsv", 6),
    "ner": (task_base(**NER_FILES, test_path="ner.tsv"), "nonutf8.tsv", 6),
    "mrc": (task_base(train_path="squad.json", dev_path="squad.json", test_path="squad.json"), "bad.json", 3),
    "c3": (task_base(train_path="c3.json", dev_path="c3.json", test_path="c3.json"), "bad.json", 3),
    "chid": (task_base(**CHID_FILES, test_path="chid.json", test_answer_path="chid_answer.json"), "bad.json", 1),
    "simcse": (task_base(train_path="train.tsv", dev_path="pairs.tsv", test_path="pairs.tsv"), "nonutf8_pairs.tsv", 6),
    "siamese": (task_base(**SIAMESE_FILES, test_path="pairs.tsv"), "nonutf8_pairs.tsv", 6),
    "prompt": (with_flags(task_base(train_path="train.tsv", dev_path="dev.tsv", test_path="test.tsv"), PROMPT_FLAGS),
               "nonutf8.tsv", 6),
}


def test_every_task_with_dev_and_test_files_has_a_bad_file_row() -> None:
    assert set(BAD_EVAL_FILES) == {name for name in task_names() if get_task(name).data_paths}


@pytest.mark.parametrize("option", ["test_path", "dev_path"])
@pytest.mark.parametrize("name", sorted(BAD_EVAL_FILES))
def test_bad_eval_file_fails_before_training(error_ws, tmp_path, capsys, name: str, option: str) -> None:
    base, bad, line = BAD_EVAL_FILES[name]
    out = tmp_path / "out"
    out.mkdir()
    model = out / "model.bin"
    model.write_bytes(b"the model of an earlier run")
    capsys.readouterr()
    code = run_entry(get_task(name).train_script, *base(error_ws, out), f"--{option}={error_ws[bad]}")
    captured = capsys.readouterr()
    assert_one_line_error(code, captured.err, get_task(name).train_script, f"{error_ws[bad]}:{line}")
    assert "steps" not in captured.out + captured.err, "training started before the file was read"
    assert model.read_bytes() == b"the model of an earlier run"
    assert sorted(p.name for p in out.iterdir()) == ["model.bin"]


CASES = [pytest.param(script, base, case, id=f"{Path(script).stem}-{case}")
         for script, base, cases in MATRIX for case in cases]


@pytest.mark.parametrize("script,base,case", CASES)
def test_user_mistake_ends_in_one_line(error_ws, tmp_path, capsys, script: str, base: Args, case: str) -> None:
    cases = dict(next(c for s, _, c in MATRIX if s == script))
    extra, needles = cases[case]
    out = tmp_path / "out"
    out.mkdir()
    capsys.readouterr()
    code = run_entry(script, *base(error_ws, out), *extra(error_ws))
    err = capsys.readouterr().err
    assert_one_line_error(code, err, script, *needles(error_ws))
    assert sorted(p.name for p in out.iterdir()) == [], "an output was written"
    assert leftovers(error_ws["root"]) == []
