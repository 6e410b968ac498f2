"""Shared test fixtures: where the read-only real data lives, and helpers to run entry scripts."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("UER_SHARED_DATA", ROOT.parent / "shared" / "data"))


def shared_path(relative: str) -> Path:
    """Path of a file under ../shared/data; skips the calling test with a clear reason when absent."""
    path = SHARED_DATA / relative
    if not path.exists():
        pytest.skip(f"shared data not available: {path} (tests that need real corpora read ../shared/data)")
    return path


def subprocess_env() -> dict[str, str]:
    """The environment for subprocesses of a test: this checkout's ``uer`` first on the import path (the
    tests test the tree they are in, not another installed copy), two threads unless the caller set some."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    env.setdefault("OMP_NUM_THREADS", "2")
    return env


def free_port() -> int:
    """A TCP port of 127.0.0.1 nothing listens on (the OS picks it): each distributed run or server of a test gets
    its own, so runs never meet on a fixed port such as --master_ip's default 12345."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_script(script: str, *args: str, cwd: Path | None = None, timeout: int = 600,
               env: dict | None = None) -> subprocess.CompletedProcess:
    """Run an entry script of the project with the current interpreter; fails the test with its output."""
    full_env = subprocess_env()
    if env:
        full_env.update(env)
    cmd = [sys.executable, str(ROOT / script), *args]
    proc = subprocess.run(cmd, cwd=cwd or ROOT, capture_output=True, text=True, timeout=timeout, env=full_env)
    if proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed with {proc.returncode}\nSTDOUT:\n{proc.stdout}\nSTDERR:\n{proc.stderr}")
    return proc


# A 21-token vocabulary, the tiny config and texts made of its characters: the model files of the inference,
# int8 and serving tests (tiny_classifier_files).
TINY_VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + list("今天气很好这本书看我们不错差的了是一")
TINY_CONFIG = "models/bert/tiny_config.json"
TINY_TEXTS = ["今天天气很好", "这本书不错", "很差", "我们看书", "是一本好书了", "天", "这是我们的书", "不好看"]


def tiny_classifier_files(root: Path) -> tuple[dict, "object"]:
    """Under ``root``: vocab.txt, model.bin (a tiny BERT with random weights and its pre-training heads),
    classifier.bin (a 3-label classifier on it, head weights spread so labels differ between texts) and
    texts.tsv (TINY_TEXTS); returns their paths by name (and "root") and the classifier module."""
    import torch

    from uer.api import load_config
    from uer.finetune.tasks.classifier import Classifier
    from uer.model_builder import build_model
    from uer.model_saver import save_model

    (root / "vocab.txt").write_text("\n".join(TINY_VOCAB) + "\n", encoding="utf-8")
    cfg = load_config(TINY_CONFIG, len(TINY_VOCAB), dropout=0.0)
    torch.manual_seed(0)
    model = build_model(cfg)
    save_model(model, root / "model.bin")
    classifier = Classifier(model.embedding, model.encoder, cfg.hidden_size, 3)
    for layer in (classifier.output_layer_1, classifier.output_layer_2):
        torch.nn.init.normal_(layer.weight, std=0.5)
    save_model(classifier, root / "classifier.bin")
    (root / "texts.tsv").write_text("text_a\n" + "\n".join(TINY_TEXTS) + "\n", encoding="utf-8")
    paths = {"root": root, "vocab": str(root / "vocab.txt"), "model": str(root / "model.bin"),
             "classifier": str(root / "classifier.bin"), "tsv": str(root / "texts.tsv")}
    return paths, classifier


def pytest_collection_modifyitems(config, items):
    """Tests marked ``gpu`` run the CUDA-only code paths; without a CUDA device they are skipped, saying so."""
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device (marked gpu)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
