"""Log files (--log_path, --log_level, --log_file_level) and preprocessing progress, on real runs."""
from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from conftest import ROOT, run_script, shared_path
from test_progress import run_in_pty


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    src = shared_path("corpora/CLUECorpusSmall_bert_sampled.txt")
    path = tmp_path_factory.mktemp("corpus") / "corpus.txt"
    with open(src, encoding="utf-8") as f:
        path.write_text("".join(next(f) for _ in range(400)), encoding="utf-8")
    return path


def _preprocess_args(corpus: Path, out: Path) -> list[str]:
    return ["--corpus_path", str(corpus), "--vocab_path", str(shared_path("models/google_zh_vocab.txt")),
            "--dataset_path", str(out), "--target", "bert", "--seq_length", "64", "--dup_factor", "1",
            "--processes_num", "2", "--docs_buffer_size", "5"]


def test_log_file_levels_and_plain_progress(corpus: Path, tmp_path: Path) -> None:
    log = tmp_path / "logs" / "preprocess.log"  # the folder is created
    proc = run_script("preprocess.py", *_preprocess_args(corpus, tmp_path / "dataset.pt"), "--log_path", str(log),
                      "--log_level", "ERROR", "--log_file_level", "INFO", env={"UER_PROGRESS_SECONDS": "0"})
    assert proc.stdout == ""  # the console shows errors only
    text = log.read_text(encoding="utf-8")
    assert re.search(r"^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} INFO\] Building bert instances", text, re.M)
    assert re.search(r"INFO\] Wrote \d+ instances to", text)
    # plain progress lines (stderr is not a terminal): corpus bytes, rate, ETA, instances, each worker
    progress = re.findall(r"preprocessing: ([\d.]+) KiB/([\d.]+) KiB \(([\d.]+)%\), [\d.]+ [KM]?i?B/s, (\S+) left; "
                          r"([\d,]+) instances; workers (\d+)% (\d+)%", text)
    assert len(progress) >= 3, text
    assert float(progress[-1][2]) == 100.0 and progress[-1][5:] == ("100", "100")
    assert float(progress[0][2]) < 100.0
    assert "\r" not in text
    # a second run appends (a resumed run continues its log)
    run_script("preprocess.py", *_preprocess_args(corpus, tmp_path / "again.pt"), "--log_path", str(log),
               "--log_level", "ERROR", "--log_file_level", "WARNING")
    assert log.read_text(encoding="utf-8") == text  # WARNING level: nothing new


def test_preprocess_bars_in_a_terminal(corpus: Path, tmp_path: Path) -> None:
    out = run_in_pty([sys.executable, str(ROOT / "preprocess.py"), *_preprocess_args(corpus, tmp_path / "d.pt")])
    assert re.search(r"preprocessing: 100%\|", out), out
    assert "worker 1:" in out and "B/s]" in out
    assert "Wrote " in out and "preprocessing: " not in out.split("Wrote ")[1]  # bars closed before the summary
