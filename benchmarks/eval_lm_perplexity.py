#!/usr/bin/env python3
"""Perplexity of a tiny GPT pre-trained for a few minutes, on held-out documents (a measurement, not a test).

The last --heldout_lines documents of ../shared/data/corpora/CLUECorpusSmall_sampled.txt are held out, the
rest is preprocessed with --target lm and google_zh_vocab.txt, and pretrain.py trains a GPT-2-style tiny
model (pre-LayerNorm, word + position embedding, tied output, --encoder transformer --mask causal) for
about --minutes (the step count is calibrated first). Perplexity = exp(mean next-token cross-entropy)
over every token of the held-out documents after their [CLS] (their [SEP] included), next to a
unigram model (add-one counts of the training tokens) and the vocabulary size for scale.

    python3 benchmarks/eval_lm_perplexity.py                      # ~5 minutes on 2 cores
    python3 benchmarks/eval_lm_perplexity.py --minutes 2 --heldout_lines 100
"""
from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"

TINY_GPT = {"emb_size": 128, "hidden_size": 128, "feedforward_size": 512, "heads_num": 2, "layers_num": 2,
            "hidden_act": "gelu_fast", "max_seq_length": 128, "dropout": 0.1, "data_processor": "lm",
            "embedding": ["word", "pos"], "remove_embedding_layernorm": True, "encoder": "transformer",
            "mask": "causal", "layernorm_positioning": "pre", "target": ["lm"], "tie_weights": True}


def run(*cmd: str) -> str:
    out = subprocess.run([sys.executable, *cmd], cwd=ROOT, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"{' '.join(cmd[:1])} failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}")
    return out.stdout


def calibrate(dataset: Path, config: Path, vocab_size: int, batch_size: int, steps: int = 4) -> float:
    """Seconds per training step of this model, data and batch on this machine (after one untimed step)."""
    from uer.model_builder import build_model
    from uer.model_config import ModelConfig
    from uer.data.pretrain_loader import PretrainBatches
    from uer.data.dataset import PretrainDataset
    from uer.training.optimizers import build_optimizer

    cfg_json = json.loads(config.read_text())
    cfg = ModelConfig(vocab_size=vocab_size, **{k: v for k, v in cfg_json.items() if k != "data_processor"}
                      | {"embedding": tuple(cfg_json["embedding"]), "target": ("lm",)})
    model = build_model(cfg).train()
    optimizer = build_optimizer(model, 1e-3, (0.9, 0.999), 0.01)
    batches = PretrainBatches(PretrainDataset.open(dataset), batch_size=batch_size, seed=0)
    for i in range(steps + 1):
        if i == 1:
            start = time.perf_counter()
        out = model(batches.batch(i))["lm"]
        (out.loss_sum / max(out.count, 1)).backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return (time.perf_counter() - start) / steps


def evaluate(model_path: str, config: Path, dataset: Path, vocab_size: int) -> tuple[float, int]:
    """(summed next-token cross-entropy, number of predictions) over every instance of ``dataset``."""
    import numpy as np
    import torch

    from uer.model_builder import build_model
    from uer.model_loader import load_model_weights
    from uer.model_config import ModelConfig
    from uer.data.pretrain_loader import PretrainBatches
    from uer.data.dataset import PretrainDataset

    cfg_json = json.loads(config.read_text())
    cfg = ModelConfig(vocab_size=vocab_size, **{k: v for k, v in cfg_json.items() if k != "data_processor"}
                      | {"embedding": tuple(cfg_json["embedding"]), "target": ("lm",)})
    model = build_model(cfg)
    load_model_weights(model, model_path)
    model.eval()
    data = PretrainDataset.open(dataset)
    batches = PretrainBatches(data, batch_size=1)
    loss, count = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(data), 64):
            out = model(batches.batch_of_instances(np.arange(start, min(start + 64, len(data)))))["lm"]
            loss += float(out.loss_sum)
            count += out.count
    return loss, count


def unigram(train: Path, heldout: Path, vocab_size: int) -> float:
    """Perplexity of add-one unigram counts of the training predictions on the held-out predictions."""
    import numpy as np

    from uer.data.pretrain_loader import PretrainBatches
    from uer.data.dataset import PretrainDataset

    def labels(path: Path) -> np.ndarray:
        data = PretrainDataset.open(path)
        batches = PretrainBatches(data, batch_size=1)
        return np.concatenate([batches.batch_of_instances(np.arange(s, min(s + 256, len(data))))["lm_labels"].numpy()
                               for s in range(0, len(data), 256)])

    counts = np.bincount(labels(train), minlength=vocab_size) + 1.0
    log_probs = np.log(counts / counts.sum())
    return math.exp(-float(log_probs[labels(heldout)].mean()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=5.0, help="Training time budget.")
    parser.add_argument("--heldout_lines", type=int, default=200, help="Documents held out for evaluation.")
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--seq_length", type=int, default=128)
    parser.add_argument("--learning_rate", type=float, default=2e-3)
    args = parser.parse_args()
    corpus, vocab = SHARED / "corpora" / "CLUECorpusSmall_sampled.txt", SHARED / "models" / "google_zh_vocab.txt"
    if not corpus.exists():
        sys.exit(f"needs {corpus} (the shared data beside the project)")
    from uer.text.vocab import Vocab

    vocab_size = len(Vocab.from_file(vocab))
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        lines = [line for line in corpus.read_text(encoding="utf-8").splitlines() if line.strip()]
        (tmp / "train.txt").write_text("\n".join(lines[:-args.heldout_lines]) + "\n", encoding="utf-8")
        (tmp / "heldout.txt").write_text("\n".join(lines[-args.heldout_lines:]) + "\n", encoding="utf-8")
        config = tmp / "tiny_gpt.json"
        config.write_text(json.dumps(TINY_GPT))
        for name in ("train", "heldout"):
            run("preprocess.py", "--corpus_path", str(tmp / f"{name}.txt"), "--vocab_path", str(vocab), "--dataset_path",
                str(tmp / f"{name}.pt"), "--processes_num", "2", "--target", "lm", "--seq_length", str(args.seq_length))
        seconds_per_step = calibrate(tmp / "train.pt", config, vocab_size, args.batch_size)
        steps = max(10, int(args.minutes * 60 / seconds_per_step))
        print(f"train: {len(lines) - args.heldout_lines} documents; held out: {args.heldout_lines}; vocabulary "
              f"{vocab_size}; tiny GPT (pre-LN, L2/H128); {seconds_per_step:.2f} s/step -> {steps} steps of "
              f"{args.batch_size} x {args.seq_length}", flush=True)
        started = time.perf_counter()
        out = run("pretrain.py", "--dataset_path", str(tmp / "train.pt"), "--vocab_path", str(vocab),
                  "--config_path", str(config), "--output_model_path", str(tmp / "gpt.bin"), "--total_steps", str(steps),
                  "--save_checkpoint_steps", str(steps), "--report_steps", str(max(1, steps // 5)),
                  "--batch_size", str(args.batch_size), "--learning_rate", str(args.learning_rate), "--warmup", "0.05",
                  "--encoder", "transformer", "--mask", "causal", "--target", "lm")
        trained = time.perf_counter() - started
        print("\n".join(line for line in out.splitlines() if "loss_lm" in line))
        loss, count = evaluate(str(tmp / f"gpt.bin-{steps}"), config, tmp / "heldout.pt", vocab_size)
        baseline = unigram(tmp / "train.pt", tmp / "heldout.pt", vocab_size)
        print(f"trained {steps} steps in {trained / 60:.1f} min; held-out predictions: {count}")
        print(f"held-out perplexity: tiny GPT {math.exp(loss / count):.1f} | add-one unigram {baseline:.1f} | "
              f"vocabulary size {vocab_size}")


if __name__ == "__main__":
    main()
