#!/usr/bin/env python3
"""Pre-training throughput and peak memory: our trainer step vs transformers' BertForPreTraining.

Same sizes, batch (32 x 128 by default), data and optimiser (fused AdamW), measured in the same run, each
configuration in its own child process so peak RSS is its own. Data: the bert-target dataset preprocess.py
builds from ../shared/data/corpora/CLUECorpusSmall_bert_sampled.txt with google_zh_vocab.txt.

    python3 benchmarks/bench_pretrain.py                  # tiny and mini, ours and transformers
    python3 benchmarks/bench_pretrain.py --sizes tiny --steps 30

``--models lstm_lm gatedcnn_lm`` measures language models at the sizes of the docs' configs
(models/rnn/lstm_config.json: 2-layer LSTM 512; models/cnn/gatedcnn_9_config.json: 9 gated layers of 807)
on the lm dataset of ../shared/data/corpora/CLUECorpusSmall_sampled.txt; the LSTM runs next to a plain
torch reference (nn.Embedding + nn.LSTM + nn.Linear, full-vocabulary softmax at the same positions).

    python3 benchmarks/bench_pretrain.py --models lstm_lm gatedcnn_lm --steps 10

``--against_uer_py`` runs UER-py's own preprocess.py / pretrain.py (written from a git snapshot into a temporary
folder, benchmarks/uer_py.py) next to our preprocess.py / pretrain.py, each as its command line: tiny and mini,
UER-py (float32: it has no CPU mixed precision), ours float32 and ours with --fp16 (bfloat16 autocast here), on
the same corpus, vocabulary, config and batch (32 x 128, bert target). Each configuration runs twice, for
--warmup and for --warmup + --steps steps (at least one bucketing window, 100 steps, so that bucketed runs
cover the whole length distribution and UER-py's figure is steady); the difference gives seconds per step without
start-up, in wall time and in CPU time of the process (steadier on a shared machine), plus peak RSS. One thread
each by default (--threads), the same for both.

    python3 benchmarks/bench_pretrain.py --against_uer_py --steps 100 --warmup 3
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
SHARED = ROOT.parent / "shared" / "data"
SIZES = {"tiny": "models/bert/tiny_config.json", "mini": "models/bert/mini_config.json"}
# Language models at the docs' config sizes: name -> config (run with --models).
LM_MODELS = {"lstm_lm": "models/rnn/lstm_config.json", "gatedcnn_lm": "models/cnn/gatedcnn_9_config.json"}


def build_dataset(path: Path, seq_length: int, target: str = "bert") -> None:
    name = "CLUECorpusSmall_bert_sampled.txt" if target == "bert" else "CLUECorpusSmall_sampled.txt"
    corpus = SHARED / "corpora" / name
    vocab = SHARED / "models" / "google_zh_vocab.txt"
    if not corpus.exists():
        sys.exit(f"needs {corpus} (the shared data beside the project)")
    subprocess.run([sys.executable, str(ROOT / "preprocess.py"), "--corpus_path", str(corpus), "--vocab_path", str(vocab),
                    "--dataset_path", str(path), "--processes_num", "2", "--target", target, "--seq_length",
                    str(seq_length), "--dup_factor", "1"], check=True, stdout=subprocess.DEVNULL)


def lm_worker(impl: str, model_name: str, dataset: str, steps: int, warmup: int, batch_size: int) -> dict:
    """A language model at its docs config size: our trainer loop, or (lstm) a plain torch reference."""
    import torch

    from uer.model_builder import build_model
    from uer.model_config import ModelConfig
    from uer.data.pretrain_loader import PretrainBatches
    from uer.data.dataset import PretrainDataset

    torch.manual_seed(0)
    cfg_json = json.loads((ROOT / LM_MODELS[model_name]).read_text())
    data = PretrainDataset.open(dataset)
    vocab_size = data.header["vocab_size"]
    keys = ("emb_size", "hidden_size", "layers_num", "dropout", "kernel_size", "block_size",
            "remove_embedding_layernorm", "encoder")
    cfg = ModelConfig(vocab_size=vocab_size, embedding=tuple(cfg_json["embedding"]), target=("lm",),
                      max_seq_length=cfg_json["max_seq_length"], **{k: cfg_json[k] for k in keys if k in cfg_json})
    if impl == "ours":
        from uer.training.pretrain_loop import TrainConfig, Trainer
        from uer.utils.distributed import DistContext

        base = TrainConfig(output_model_path=os.path.join(tempfile.mkdtemp(), "bench.bin"), total_steps=warmup,
                           save_checkpoint_steps=10**9, report_steps=10**9, batch_size=batch_size, learning_rate=1e-3)
        trainer = Trainer(build_model(cfg), PretrainBatches(data, batch_size=batch_size, seed=1), base, DistContext())
        trainer.fit()
        trainer.cfg = dataclasses.replace(base, total_steps=warmup + steps)
        stream = PretrainBatches(data, batch_size=batch_size, seed=1).iter_from(warmup)
        tokens = sum(next(stream)["tokens_num"] for _ in range(steps))
        params = sum(p.numel() for p in trainer.model.parameters())
        start = time.perf_counter()
        trainer.fit()
        elapsed = time.perf_counter() - start
    else:  # a plain torch LSTM language model of the same size, as a floor for our overhead
        from torch import nn

        class Reference(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.emb = nn.Embedding(vocab_size, cfg.emb_size)
                self.rnn = nn.LSTM(cfg.emb_size, cfg.hidden_size, cfg.layers_num, batch_first=True, dropout=cfg.dropout)
                self.out = nn.Linear(cfg.hidden_size, vocab_size, bias=False)

            def forward(self, batch: dict) -> torch.Tensor:
                hidden = self.rnn(self.emb(batch["src"]))[0].reshape(-1, cfg.hidden_size)[batch["lm_positions"]]
                return nn.functional.cross_entropy(self.out(hidden), batch["lm_labels"])

        model = Reference().train()
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, fused=True)
        batches = PretrainBatches(data, batch_size=batch_size, seed=1).iter_from(0)

        def step(batch: dict) -> None:
            model(batch).backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)

        for _ in range(warmup):
            step(next(batches))
        timed = [next(batches) for _ in range(steps)]
        tokens = sum(b["tokens_num"] for b in timed)
        params = sum(p.numel() for p in model.parameters())
        start = time.perf_counter()
        for batch in timed:
            step(batch)
        elapsed = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"impl": impl, "size": model_name, "tokens_per_s": tokens / elapsed, "ms_per_step": 1000 * elapsed / steps,
            "peak_rss_mb": peak_mb, "threads": torch.get_num_threads(), "params_m": params / 1e6}


def worker(impl: str, size: str, dataset: str, steps: int, warmup: int, batch_size: int, allocator: str) -> dict:
    """Runs in a child process: times ``steps`` optimiser steps after ``warmup`` untimed ones."""
    if allocator == "tuned":
        from uer.utils.runtime import tune_cpu_allocator

        tune_cpu_allocator()
    if size in LM_MODELS:
        return lm_worker(impl, size, dataset, steps, warmup, batch_size)
    import torch

    from uer.model_builder import build_model
    from uer.model_config import ModelConfig
    from uer.data.pretrain_loader import PretrainBatches
    from uer.data.dataset import PretrainDataset

    torch.manual_seed(0)
    cfg_json = json.loads((ROOT / SIZES[size]).read_text())
    data = PretrainDataset.open(dataset)
    vocab_size = data.header["vocab_size"]
    batches = PretrainBatches(data, batch_size=batch_size, seed=1).iter_from(0)
    if impl == "ours":
        from uer.training.pretrain_loop import TrainConfig, Trainer
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
    parser.add_argument("--models", nargs="+", default=["bert"], choices=["bert"] + sorted(LM_MODELS),
                        help="bert: BERT at --sizes (ours vs transformers); lstm_lm, gatedcnn_lm: language models "
                             "at the docs' config sizes (tokens/s counts the predicted, non-padding tokens).")
    parser.add_argument("--sizes", nargs="+", default=["tiny", "mini"], choices=sorted(SIZES))
    parser.add_argument("--impls", nargs="+", default=["ours", "transformers"], choices=["ours", "transformers"])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--seq_length", type=int, default=128)
    parser.add_argument("--allocator", choices=["tuned", "default"], default="tuned",
                        help="tuned: every implementation runs with the allocator setting our entry scripts apply "
                             "(uer/utils/runtime.py), so the comparison is between model code; default: glibc's.")
    parser.add_argument("--worker", nargs=3, metavar=("IMPL", "SIZE", "DATASET"), help=argparse.SUPPRESS)
    parser.add_argument("--against_uer_py", action="store_true",
                        help="Side by side with UER-py's pretrain.py, each run as its command line (see above).")
    parser.add_argument("--uer_py_git", default=None, help="UER-py git snapshot or clone (benchmarks/uer_py.py).")
    parser.add_argument("--threads", type=int, default=1, help="--against_uer_py: threads of every process.")
    args = parser.parse_args()
    if args.against_uer_py:
        compare_with_uer_py(args)
        return
    if args.worker:
        print(json.dumps(worker(*args.worker, args.steps, args.warmup, args.batch_size, args.allocator)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        if "bert" in args.models:
            dataset = Path(tmp) / "bench.pt"
            build_dataset(dataset, args.seq_length)
            print(f"batch {args.batch_size} x seq {args.seq_length}, bert target (mlm + nsp), {args.steps} timed steps, "
                  f"{args.allocator} allocator, load average {os.getloadavg()[0]:.1f}")
            print(f"{'size':6} {'implementation':14} {'tokens/s':>10} {'ms/step':>9} {'peak RSS MB':>12}")
            for size in args.sizes:
                for impl in args.impls:
                    run_worker(impl, size, dataset, args)
        lm_models = [m for m in args.models if m in LM_MODELS]
        if lm_models:
            dataset = Path(tmp) / "bench_lm.pt"
            build_dataset(dataset, args.seq_length, target="lm")
            print(f"batch {args.batch_size} x seq {args.seq_length}, lm target, {args.steps} timed steps")
            print(f"{'model':12} {'implementation':14} {'tokens/s':>10} {'ms/step':>9} {'peak RSS MB':>12} {'params M':>9}")
            for model_name in lm_models:
                for impl in ["ours", "torch"] if model_name == "lstm_lm" else ["ours"]:
                    run_worker(impl, model_name, dataset, args)


def compare_with_uer_py(args: argparse.Namespace) -> None:
    """UER-py's pretrain.py and ours, as command lines, side by side (module doc)."""
    import uer_py

    from uer.opts import BUCKET_WINDOW  # pretrain.py's length-bucketing window, in steps

    git_dir = args.uer_py_git or uer_py.DEFAULT_GIT
    corpus = SHARED / "corpora" / "CLUECorpusSmall_bert_sampled.txt"
    vocab = SHARED / "models" / "google_zh_vocab.txt"
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        theirs = uer_py.write_uer_py(git_dir, tmp / "UER-py")
        ours_data, their_data = tmp / "ours.pt", tmp / "uer_py.pt"
        build_dataset(ours_data, args.seq_length)
        subprocess.run([sys.executable, "preprocess.py", "--corpus_path", str(corpus), "--vocab_path", str(vocab),
                        "--dataset_path", str(their_data), "--processes_num", "2", "--data_processor", "bert",
                        "--seq_length", str(args.seq_length), "--dup_factor", "1"], cwd=theirs, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        print(f"UER-py {uer_py.uer_py_commit(git_dir)} vs ours: pretrain.py, bert target, batch {args.batch_size} x "
              f"seq {args.seq_length}, {args.threads} thread(s) each, {max(args.steps, BUCKET_WINDOW)} timed steps "
              f"after {args.warmup}; "
              f"{uer_py.load()}")
        print(f"{'size':5} {'run':24} {'wall s/step':>11} {'CPU s/step':>10} {'x UER-py (wall | CPU)':>22} "
              f"{'peak RSS MB':>11}")

        def command(impl: str, size: str, steps: int) -> tuple[list[str], Path]:
            common = ["--vocab_path", str(vocab), "--total_steps", str(steps), "--save_checkpoint_steps", "100000",
                      "--report_steps", str(steps), "--batch_size", str(args.batch_size)]
            out = str(tmp / f"{impl}-{size}-{steps}.bin")
            if impl == "UER-py":
                return ([sys.executable, "pretrain.py", "--dataset_path", str(their_data), "--config_path",
                         f"models/bert/{size}_config.json", "--output_model_path", out, "--data_processor", "bert",
                         *common], theirs)
            flags = {"ours fp32": [], "ours --fp16 (bf16)": ["--fp16"],
                     "ours fp32, no bucketing": ["--no_length_bucketing"]}[impl]
            return ([sys.executable, str(ROOT / "pretrain.py"), "--dataset_path", str(ours_data), "--config_path",
                     str(ROOT / SIZES[size]), "--output_model_path", out, "--target", "bert", *common, *flags], ROOT)

        impls = ["UER-py", "ours fp32", "ours --fp16 (bf16)", "ours fp32, no bucketing"]
        # Length-bucketed batches differ in length from step to step (a window of BUCKET_WINDOW steps sorted by
        # length, visited in random order): their timed steps span a whole window's worth, or a short run would
        # time whichever lengths it happened to draw. The other runs too: UER-py's 12-step tiny figure moved from
        # 0.74 to 0.52 s/step between two runs minutes apart (benchmarks/RESULTS.md).
        timed = dict.fromkeys(impls, max(args.steps, BUCKET_WINDOW))
        for size in args.sizes:
            runs: dict[str, list] = {impl: [] for impl in impls}
            for extra in (0, 1):  # interleaved: load changes hit all alike
                for impl in impls:
                    steps = args.warmup + extra * timed[impl]
                    runs[impl].append(uer_py.run_measured(*command(impl, size, steps), threads=args.threads))
            base = uer_py.per_step(*runs["UER-py"], timed["UER-py"])
            for impl in impls:
                wall, cpu = uer_py.per_step(*runs[impl], timed[impl])
                print(f"{size:5} {impl:24} {wall:11.3f} {cpu:10.3f} {base[0] / wall:10.2f}x | {base[1] / cpu:5.2f}x "
                      f"{runs[impl][1].peak_rss_mb:11.0f}", flush=True)
        print(uer_py.load())


def run_worker(impl: str, size: str, dataset: Path, args: argparse.Namespace) -> None:
    """One configuration in its own child process (its own peak RSS); prints one table row."""
    out = subprocess.run([sys.executable, __file__, "--worker", impl, size, str(dataset), "--steps", str(args.steps),
                          "--warmup", str(args.warmup), "--batch_size", str(args.batch_size),
                          "--allocator", args.allocator],
                         capture_output=True, text=True)
    width = 12 if size in LM_MODELS else 6
    if out.returncode != 0:
        print(f"{size:{width}} {impl:14} failed:\n{out.stderr[-2000:]}")
        return
    r = json.loads(out.stdout.strip().splitlines()[-1])
    row = f"{size:{width}} {impl:14} {r['tokens_per_s']:10.0f} {r['ms_per_step']:9.1f} {r['peak_rss_mb']:12.0f}"
    print(row + (f" {r['params_m']:9.1f}" if "params_m" in r else ""))


if __name__ == "__main__":
    main()
