"""The tool scripts' rows of tests/test_error_matrix.py: base command lines on the error workspace's tiny files
(tests/errors_workspace.py) and the mistakes each must report in one line. Models the workspace does not have
(an MLM model, fold models, a multi-task model, stacking features) are made here on first use.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import torch

Case = tuple  # (extra options, needles), as in test_error_matrix


def _s(path: Path) -> str:
    return str(path)


def _mlm_model(ws: dict) -> Path:
    path = ws["root"] / "mlm.bin"
    if not path.exists():
        from uer.api import load_config
        from uer.model_builder import build_model
        from uer.model_saver import save_model

        torch.manual_seed(0)
        save_model(build_model(load_config(ws["config.json"], 13)), path)
    return path


def _fold_models(ws: dict) -> Path:
    """classifier.bin as the fold models of a 2-fold run_classifier_cv.py run."""
    for fold in range(2):
        path = ws["root"] / f"classifier-fold_{fold}.bin"
        if not path.exists():
            shutil.copyfile(ws["classifier.bin"], path)
    return ws["root"] / "classifier.bin"


def _mt_model(ws: dict) -> Path:
    path = ws["root"] / "mt_classifier.bin"
    if not path.exists():
        from uer.api import load_config
        from uer.finetune.tasks.classifier_mt import MultitaskClassifier
        from uer.model_builder import build_model
        from uer.model_saver import save_model

        base = build_model(load_config(ws["config.json"], 13), with_target=False)
        save_model(MultitaskClassifier(base.embedding, base.encoder, 16, [2, 3]), path)
    return path


def _features(ws: dict) -> Path:
    """train_features_0.npy / test_features_0.npy for the 12 rows of train.tsv and test.tsv."""
    folder = ws["root"] / "stacking"
    if not folder.exists():
        folder.mkdir()
        rng = np.random.default_rng(0)
        for kind in ("train", "test"):
            p = rng.random((12, 1))
            np.save(folder / f"{kind}_features_0.npy", np.concatenate([p, 1 - p], axis=1))
    return folder


BAD_CONFIG = (lambda ws: ["--config_path", ws["bad_config.json"]], lambda ws: [f"{ws['bad_config.json']}:2", "JSON"])
MISSING_MODEL = (lambda ws: ["--load_model_path", ws["root"] / "missing.bin"], lambda ws: [_s(ws["root"] / "missing.bin")])
NOT_A_MODEL = (lambda ws: ["--load_model_path", ws["random.bin"]], lambda ws: [_s(ws["random.bin"]), "not a"])


def text_cases(option: str) -> dict[str, Case]:
    return {
        "bad_config": BAD_CONFIG,
        "non_utf8": (lambda ws: [option, ws["nonutf8_prompts.txt"]],
                     lambda ws: [f"{ws['nonutf8_prompts.txt']}:2", "invalid UTF-8"]),
        "missing": (lambda ws: [option, ws["root"] / "missing.txt"], lambda ws: [_s(ws["root"] / "missing.txt")]),
    }


def average_base(ws: dict, out: Path) -> list:
    return ["--model_list_path", ws["classifier.bin"], ws["classifier.bin"], "--output_model_path", out / "mean.bin"]


AVERAGE_CASES = {
    "missing": (lambda ws: ["--model_list_path", ws["classifier.bin"], ws["root"] / "missing.bin"],
                lambda ws: [_s(ws["root"] / "missing.bin")]),
    "not_a_model": (lambda ws: ["--model_list_path", ws["random.bin"], ws["classifier.bin"]],
                    lambda ws: [_s(ws["random.bin"]), "not a"]),
}


def check_model_base(ws: dict, out: Path) -> list:
    return ["--load_model_path", _mlm_model(ws), "--config_path", ws["config.json"], "--vocab_path", ws["vocab.txt"]]


def encoder_tool_base(ws: dict, out: Path, model: Path, output: str = "--prediction_path") -> list:
    return ["--load_model_path", model, "--vocab_path", ws["vocab.txt"], "--config_path", ws["config.json"],
            "--test_path", ws["prompts.txt"], output, out / "out.txt", "--seq_length", "16"]


def cloze_base(ws: dict, out: Path) -> list:
    return encoder_tool_base(ws, out, _mlm_model(ws))


def features_base(ws: dict, out: Path) -> list:
    return ["--load_model_path", ws["classifier.bin"], "--vocab_path", ws["vocab.txt"], "--config_path",
            ws["config.json"], "--test_path", ws["prompts.txt"], "--prediction_path", out / "features.npy",
            "--seq_length", "16"]


def embedding_base(ws: dict, out: Path) -> list:
    return ["--load_model_path", ws["classifier.bin"], "--vocab_path", ws["vocab.txt"],
            "--word_embedding_path", out / "embeddings.txt"]


EMBEDDING_CASES = {
    "missing": MISSING_MODEL,
    "non_utf8": (lambda ws: ["--vocab_path", ws["bad_vocab.txt"]], lambda ws: [f"{ws['bad_vocab.txt']}:7", "UTF-8"]),
}


def topn_indep_base(ws: dict, out: Path) -> list:
    words = ws["root"] / "target_words.txt"
    if not words.exists():
        words.write_text("书\n好\n", encoding="utf-8")
    return ["--load_model_path", ws["classifier.bin"], "--vocab_path", ws["vocab.txt"], "--target_words_path",
            words, "--prediction_path", out / "neighbours.txt"]


def topn_dep_base(ws: dict, out: Path) -> list:
    sentences = ws["root"] / "word_sentences.txt"
    if not sentences.exists():
        sentences.write_text("这本书很好\t书\n", encoding="utf-8")
    return ["--load_model_path", ws["classifier.bin"], "--vocab_path", ws["vocab.txt"], "--config_path",
            ws["config.json"], "--sent_path", sentences, "--prediction_path", out / "neighbours.txt",
            "--seq_length", "16"]


def diff_vocab_base(ws: dict, out: Path) -> list:
    return ["--vocab_1", ws["vocab.txt"], "--vocab_2", ws["vocab.txt"], "--output_path", out / "diff.tsv"]


VOCAB_CASES = {
    "missing": (lambda ws: ["--vocab_2", ws["root"] / "missing.txt"], lambda ws: [_s(ws["root"] / "missing.txt")]),
    "non_utf8": (lambda ws: ["--vocab_2", ws["bad_vocab.txt"]], lambda ws: [f"{ws['bad_vocab.txt']}:7", "UTF-8"]),
}


def adapter_base(ws: dict, out: Path) -> list:
    return ["--old_model_path", _mlm_model(ws), "--old_vocab_path", ws["vocab.txt"], "--new_vocab_path",
            ws["vocab.txt"], "--new_model_path", out / "adapted.bin"]


ADAPTER_CASES = {
    "missing": (lambda ws: ["--old_model_path", ws["root"] / "missing.bin"], lambda ws: [_s(ws["root"] / "missing.bin")]),
    "non_utf8": (lambda ws: ["--new_vocab_path", ws["bad_vocab.txt"]], lambda ws: [f"{ws['bad_vocab.txt']}:7", "UTF-8"]),
}


def segment_base(ws: dict, out: Path) -> list:
    return ["--corpus_path", ws["corpus.txt"], "--tagged", "--output_path", out / "seg.txt"]


def lgb_base(ws: dict, out: Path) -> list:
    folder = _features(ws)
    return ["--train_path", ws["train.tsv"], "--test_path", ws["test.tsv"], "--train_features_path", folder,
            "--test_features_path", folder, "--models_num", "1", "--labels_num", "2",
            "--prediction_path", out / "prediction.tsv"]


def bayesopt_base(ws: dict, out: Path) -> list:
    return ["--train_path", ws["train.tsv"], "--train_features_path", _features(ws), "--models_num", "1",
            "--labels_num", "2", "--folds_num", "2", "--epochs_num", "1", "--init_points", "1",
            "--output_params_path", out / "params.json"]


LGB_CASES = {
    "missing": (lambda ws: ["--train_features_path", ws["root"] / "no_features_"],
                lambda ws: [_s(ws["root"] / "no_features_train_features_0.npy")]),
    "non_utf8": (lambda ws: ["--train_path", ws["nonutf8.tsv"]], lambda ws: [f"{ws['nonutf8.tsv']}:6", "invalid UTF-8"]),
}


def cv_infer_base(ws: dict, out: Path) -> list:
    return ["--load_model_path", _fold_models(ws), "--vocab_path", ws["vocab.txt"], "--config_path", ws["config.json"],
            "--test_path", ws["test.tsv"], "--test_features_path", out / "test_features.npy", "--folds_num", "2",
            "--labels_num", "2", "--seq_length", "16"]


def mt_infer_base(ws: dict, out: Path) -> list:
    return ["--load_model_path", _mt_model(ws), "--vocab_path", ws["vocab.txt"], "--config_path", ws["config.json"],
            "--test_path", ws["test.tsv"], "--prediction_path", out / "prediction.tsv", "--labels_num_list", "2", "3",
            "--seq_length", "16"]


def augment_base(ws: dict, out: Path) -> list:
    return ["--input_path", ws["train.tsv"], "--output_path", out / "aug.tsv", "--aug_times", "1"]


def tool_matrix(tsv_cases) -> list:
    """(script, base, cases) rows; ``tsv_cases(option)`` is test_error_matrix's TSV mistakes."""
    missing_folds = {"missing_fold": (lambda ws: ["--load_model_path", ws["root"] / "nothing.bin"],
                                      lambda ws: [_s(ws["root"] / "nothing-fold_0.bin")])}
    return [
        ("scripts/average_model.py", average_base, AVERAGE_CASES),
        ("scripts/average_models.py", average_base, AVERAGE_CASES),
        ("scripts/check_model.py", check_model_base, {"bad_config": BAD_CONFIG, "missing": MISSING_MODEL,
                                                      "not_a_model": NOT_A_MODEL}),
        ("scripts/cloze_test.py", cloze_base, text_cases("--test_path") | {"not_a_model": NOT_A_MODEL}),
        ("scripts/extract_feature.py", features_base, text_cases("--input_path")),
        ("scripts/extract_features.py", features_base, text_cases("--test_path") | {"missing_model": MISSING_MODEL}),
        ("scripts/extract_embedding.py", embedding_base, EMBEDDING_CASES),
        ("scripts/extract_embeddings.py", embedding_base, EMBEDDING_CASES),
        ("scripts/topn_words_indep.py", topn_indep_base, {k: v for k, v in text_cases("--target_words_path").items()
                                                          if k != "bad_config"} | {"not_a_model": NOT_A_MODEL}),
        ("scripts/topn_words_dep.py", topn_dep_base, text_cases("--sent_path")),
        ("scripts/diff_vocab.py", diff_vocab_base, VOCAB_CASES),
        ("scripts/dynamic_vocab_adapter.py", adapter_base, ADAPTER_CASES),
        ("scripts/segment_corpus.py", segment_base, {
            "non_utf8": (lambda ws: ["--corpus_path", ws["nonutf8_corpus.txt"]],
                         lambda ws: [f"{ws['nonutf8_corpus.txt']}:13", "invalid UTF-8"]),
            "missing": (lambda ws: ["--corpus_path", ws["root"] / "missing.txt"],
                        lambda ws: [_s(ws["root"] / "missing.txt")])}),
        ("scripts/augment_data.py", augment_base, {k: v for k, v in tsv_cases("input_path").items()
                                                   if k != "bad_config"}),
        ("scripts/run_lgb.py", lgb_base, LGB_CASES),
        ("scripts/run_lgb_cv_bayesopt.py", bayesopt_base, LGB_CASES),
        ("inference/run_classifier_cv_infer.py", cv_infer_base, tsv_cases("test_path") | missing_folds),
        ("inference/run_classifier_infer_cv.py", cv_infer_base, tsv_cases("test_path") | missing_folds),
        ("inference/run_classifier_mt_infer.py", mt_infer_base, tsv_cases("test_path") | {"missing_model": MISSING_MODEL}),
    ]
