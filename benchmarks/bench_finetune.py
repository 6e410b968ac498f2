#!/usr/bin/env python3
"""Fine-tuning and inference speed and peak memory: our classifier loop vs transformers'
BertForSequenceClassification, on book_review, at tiny and mini sizes.

Same data (the first --train_examples training and --eval_examples dev reviews of
../shared/data/datasets/book_review, tokenised once by our tokenizer), same batch size and sequence length,
same optimiser (fused AdamW, linear schedule), dropout on, measured in the same run. Each configuration runs
in its own child process so its peak RSS is its own; --repeat N keeps the best of N rounds over all
configurations (the machine is shared: the best run is the one least disturbed by others). Throughput is
reported per second of wall time and per CPU-second of the process (one thread by default).

Batching modes (training; inference sorts by length whenever padding is dynamic):
    padded    every batch padded to --seq_length (what UER-py does)
    dynamic   each batch padded to its longest instance, batches drawn at random (--no_length_bucketing)
    bucketed  dynamic padding and length bucketing: batches of similar lengths (our default)
    bf16      bucketed, under bfloat16 autocast (our --fp16 on a CPU; transformers gets the same autocast)

    python3 benchmarks/bench_finetune.py                         # tiny and mini, every mode, both implementations
    python3 benchmarks/bench_finetune.py --sizes tiny --repeat 3

The other tasks (--task ner|cmrc|c3; ours only, modes padded and bucketed): MSRA NER dev sentences
(--seq_length 128), CMRC 2018 dev question windows (--seq_length 512, --doc_stride 128), C3 dev questions
(--seq_length 512, 4 choices: each question is 4 sequences). "padded" pads every batch to --seq_length and
draws random batches, as UER-py's scripts do; examples are sentences, windows and questions.

    python3 benchmarks/bench_finetune.py --task c3 --sizes tiny mini --seq_length 512 --batch_size 8
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("UER_SHARED_DATA", ROOT.parent / "shared" / "data"))
SIZES = {"tiny": "models/bert/tiny_config.json", "mini": "models/bert/mini_config.json"}
MODES = ("padded", "dynamic", "bucketed", "bf16")
# Measured by the issue on this machine: UER-py's run_classifier.py, tiny, batch 64, seq 128 (padded).
UER_PY_TINY = {"train": 150.0, "infer": 440.0}


def load_data(train_examples: int, eval_examples: int, seq_length: int):
    from uer.finetune.tasks.classifier import read_classification
    from uer.text.tokenizers import build_tokenizer

    tokenizer = build_tokenizer("bert", SHARED / "models" / "google_zh_vocab.txt")
    book = SHARED / "datasets" / "book_review"
    train = read_classification(str(book / "train.tsv"), tokenizer, seq_length, 2)
    dev = read_classification(str(book / "dev.tsv"), tokenizer, seq_length, 2)
    import numpy as np

    return tokenizer, train.subset(np.arange(min(train_examples, len(train)))), dev.subset(np.arange(min(eval_examples, len(dev))))


TASK_DATA = {"ner": "msra_ner/dev.tsv", "cmrc": "cmrc2018/dev.json", "c3": "c3/dev.json"}


def load_task_data(task: str, train_examples: int, eval_examples: int, seq_length: int):
    """Tokenizer and (train, eval) instances of the first examples of a task's dev file."""
    import numpy as np

    from uer.text.tokenizers import build_tokenizer

    data_path = str(SHARED / "datasets" / TASK_DATA[task])
    tokenizer = build_tokenizer("space" if task == "ner" else "bert", SHARED / "models" / "google_zh_vocab.txt")
    if task == "ner":
        from uer.finetune.tasks.ner import read_label2id, read_tagging

        data, _ = read_tagging(data_path, tokenizer, seq_length, read_label2id(str(SHARED / "datasets/msra_ner/label2id.json")))
        per_unit = 1
    elif task == "cmrc":
        from uer.finetune.tasks.mrc import read_mrc

        data, _ = read_mrc(data_path, tokenizer, seq_length, 128)
        per_unit = 1
    else:
        from uer.finetune.tasks.multiple_choice import choice_instances, read_c3_questions

        data = choice_instances(read_c3_questions(data_path, tokenizer, seq_length, 4), 4, tokenizer)
        per_unit = 4  # a question is 4 sequences
    train = data.subset(np.arange(min(len(data), train_examples * per_unit)))
    start = len(train)
    dev = data.subset(np.arange(start, min(len(data), start + eval_examples * per_unit)))
    return tokenizer, train, dev, per_unit


def task_worker(task: str, size: str, mode: str, args: argparse.Namespace) -> dict:
    """One epoch of a task's training instances and predictions for its evaluation instances (ours)."""
    if args.allocator == "tuned":
        from uer.utils.runtime import tune_cpu_allocator

        tune_cpu_allocator()
    import torch

    from uer.finetune.loop import FinetuneConfig, FineTuner, predict
    from uer.model_builder import build_model
    from uer.model_config import ModelConfig
    from uer.utils.distributed import DistContext

    tokenizer, train, dev, per_unit = load_task_data(task, args.train_examples, args.eval_examples, args.seq_length)
    cfg_json = json.loads((ROOT / SIZES[size]).read_text())
    cfg = ModelConfig(vocab_size=len(tokenizer.vocab), emb_size=cfg_json["emb_size"], hidden_size=cfg_json["hidden_size"],
                      feedforward_size=cfg_json["feedforward_size"], heads_num=cfg_json["heads_num"],
                      layers_num=cfg_json["layers_num"], dropout=0.1, target=())
    torch.manual_seed(0)
    base = build_model(cfg, with_target=False)
    if task == "ner":
        from uer.finetune.tasks.ner import Tagger

        model = Tagger(base.embedding, base.encoder, cfg.hidden_size, 7)
    elif task == "cmrc":
        from uer.finetune.tasks.mrc import SpanExtractor

        model = SpanExtractor(base.embedding, base.encoder, cfg.hidden_size)
    else:
        from uer.finetune.tasks.multiple_choice import MultipleChoice

        model = MultipleChoice(base.embedding, base.encoder, cfg.hidden_size, 4)
    pad_to = args.seq_length if mode == "padded" else None
    out = os.path.join(tempfile.mkdtemp(), "bench.bin")
    ft_cfg = FinetuneConfig(output_model_path=out, epochs_num=1, batch_size=args.batch_size, seq_length=args.seq_length,
                            learning_rate=1e-4, report_steps=10**9, seed=1, dynamic_padding=mode != "padded",
                            length_bucketing=mode == "bucketed")
    warm = train.subset(np.arange(min(len(train), 2 * args.batch_size * per_unit)))
    FineTuner(model, ft_cfg, DistContext(), tokenizer.vocab.pad_id).fit(warm)  # warm-up, untimed
    tuner = FineTuner(model, ft_cfg, DistContext(), tokenizer.vocab.pad_id)
    train_time = timed(lambda: tuner.fit(train))
    infer_time = timed(lambda: predict(model, dev, args.batch_size, tokenizer.vocab.pad_id, torch.device("cpu"), pad_to=pad_to))
    units_train, units_dev = len(train) // per_unit, len(dev) // per_unit
    return {"train": units_train / train_time[0], "infer": units_dev / infer_time[0],
            "train_cpu": units_train / train_time[1], "infer_cpu": units_dev / infer_time[1],
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "threads": torch.get_num_threads()}


def worker(impl: str, size: str, mode: str, args: argparse.Namespace) -> dict:
    """Runs in a child process: one epoch over the training subset (after a short untimed warm-up), then
    predictions for the evaluation subset."""
    if args.allocator == "tuned":
        from uer.utils.runtime import tune_cpu_allocator

        tune_cpu_allocator()
    import numpy as np
    import torch

    from uer.data.finetune_data import collate, length_sorted_batches, shuffled_batches
    from uer.training.optimizers import build_linear_schedule, build_optimizer

    tokenizer, train, dev = load_data(args.train_examples, args.eval_examples, args.seq_length)
    cfg_json = json.loads((ROOT / SIZES[size]).read_text())
    vocab_size, pad_id = len(tokenizer.vocab), tokenizer.vocab.pad_id
    pad_to = args.seq_length if mode == "padded" else None
    torch.manual_seed(0)
    warm = train.subset(np.arange(min(len(train), 3 * args.batch_size)))
    if impl == "ours":
        from uer.finetune.tasks.classifier import Classifier
        from uer.finetune.loop import FinetuneConfig, FineTuner, predict
        from uer.model_builder import build_model
        from uer.model_config import ModelConfig
        from uer.utils.distributed import DistContext

        cfg = ModelConfig(vocab_size=vocab_size, emb_size=cfg_json["emb_size"], hidden_size=cfg_json["hidden_size"],
                          feedforward_size=cfg_json["feedforward_size"], heads_num=cfg_json["heads_num"],
                          layers_num=cfg_json["layers_num"], dropout=0.1, target=())
        base = build_model(cfg, with_target=False)
        model = Classifier(base.embedding, base.encoder, cfg.hidden_size, 2)
        out = os.path.join(tempfile.mkdtemp(), "bench.bin")
        ft_cfg = FinetuneConfig(output_model_path=out, epochs_num=1, batch_size=args.batch_size,
                                seq_length=args.seq_length, learning_rate=1e-4, report_steps=10**9, seed=1,
                                dynamic_padding=mode != "padded", length_bucketing=mode in ("bucketed", "bf16"),
                                fp16=mode == "bf16")
        FineTuner(model, ft_cfg, DistContext(), pad_id).fit(warm)  # warm-up, untimed
        tuner = FineTuner(model, ft_cfg, DistContext(), pad_id)
        train_time = timed(lambda: tuner.fit(train))
        amp = torch.bfloat16 if mode == "bf16" else None
        predict(model, warm, args.batch_size, pad_id, torch.device("cpu"), amp, pad_to=pad_to)  # warm-up
        infer_time = timed(lambda: predict(model, dev, args.batch_size, pad_id, torch.device("cpu"), amp, pad_to=pad_to))
    else:
        import transformers

        hf_cfg = transformers.BertConfig(vocab_size=vocab_size, hidden_size=cfg_json["hidden_size"],
                                         num_hidden_layers=cfg_json["layers_num"], num_attention_heads=cfg_json["heads_num"],
                                         intermediate_size=cfg_json["feedforward_size"], max_position_embeddings=512,
                                         num_labels=2)
        model = transformers.BertForSequenceClassification(hf_cfg).train()

        def inputs(data, idx) -> dict:
            b = collate(data, idx, pad_id, pad_to)
            return {"input_ids": b["src"], "token_type_ids": (b["seg"] - 1).clamp_min(0),
                    "attention_mask": (b["seg"] > 0).long(), "labels": b["label"]}

        def autocast():
            return torch.autocast("cpu", dtype=torch.bfloat16, enabled=mode == "bf16")

        def epoch(data) -> None:
            rng = np.random.default_rng([1, 1])
            batches = shuffled_batches(data.lengths, args.batch_size, rng, bucketing=mode in ("bucketed", "bf16"))
            optimizer = build_optimizer(model, 1e-4)
            scheduler = build_linear_schedule(optimizer, len(batches), 0.1)
            for idx in batches:
                with autocast():
                    loss = model(**inputs(data, idx)).loss
                loss.backward()
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)

        epoch(warm)
        train_time = timed(lambda: epoch(train))

        def infer(data) -> None:
            model.eval()
            order = (length_sorted_batches(data.lengths, args.batch_size) if pad_to is None else
                     [np.arange(i, min(i + args.batch_size, len(data))) for i in range(0, len(data), args.batch_size)])
            with torch.no_grad(), autocast():
                for idx in order:
                    b = inputs(data, idx)
                    b.pop("labels")
                    model(**b).logits.argmax(-1)
            model.train()

        infer(warm)
        infer_time = timed(lambda: infer(dev))
    return {"train": len(train) / train_time[0], "infer": len(dev) / infer_time[0],
            "train_cpu": len(train) / train_time[1], "infer_cpu": len(dev) / infer_time[1],
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "threads": torch.get_num_threads()}


def timed(fn) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) of ``fn()``.

    CPU time is what a run costs when the machine is not shared: with one thread it barely moves when other
    users' jobs compete for the cores, while wall time can swing by 4x on a busy 2-core machine.
    """
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", default=["tiny", "mini"], choices=sorted(SIZES))
    parser.add_argument("--impls", nargs="+", default=["ours", "transformers"], choices=["ours", "transformers"])
    parser.add_argument("--modes", nargs="+", default=list(MODES[:3]), choices=MODES)
    parser.add_argument("--train_examples", type=int, default=1920, help="Training examples timed (one epoch).")
    parser.add_argument("--eval_examples", type=int, default=2000, help="Dev examples predicted.")
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--seq_length", type=int, default=128)
    parser.add_argument("--repeat", type=int, default=1, help="Runs per configuration; the best is reported.")
    parser.add_argument("--threads", type=int, default=1,
                        help="OMP_NUM_THREADS of the runs (0: torch's default). 1 by default: on a shared machine "
                             "threads that wait for each other make timings meaningless.")
    parser.add_argument("--allocator", choices=["tuned", "default"], default="tuned",
                        help="tuned: every implementation runs with the allocator setting our entry scripts apply "
                             "(uer/utils/runtime.py), so the comparison is between model code; default: glibc's.")
    parser.add_argument("--task", default="classification", choices=["classification", *TASK_DATA],
                        help="classification (book_review, ours vs transformers) or a task script's data (ours: padded "
                             "as UER-py vs bucketed)")
    parser.add_argument("--worker", nargs=3, metavar=("IMPL", "SIZE", "MODE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        run = worker if args.task == "classification" else lambda i, s, m, a: task_worker(a.task, s, m, a)
        print(json.dumps(run(*args.worker, args)))
        return
    if args.task != "classification":
        args.impls = ["ours"]
        args.modes = [m for m in args.modes if m in ("padded", "bucketed")] or ["padded", "bucketed"]
    data_file = SHARED / "datasets" / ("book_review/train.tsv" if args.task == "classification" else TASK_DATA[args.task])
    if not data_file.exists():
        sys.exit(f"needs {data_file} and models/google_zh_vocab.txt (the shared data beside the project)")
    what = "book_review" if args.task == "classification" else f"{args.task} ({TASK_DATA[args.task]})"
    print(f"{what}: {args.train_examples} training examples (one epoch), {args.eval_examples} dev examples predicted; "
          f"batch {args.batch_size}, seq_length {args.seq_length}; {args.allocator} allocator; best of {args.repeat}; load average {os.getloadavg()[0]:.1f}")
    # ours and transformers alternate, so both see the same load
    configs = [(size, impl, mode) for size in args.sizes for mode in args.modes for impl in args.impls]
    best: dict[tuple[str, str, str], dict] = {}
    env = dict(os.environ, **({"OMP_NUM_THREADS": str(args.threads)} if args.threads else {}))
    for _ in range(args.repeat):
        # Rounds over all configurations (not N runs of one, then the next): a burst of load from other users of
        # the machine then hurts one run of each configuration instead of every run of one of them.
        for config in configs:
            size, impl, mode = config
            cmd = [sys.executable, __file__, "--worker", impl, size, mode]
            for name in ("train_examples", "eval_examples", "batch_size", "seq_length", "allocator", "task"):
                cmd += [f"--{name}", str(getattr(args, name))]
            out = subprocess.run(cmd, capture_output=True, text=True, env=env)
            if out.returncode != 0:
                print(f"{' '.join(config)} failed:\n{out.stderr[-2000:]}")
                continue
            r = json.loads(out.stdout.strip().splitlines()[-1])
            b = best.setdefault(config, r)
            best[config] = {**{k: max(b[k], r[k]) for k in ("train", "infer", "train_cpu", "infer_cpu")},
                            "peak_rss_mb": min(b["peak_rss_mb"], r["peak_rss_mb"]), "threads": r["threads"]}
    print("examples per second of wall time, and per CPU-second in brackets (what an idle core would give with 1 thread)")
    print(f"{'size':5} {'implementation':14} {'batches':9} {'train ex/s':>18} {'infer ex/s':>18} {'peak RSS MB':>11}")
    for (size, impl, mode), r in sorted(best.items(), key=lambda kv: (args.sizes.index(kv[0][0]), kv[0][1],
                                                                     MODES.index(kv[0][2]))):
        print(f"{size:5} {impl:14} {mode:9} {r['train']:8.0f} ({r['train_cpu']:6.0f}) {r['infer']:8.0f} ({r['infer_cpu']:6.0f})"
              f" {r['peak_rss_mb']:11.0f}")
    threads = next(iter(best.values()))["threads"] if best else "?"
    print(f"torch threads: {threads}")
    if args.task == "classification":
        print(f"UER-py (measured by the issue on this machine): tiny, padded: {UER_PY_TINY['train']:.0f} train ex/s, "
              f"{UER_PY_TINY['infer']:.0f} infer ex/s; load average now {os.getloadavg()[0]:.1f}")
    else:
        for size in args.sizes:
            pair = [best.get((size, "ours", m)) for m in ("padded", "bucketed")]
            if all(pair):
                print(f"{size}: bucketed / padded = {pair[1]['train'] / pair[0]['train']:.1f}x training, "
                      f"{pair[1]['infer'] / pair[0]['infer']:.1f}x inference (wall); load average now {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
