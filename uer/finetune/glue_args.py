r"""run_glue.py's flags: HuggingFace's run_glue command line, mapped onto the glue task's (uer/finetune/tasks/glue.py);
the command is ``uer.cli.finetune.run_glue``.

    python3 run_glue.py --model_type BERT --model_name_or_path all-MiniLM-L6-v2/ --task_name MRPC --do_train \
        --do_eval --data_dir glue/MRPC/ --max_seq_length 128 --learning_rate 2e-5 --num_train_epochs 1.0 \
        --output_dir out/mrpc --overwrite_output_dir

The flags are HF's; each is mapped onto the task's option of the same meaning (``uer-finetune --task glue``),
so both commands train the same way. Differences from HF, by design: nothing is downloaded
(--model_name_or_path is a local folder); training runs on one device (the first GPU when there is one, else
the CPU) or on every visible GPU with DDP, the batch being per-device size x devices x accumulation steps as
in HF; --gradient_accumulation_steps takes one optimiser step on the whole accumulated batch (the same update,
the memory of the whole batch).
"""
from __future__ import annotations

import argparse

from uer.errors import UsageError
from uer.utils.ranges import (finite_positive_float, fraction, non_negative_float, non_negative_int, positive_int,
                               seed_int, sequence_length)

PROG = "run_glue.py"


def build_parser() -> argparse.ArgumentParser:
    from uer.finetune.tasks.glue import GLUE_TASKS
    from uer.opts import HelpFormatter

    parser = argparse.ArgumentParser(prog=PROG, description=__doc__, formatter_class=HelpFormatter)
    model = parser.add_argument_group("model and data")
    model.add_argument("--model_type", required=True, type=str.lower, choices=["bert"],
                       help="The model's architecture (BERT, and BERT-shaped folders such as MiniLM).")
    model.add_argument("--model_name_or_path", required=True,
                       help="A local HuggingFace model folder (config.json, weights, vocab.txt).")
    model.add_argument("--task_name", required=True, type=str.lower, choices=list(GLUE_TASKS),
                       help="The GLUE task (any case).")
    model.add_argument("--data_dir", required=True, help="The task's folder of GLUE files.")
    model.add_argument("--output_dir", required=True, help="Where the fine-tuned HF folder and results go.")
    model.add_argument("--overwrite_output_dir", action="store_true", help="Write into a non-empty --output_dir.")
    model.add_argument("--max_seq_length", type=sequence_length, default=128, help="Longest input in tokens (after truncation).")
    model.add_argument("--do_lower_case", action="store_true",
                       help="Lower-case the input (default: the folder's tokenizer_config.json decides).")
    what = parser.add_argument_group("what to do")
    what.add_argument("--do_train", action="store_true", help="Fine-tune on train.tsv.")
    what.add_argument("--do_eval", action="store_true", help="Evaluate on the dev file(s).")
    what.add_argument("--do_predict", action="store_true", help="Write GLUE's submission files for the test file(s).")
    train = parser.add_argument_group("training (HF's defaults)")
    for name in ("per_device_train_batch_size", "per_gpu_train_batch_size"):
        train.add_argument(f"--{name}", type=positive_int, default=None, help="Training batch per device (default 8).")
    for name in ("per_device_eval_batch_size", "per_gpu_eval_batch_size"):
        train.add_argument(f"--{name}", type=positive_int, default=None, help="Evaluation batch per device (default 8).")
    train.add_argument("--gradient_accumulation_steps", type=positive_int, default=1,
                       help="Batches per optimiser step (one step on the whole batch here).")
    train.add_argument("--learning_rate", type=finite_positive_float, default=5e-5, help="Peak learning rate (AdamW).")
    train.add_argument("--weight_decay", type=non_negative_float, default=0.0, help="AdamW weight decay (not biases, norms).")
    train.add_argument("--adam_epsilon", type=finite_positive_float, default=1e-8, help="AdamW's epsilon.")
    train.add_argument("--max_grad_norm", type=finite_positive_float, default=1.0, help="Gradient clipping norm.")
    train.add_argument("--num_train_epochs", type=finite_positive_float, default=3.0, help="Passes over the training set.")
    train.add_argument("--max_steps", type=positive_int, default=None, help="Optimiser steps; overrides the epochs.")
    train.add_argument("--warmup_steps", type=non_negative_int, default=None, help="Linear warm-up steps (default 0).")
    train.add_argument("--warmup_ratio", type=fraction, default=None, help="Warm-up as a fraction of the steps.")
    train.add_argument("--seed", type=seed_int, default=42, help="Random seed.")
    train.add_argument("--fp16", action="store_true", help="Mixed precision (float16 on CUDA, bfloat16 on CPU).")
    train.add_argument("--fp16_opt_level", default="O1", choices=["O0", "O1", "O2", "O3"],
                       help="Apex's spelling; O1-O3 are native autocast.")
    train.add_argument("--logging_steps", type=positive_int, default=500, help="Log the training loss every N steps.")
    train.add_argument("--save_steps", type=non_negative_int, default=0,
                       help="Write --output_dir/checkpoint-N (an HF folder) every N steps; 0: none (HF: 500).")
    train.add_argument("--group_by_length", action="store_true", default=True,
                       help="(Our default.) Batch instances of similar lengths together (our length bucketing: about "
                            "2x faster epochs than HF's Trainer on SST-2).")
    train.add_argument("--no_group_by_length", dest="group_by_length", action="store_false",
                       help="Random training batches, as HF's Trainer draws them by default.")
    train.add_argument("--no_cuda", action="store_true", help="Train on the CPU even when a GPU is visible.")
    from uer.opts import add_runtime_options

    add_runtime_options(parser)
    return parser


def task_argv(args: argparse.Namespace) -> list[str]:
    """The ``uer-finetune --task glue`` command line of a run_glue command line."""
    import torch

    if args.per_device_train_batch_size is not None and args.per_gpu_train_batch_size is not None:
        raise UsageError("give --per_device_train_batch_size or --per_gpu_train_batch_size, not both")
    if args.per_device_eval_batch_size is not None and args.per_gpu_eval_batch_size is not None:
        raise UsageError("give --per_device_eval_batch_size or --per_gpu_eval_batch_size, not both")
    if args.warmup_steps is not None and args.warmup_ratio is not None:
        raise UsageError("give --warmup_steps or --warmup_ratio, not both")
    if args.gradient_accumulation_steps < 1:
        raise UsageError(f"--gradient_accumulation_steps must be at least 1, got {args.gradient_accumulation_steps}")
    from uer.hf_folder import HFFolder, is_hf_folder

    if not is_hf_folder(args.model_name_or_path):
        raise UsageError(f"--model_name_or_path {args.model_name_or_path}: not a local HF model folder (config.json "
                         "and weights); nothing is downloaded")
    folder = HFFolder(args.model_name_or_path)
    if folder.model_type != args.model_type:
        raise UsageError(f"--model_type {args.model_type}, but {folder.path} holds a {folder.model_type!r} model "
                         "(run_glue.py fine-tunes BERT-shaped folders: BERT, MiniLM, sentence-transformers BertModel)")
    devices = torch.cuda.device_count() if torch.cuda.is_available() and not args.no_cuda else 1
    per_device = args.per_device_train_batch_size or args.per_gpu_train_batch_size or 8
    if per_device < 1:
        raise UsageError(f"the training batch size must be positive, got {per_device}")
    argv = ["--glue_task", args.task_name, "--data_dir", args.data_dir, "--output_dir", args.output_dir,
            "--pretrained_model_path", args.model_name_or_path, "--seq_length", str(args.max_seq_length),
            "--batch_size", str(per_device * max(1, devices) * args.gradient_accumulation_steps),
            "--eval_batch_size", str(args.per_device_eval_batch_size or args.per_gpu_eval_batch_size or 8),
            "--learning_rate", repr(args.learning_rate), "--weight_decay", repr(args.weight_decay),
            "--adam_epsilon", repr(args.adam_epsilon), "--max_grad_norm", repr(args.max_grad_norm),
            "--num_train_epochs", repr(args.num_train_epochs), "--seed", str(args.seed),
            "--report_steps", str(args.logging_steps), "--save_steps", str(args.save_steps),
            "--fp16_opt_level", args.fp16_opt_level, "--log_level", args.log_level,
            "--log_file_level", args.log_file_level]
    argv.append("--length_bucketing" if args.group_by_length else "--no_length_bucketing")
    for flag in ("do_train", "do_eval", "do_predict", "overwrite_output_dir", "fp16"):
        if getattr(args, flag):
            argv.append(f"--{flag}")
    if args.do_lower_case:
        argv += ["--do_lower_case", "true"]  # else the folder's tokenizer_config.json (or its vocabulary) decides
    if args.max_steps is not None:
        argv += ["--max_steps", str(args.max_steps)]
    if args.warmup_steps is not None:
        argv += ["--warmup_steps", str(args.warmup_steps)]
    if args.warmup_ratio is not None:
        argv += ["--warmup", repr(args.warmup_ratio)]
    if args.log_path:
        argv += ["--log_path", args.log_path]
    if args.threads is not None:
        argv += ["--threads", str(args.threads)]
    return argv
