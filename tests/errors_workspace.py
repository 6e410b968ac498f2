"""Tiny inputs for the error tests (tests/test_error_matrix.py, tests/test_user_errors.py), and a helper
that runs an entry script in this process, exactly as ``python3 SCRIPT ...`` would (runpy, ``__main__``).

Everything is written under a temporary folder: a 13-token vocabulary, a one-layer H16 model config, a
few TSV files and corpora, a tiny dataset, a fine-tuned classifier and an lm model built from them.
"""
from __future__ import annotations

import json
import runpy
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "好", "书", "坏", "看", "不", "很", "这", "本"]
MICRO = {"emb_size": 16, "feedforward_size": 32, "hidden_size": 16, "hidden_act": "gelu", "heads_num": 2,
         "layers_num": 1, "max_seq_length": 32, "dropout": 0.0, "embedding": ["word", "pos", "seg"],
         "encoder": "transformer", "mask": "fully_visible", "target": ["mlm", "sp"], "tie_weights": True}
TEXTS = ["这本书很好", "这本书很坏", "好书", "坏书不看", "很好看", "不好看"]
BAD_BYTES = "坏".encode("utf-8")[:2] + b"\xff"  # a cut multi-byte character, as in a truncated GBK/UTF-8 mix


def tsv(rows: list[list[str]], header: list[str]) -> str:
    return "\n".join("\t".join(row) for row in [header] + rows) + "\n"


def labelled_rows(n: int = 12) -> list[list[str]]:
    """qid, label, text_a rows: labels 0/1 alternate, one question id per two rows."""
    return [[str(i // 2), str(i % 2), TEXTS[i % len(TEXTS)]] for i in range(n)]


def build_workspace(root: Path) -> dict[str, Path]:
    """Write every input file; returns name -> path."""
    ws = {"root": root}

    def put(name: str, data: str | bytes) -> Path:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(data, bytes):
            path.write_bytes(data)
        else:
            path.write_text(data, encoding="utf-8")
        ws[name] = path
        return path

    put("vocab.txt", "\n".join(VOCAB) + "\n")
    put("bad_vocab.txt", ("\n".join(VOCAB[:6]) + "\n").encode() + BAD_BYTES + b"\n")
    put("config.json", json.dumps(MICRO))
    put("bad_config.json", '{"hidden_size": 16,\n "layers_num": }\n')
    put("nonutf8_config.json", b'{"hidden_size": 16,\n "layers_num": 1, "x": "' + BAD_BYTES + b'"}\n')
    header = ["qid", "label", "text_a"]
    for name in ("train.tsv", "dev.tsv", "test.tsv"):
        put(name, tsv(labelled_rows(), header))
    put("notext.tsv", tsv(labelled_rows(4), ["qid", "label", "text"]))
    good = tsv(labelled_rows(4), header).encode("utf-8")
    put("nonutf8.tsv", good + b"2\t1\t" + BAD_BYTES + "书".encode() + b"\n")  # line 6
    # a label neither a decimal score (run_regression.py) nor a list of label ids (run_classifier_multi_label.py)
    put("badlabels.tsv", tsv([["1", "这本书很好"], ["0;x", "坏书"]], ["label", "text_a"]))  # line 3
    for name, train, dev in (("task", "train.tsv", "dev.tsv"), ("task_notext", "notext.tsv", "dev.tsv"),
                             ("task_nonutf8", "train.tsv", "nonutf8.tsv")):
        put(f"{name}/train.tsv", ws[train].read_bytes())
        put(f"{name}/dev.tsv", ws[dev].read_bytes())
    documents = ["这本书很好\n很好看\n不好看\n", "坏书不看\n这本书很坏\n好书\n", "好书\n很好看\n这本书很好\n"]
    put("corpus.txt", "\n".join(documents))
    put("nonutf8_corpus.txt", "\n".join(documents).encode("utf-8") + b"\n" + BAD_BYTES + b"\n")  # line 13
    put("prompts.txt", "这本\n好书\n")
    put("nonutf8_prompts.txt", "这本\n".encode() + BAD_BYTES + b"\n")
    put("random.bin", bytes(range(7, 250)) * 8)
    # the task scripts' inputs (run_ner.py, run_cmrc.py, run_c3.py, run_chid.py and their inference scripts)
    put("ner.tsv", tsv([["这 本 书", "O B-X I-X"], ["好 书", "O O"]], ["text_a", "label"]))
    put("ner_badtags.tsv", tsv([["这 本 书", "O B-X I-X"], ["好 书", "O"]], ["text_a", "label"]))  # line 3
    put("label2id.json", json.dumps({"O": 0, "B-X": 1, "I-X": 2}))
    squad = {"data": [{"paragraphs": [{"context": "这本书很好", "qas": [
        {"id": "q1", "question": "书", "answers": [{"text": "很好", "answer_start": 3}]}]}]}]}
    put("squad.json", json.dumps(squad, ensure_ascii=False, indent=1))
    put("bad.json", '[\n {"a": 1},\n {"a": }\n]\n')  # broken at line 3
    put("c3.json", json.dumps([[["这本书很好"], [{"question": "书", "choice": ["好", "坏"], "answer": "好", "id": 1}], "x"]],
                              ensure_ascii=False))
    put("chid.json", json.dumps({"candidates": ["好书", "坏书"], "content": ["这本#idiom000000#很好"]}, ensure_ascii=False) + "\n")
    put("chid_answer.json", json.dumps({"#idiom000000#": 0}))
    put("nonutf8_lines.json", ws["chid.json"].read_bytes() + BAD_BYTES + b"\n")  # line 2
    # run_simcse.py (dev: scored pairs), run_classifier_siamese.py (labelled pairs), run_classifier_prompt.py
    put("pairs.tsv", tsv([[str(i % 2), TEXTS[i % 6], TEXTS[(i + 1) % 6]] for i in range(8)], ["label", "text_a", "text_b"]))
    pairs_head = tsv([[str(i % 2), TEXTS[i % 6], TEXTS[(i + 1) % 6]] for i in range(4)], ["label", "text_a", "text_b"])
    put("nonutf8_pairs.tsv", pairs_head.encode("utf-8") + b"1\t" + BAD_BYTES + "书\t好书".encode() + b"\n")  # line 6
    put("prompts.json", json.dumps({"p": {"template": "[TEXT_A]很[ANS]", "answer_words": {"0": "坏", "1": "好"}}},
                                   ensure_ascii=False))
    return ws


def run_entry(script: str, *args: str) -> int:
    """Run ROOT/script as ``__main__`` in this process; returns its exit status (0 when it returns)."""
    path = str(ROOT / script)
    saved = sys.argv
    sys.argv = [path, *map(str, args)]
    try:
        runpy.run_path(path, run_name="__main__")
    except SystemExit as stop:
        return 0 if stop.code is None else stop.code if isinstance(stop.code, int) else 1
    finally:
        sys.argv = saved
    return 0


def make_artifacts(ws: dict[str, Path]) -> None:
    """The dataset, classifier and lm model the scripts read (made by the real scripts where cheap)."""
    from uer.config import model_config_from_args, parse_args_with_config
    from uer.generation import build_parser
    from uer.model_builder import build_model
    from uer.model_saver import save_model

    root = ws["root"]
    rc = run_entry("preprocess.py", "--corpus_path", ws["corpus.txt"], "--vocab_path", ws["vocab.txt"],
                   "--dataset_path", root / "dataset.pt", "--target", "bert", "--seq_length", "16", "--dup_factor", "1")
    assert rc == 0
    ws["dataset.pt"] = root / "dataset.pt"
    rc = run_entry("run_classifier.py", *classifier_args(ws, root / "classifier.bin"))
    assert rc == 0
    ws["classifier.bin"] = root / "classifier.bin"
    args = parse_args_with_config(build_parser("generate.py"), [
        "--load_model_path", "-", "--input_path", "-", "--output_path", "-", "--config_path", str(ws["config.json"]),
        "--vocab_path", str(ws["vocab.txt"]), "--encoder", "gpt"])
    args.target = ["lm"]
    torch.manual_seed(0)
    save_model(build_model(model_config_from_args(args, len(VOCAB))), root / "lm.bin")
    ws["lm.bin"] = root / "lm.bin"


def classifier_args(ws: dict[str, Path], output: Path, **paths: Path) -> list[str]:
    """run_classifier.py / run_dbqa.py options on the tiny files; ``paths`` replaces train/dev/test."""
    files = {"train_path": ws["train.tsv"], "dev_path": ws["dev.tsv"], "test_path": ws["test.tsv"], **paths}
    out = [f"--{name}={value}" for name, value in files.items()]
    return out + ["--vocab_path", str(ws["vocab.txt"]), "--config_path", str(ws["config.json"]),
                  "--output_model_path", str(output), "--epochs_num", "1", "--batch_size", "4", "--seq_length", "16",
                  "--report_steps", "1000"]


def infer_args(ws: dict[str, Path], prediction: Path, test: Path | None = None, model: Path | None = None) -> list:
    """inference/run_classifier_infer.py options for the tiny classifier."""
    return ["--load_model_path", model or ws["classifier.bin"], "--vocab_path", ws["vocab.txt"],
            "--test_path", test or ws["test.tsv"], "--prediction_path", prediction, "--labels_num", "2",
            "--config_path", ws["config.json"], "--seq_length", "16"]


def assert_one_line_error(code: int, err: str, script: str, *needles: str) -> str:
    """Exit status 2 and exactly one stderr line, ``SCRIPT: error: ...`` containing every needle."""
    prog = Path(script).name
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, f"exit status {code}\n{err}"
    assert "Traceback" not in err, err
    assert len(lines) == 1, err
    assert lines[0].startswith(f"{prog}: error: "), lines[0]
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


def leftovers(folder: Path) -> list[str]:
    """Hidden temp files of the atomic writers left in ``folder``."""
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".") and p.name.endswith(".tmp"))


@pytest.fixture(scope="session")
def error_ws(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    ws = build_workspace(tmp_path_factory.mktemp("errors"))
    make_artifacts(ws)
    return ws
