#!/usr/bin/env python3
"""Pre-training throughput and peak memory: our trainer step vs transformers' BertForPreTraining.

Same sizes, batch (32 x 128 by default), data and optimiser (fused AdamW), measured in the same run, each
configuration in its own child process so peak RSS is its own. Data: the bert-target dataset preprocess.py
builds from ../shared/data/corpora/CLUECorpusSmall_bert_sampled.txt with google_zh_vocab.txt.

    python3 benchmarks/bench_pretrain.py                  # tiny and mini, ours and transformers
    python3 benchmarks/bench_pretrain.py --sizes tiny --steps 30
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SHARED = ROOT.parent / "shared" / "data"
SIZES = {"tiny": "models/bert/tiny_config.json", "mini": "models/bert/mini_config.json"}


def build_dataset(path: Path, seq_length: int) -> None:
    corpus = SHARED / "corpora" / "CLUECorpusSmall_bert_sampled.txt"
    vocab = SHARED / "models" / "google_zh_vocab.txt"
    if not corpus.exists():
        sys.exit(f"needs {corpus} (the shared data beside the project)")
    subprocess.run([sys.executable, str(ROOT / "preprocess.py"), "--corpus_path", str(corpus), "--vocab_path", str(vocab),
                    "--dataset_path", str(path), "--processes_num", "2", "--target", "bert", "--seq_length",
                    str(seq_length), "--dup_factor", "1"], check=True, stdout=subprocess.DEVNULL)


def worker(impl: str, size: str, dataset: str, steps: int, warmup: int, batch_size: int) -> dict:
    """Runs in a child process: times ``steps`` optimiser steps after ``warmup`` untimed ones."""
    import torch

    from uer.model_builder import build_model
    from uer.utils.config import ModelConfig
    from uer.utils.data_loader import PretrainBatches
    from uer.utils.dataset import PretrainDataset
    from uer.utils.optimizers import build_optimizer

    torch.manual_seed(0)
    cfg_json = json.loads((ROOT / SIZES[size]).read_text())
    data = PretrainDataset.open(dataset)
    vocab_size = data.header["vocab_size"]
    batches = PretrainBatches(data, batch_size=batch_size, seed=1).iter_from(0)
    if impl == "ours":
        from uer.trainer import TrainConfig, Trainer
        from uer.utils.distributed import DistContext

        cfg = ModelConfig(vocab_size=vocab_size, emb_size=cfg_json["emb_size"], hidden_size=cfg_json["hidden_size"],
                          feedforward_size=cfg_json["feedforward_size"], heads_num=cfg_json["heads_num"],
                          layers_num=cfg_json["layers_num"], max_seq_length=512, dropout=0.1, tie_weights=True)
        model = build_model(cfg)
        base = TrainConfig(output_model_path=os.path.join(tempfile.mkdtemp(), "bench.bin"), total_steps=warmup, save_checkpoint_steps=10**9,
                           report_steps=10**9, batch_size=batch_size, learning_rate=1e-4)
        trainer = Trainer(model, PretrainBatches(data, batch_size=batch_size, seed=1), base, DistContext())
        trainer.fit()  # warm-up steps, untimed
        # Continue the same run for `steps` more steps through the real loop, timed.
        trainer.cfg = dataclasses.replace(base, total_steps=warmup + steps)
        stream = PretrainBatches(data, batch_size=batch_size, seed=1).iter_from(warmup)
        tokens = sum(next(stream)["src"].numel() for _ in range(steps))
        start = time.perf_counter()
        trainer.fit()
        elapsed = time.perf_counter() - start
    else:
        import transformers

        hf_cfg = transformers.BertConfig(vocab_size=vocab_size, hidden_size=cfg_json["hidden_size"],
                                         num_hidden_layers=cfg_json["layers_num"], num_attention_heads=cfg_json["heads_num"],
                                         intermediate_size=cfg_json["feedforward_size"], max_position_embeddings=512)
        model = transformers.BertForPreTraining(hf_cfg).train()
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=True)

        def hf_step(batch: dict) -> None:
            src, seg = batch["src"], batch["seg"]
            labels = torch.full_like(src, -100).view(-1)
            labels[batch["mlm_positions"]] = batch["mlm_labels"]
            out = model(input_ids=src, token_type_ids=(seg - 1).clamp_min(0), attention_mask=(seg > 0).long(),
                        labels=labels.view_as(src), next_sentence_label=batch["sp_labels"])
            out.loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)

        for _ in range(warmup):
            hf_step(next(batches))
        timed = [next(batches) for _ in range(steps)]
        tokens = sum(b["src"].numel() for b in timed)
        start = time.perf_counter()
        for batch in timed:
            hf_step(batch)
        elapsed = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"impl": impl, "size": size, "tokens_per_s": tokens / elapsed, "ms_per_step": 1000 * elapsed / steps,
            "peak_rss_mb": peak_mb, "threads": torch.get_num_threads()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", default=["tiny", "mini"], choices=sorted(SIZES))
    parser.add_argument("--impls", nargs="+", default=["ours", "transformers"], choices=["ours", "transformers"])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--seq_length", type=int, default=128)
    parser.add_argument("--worker", nargs=3, metavar=("IMPL", "SIZE", "DATASET"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(*args.worker, args.steps, args.warmup, args.batch_size)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        dataset = Path(tmp) / "bench.pt"
        build_dataset(dataset, args.seq_length)
        print(f"batch {args.batch_size} x seq {args.seq_length}, bert target (mlm + nsp), {args.steps} timed steps")
        print(f"{'size':6} {'implementation':14} {'tokens/s':>10} {'ms/step':>9} {'peak RSS MB':>12}")
        for size in args.sizes:
            for impl in args.impls:
                out = subprocess.run([sys.executable, __file__, "--worker", impl, size, str(dataset), "--steps",
                                      str(args.steps), "--warmup", str(args.warmup), "--batch_size", str(args.batch_size)],
                                     capture_output=True, text=True)
                if out.returncode != 0:
                    print(f"{size:6} {impl:14} failed:\n{out.stderr[-2000:]}")
                    continue
                r = json.loads(out.stdout.strip().splitlines()[-1])
                print(f"{size:6} {impl:14} {r['tokens_per_s']:10.0f} {r['ms_per_step']:9.1f} {r['peak_rss_mb']:12.0f}")


if __name__ == "__main__":
    main()
