"""Argparse option groups shared by the entry scripts (UER-py's flags, names unchanged).

Choices come from the registries, never retyped: the torch components' names from uer.names (the
registries check themselves against it), tokenizers and dataset kinds from their own registries, which
import no torch. This module imports no torch, no model component and no fine-tuning code: preprocess.py
loads it, and torch would add ~2 s and ~200 MB to every preprocessing run. Model options default to
``None`` where the JSON config should decide: uer.config merges defaults < JSON < flags given on the
command line.
"""
from __future__ import annotations

import argparse
from uer import names
from uer.text.segment import SEGMENTERS
from uer.text.tokenizers import parse_bool, str2tokenizer
from uer.utils.ranges import adam_beta, finite_positive_float, float_range, fraction, non_negative_float, non_negative_int, positive_int, probability, seed_int, sequence_length


def add_config_flags(group, flag_group: str) -> None:
    """The ModelConfig fields declared as flags of ``flag_group`` (uer/model_config.py: name, type, default, help
    and choices are stated there once)."""
    import typing

    from uer.model_config import ModelConfig, flag_fields

    hints = typing.get_type_hints(ModelConfig)
    for f in flag_fields(flag_group):
        kind, extra = hints[f.name], dict(f.metadata["argparse"])
        if kind is bool:
            group.add_argument(f"--{f.name}", action="store_true", help=f.metadata["help"], **extra)
            continue
        if extra.get("nargs") in ("+", "*"):
            group.add_argument(f"--{f.name}", default=list(f.default), help=f.metadata["help"], **extra)
            continue
        extra.setdefault("type", None)  # numeric flags declare their range-checked type
        group.add_argument(f"--{f.name}", default=f.default, help=f.metadata["help"], **extra)


def add_model_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("model")
    group.add_argument("--config_path", default="models/bert/base_config.json",
                       help="JSON file of model hyper-parameters; the sizes are in models/bert/ (tiny, mini, small, medium, base, large, xlarge) and models/albert/.")
    add_config_flags(group, "model")


def add_tokenizer_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("vocabulary and tokenizer")
    group.add_argument("--vocab_path", default=None, help="Vocabulary file, one token per line ([PAD] first).")
    group.add_argument("--spm_model_path", default=None, help="Sentencepiece model; its pieces are the vocabulary.")
    group.add_argument("--merges_path", default=None, help="BPE merges file (merges.txt) of --tokenizer bpe.")
    group.add_argument("--tokenizer", default="bert", choices=sorted(str2tokenizer),
                       help="Tokenizer: bert (WordPiece, or an --spm_model_path), char, space, bpe (byte-level BPE of "
                            "RoBERTa / GPT-2: --vocab_path + --merges_path), xlmroberta (XLM-R's sentencepiece ids).")
    group.add_argument("--do_lower_case", type=parse_bool, default=None, metavar="{true,false}",
                       help="Lower-case (and strip accents) before WordPiece; default: from the HF folder's "
                            "tokenizer_config.json, else from the vocabulary (a cased vocabulary is not lower-cased).")


def add_span_masking_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("span masking")
    group.add_argument("--span_masking", action="store_true", help="Mask spans of consecutive tokens (SpanBERT).")
    group.add_argument("--span_geo_prob", type=float_range(0.0, 1.0, low_open=True), default=0.2, help="p of the geometric span-length distribution.")
    group.add_argument("--span_max_length", type=positive_int, default=10, help="Longest span.")


def add_knowledge_masking_options(parser: argparse.ArgumentParser) -> None:
    """preprocess.py's ERNIE-style options: mask units and the structure-aware objectives' data."""
    group = parser.add_argument_group("knowledge masking and structure-aware objectives (ERNIE)")
    group.add_argument("--whole_word_masking", action="store_true",
                       help="Mask whole words (word boundaries found here and stored in the dataset, so dynamic "
                            "masking never segments again).")
    group.add_argument("--entity_masking", action="store_true",
                       help="Mask whole named entities and phrases first, then whole words (ERNIE 1.0).")
    group.add_argument("--segmenter", choices=SEGMENTERS, default="jieba",
                       help="Where word boundaries come from: jieba (needs the package jieba), or the spaces of "
                            "an already segmented corpus.")
    group.add_argument("--entity_dict_path", default=None,
                       help="--entity_masking: a file of phrases (one per line) that count as entities too.")
    group.add_argument("--sr_max_segments", type=positive_int, default=3,
                       help="--target sr: a paragraph is cut into 1 .. N segments that are shuffled.")


def add_optimization_options(parser: argparse.ArgumentParser) -> None:
    """One "optimisation" group: learning rate and warm-up, Adam's settings, mixed precision, then the optimiser,
    schedule and clipping choices."""
    group = parser.add_argument_group("optimisation")
    group.add_argument("--learning_rate", type=finite_positive_float, default=2e-5, help="Peak learning rate.")
    group.add_argument("--warmup", type=fraction, default=0.1, help="Fraction of total steps spent warming up.")
    group.add_argument("--beta1", type=adam_beta, default=0.9, help="Adam beta1.")
    group.add_argument("--beta2", type=adam_beta, default=0.999, help="Adam beta2.")
    group.add_argument("--weight_decay", type=non_negative_float, default=0.01, help="AdamW weight decay (not on biases and norms).")
    group.add_argument("--fp16", action="store_true",
                       help="Mixed precision (torch.amp autocast): bfloat16 on CPUs with AVX-512 BF16/AMX and on GPUs "
                            "with bfloat16, float16 + loss scaling on older GPUs; float32 weights, layer norms, "
                            "softmax and losses.")
    group.add_argument("--bf16", action="store_true",
                       help="HuggingFace's name for the same mixed precision, refused on a GPU without bfloat16.")
    group.add_argument("--fp16_opt_level", default="O1", choices=["O0", "O1", "O2", "O3"],
                       help="Apex-compatible spelling: O0 keeps float32; O1-O3 all use native autocast with float32 master weights.")
    add_optimizer_choice_options(group)


def add_training_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("training")
    group.add_argument("--dataset_path", default="dataset.pt", help="Dataset written by preprocess.py.")
    group.add_argument("--dataset_path_list", nargs="+", default=None,
                       help="Multi-task pre-training: several datasets (e.g. bert, sd and sr instances), each "
                            "micro-batch drawn from one of them; the model's --target lists every objective.")
    group.add_argument("--dataset_weights", nargs="+", type=finite_positive_float, default=None,
                       help="Sampling weight of each dataset of --dataset_path_list (default: equal).")
    group.add_argument("--dataset_stages", nargs="+", type=non_negative_int, default=None,
                       help="Continual multi-task pre-training (ERNIE 2.0): the optimiser step from which each "
                            "dataset of --dataset_path_list is drawn (default: 0 for all; one must start at 0). "
                            "A dataset stays in the mix once started.")
    group.add_argument("--task_embedding", action="store_true",
                       help="ERNIE 2.0's task embedding: a learned vector per dataset of --dataset_path_list (its "
                            "index; 0 with one dataset) added to the input embeddings.")
    group.add_argument("--pretrained_model_path", default=None, help="Model to start from (incremental pre-training).")
    group.add_argument("--output_model_path", required=True, help="Where checkpoints go (with a -STEP suffix).")
    group.add_argument("--resume_from", default=None,
                       help="Resume a run of ours from its checkpoint (e.g. models/output_model.bin-1000): "
                            "model, optimiser, scheduler, step, RNG state and data position.")
    group.add_argument("--total_steps", type=positive_int, default=100000, help="Optimiser steps.")
    group.add_argument("--save_checkpoint_steps", type=positive_int, default=10000, help="Checkpoint every N steps.")
    group.add_argument("--report_steps", type=positive_int, default=100, help="Report every N steps.")
    group.add_argument("--accumulation_steps", type=positive_int, default=1, help="Micro-batches per optimiser step.")
    group.add_argument("--batch_size", type=positive_int, default=32, help="Instances per micro-batch per process.")
    group.add_argument("--instances_buffer_size", type=positive_int, default=25600,
                       help="Instances shuffled together (consecutive chunk of the dataset).")
    group.add_argument("--seed", type=seed_int, default=7, help="Random seed.")
    add_length_bucketing_options(group)
    group.add_argument("--dev_dataset_path", default=None,
                       help="A dataset (preprocess.py, same vocabulary and kind) evaluated every --validation_steps "
                            "steps: loss, accuracy and, for token predictions, perplexity of each objective.")
    group.add_argument("--validation_steps", type=positive_int, default=None,
                       help="Evaluate --dev_dataset_path every N optimiser steps.")
    group.add_argument("--no_verify_dataset", action="store_true",
                       help="Skip the check of the dataset's array checksums at start-up (it reads the whole file "
                            "once, about a second per GB; the header is always checked).")


def add_distributed_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("distributed")
    group.add_argument("--world_size", type=positive_int, default=1, help="Total number of processes over all nodes.")
    group.add_argument("--gpu_ranks", type=non_negative_int, nargs="+", default=[],
                       help="Global ranks started on this node, one process per GPU (none: CPU).")
    group.add_argument("--master_ip", default="tcp://localhost:12345", help="tcp://host:port of rank 0.")
    group.add_argument("--backend", default="nccl", choices=["nccl", "gloo"],
                       help="torch.distributed backend (gloo for CPU processes).")
    group.add_argument("--dist_timeout", type=finite_positive_float, default=300.0,
                       help="Seconds to wait for every rank to join, and for any collective to complete, before "
                            "stopping with an error that names the rank that did not answer (torch's own "
                            "default is 30 minutes).")


def add_pretrain_target_option(parser: argparse.ArgumentParser) -> None:
    from uer.data.pretrain_instances import str2instances  # numpy-only module; imported where it is needed

    # Dataset kinds that are no objective's name stand for the objectives they are built for (bert = mlm + sp).
    kinds = {kind: builder.objectives for kind, builder in str2instances.items() if kind not in names.TARGETS}
    parser.add_argument("--target", nargs="+", default=["mlm", "sp"],
                        help=f"Objective(s): {', '.join(names.TARGETS)}, or a legacy name: "
                             + "; ".join(f"'{kind}' = {' + '.join(objs)} on {kind} data" for kind, objs in kinds.items())
                             + ".")


def add_pretrain_encoder_options(parser: argparse.ArgumentParser) -> None:
    """pretrain.py's flags of the cls and sr objectives (UER-py's names; declared in uer/model_config.py)."""
    add_config_flags(parser.add_argument_group("objectives"), "pretrain")


def add_preprocess_options(parser: argparse.ArgumentParser) -> None:
    """preprocess.py's flags (UER-py's names and defaults); --target choices come from str2instances."""
    from uer.data.instances_ernie import CORPUS_FORMATS
    from uer.data.pretrain_instances import str2instances  # numpy-only module; imported where it is needed

    group = parser.add_argument_group("preprocessing")
    group.add_argument("--corpus_path", required=True,
                       help="Corpus: bert/albert one sentence per line with a blank line between documents; "
                            "mlm one document per line.")
    group.add_argument("--dataset_path", default="dataset.pt",
                       help="Output dataset (our binary format, memory-mapped by pretrain.py; not a pickle).")
    group.add_argument("--processes_num", type=positive_int, default=1,
                       help="Worker processes; each builds the instances of a part of the corpus.")
    group.add_argument("--target", default="bert", choices=sorted(str2instances),
                       help="Objective the instances are built for.")
    group.add_argument("--docs_buffer_size", type=positive_int, default=100000,
                       help="Documents each worker holds in memory at once (bounds peak memory).")
    group.add_argument("--seq_length", type=sequence_length, default=128, help="Instance length in tokens, [CLS]/[SEP] included.")
    group.add_argument("--dup_factor", type=positive_int, default=5,
                       help="Copies of the data with different masks (static masking; 1 with --dynamic_masking).")
    group.add_argument("--short_seq_prob", type=probability, default=0.1,
                       help="bert/albert: probability of a shorter random target length.")
    group.add_argument("--full_sentences", action="store_true",
                       help="mlm: pack instances across document boundaries (RoBERTa FULL-SENTENCES).")
    group.add_argument("--seed", type=seed_int, default=7, help="Random seed (output is fixed for a given --processes_num).")
    group.add_argument("--dynamic_masking", action="store_true",
                       help="Store unmasked instances; the data loader masks them at training time (RoBERTa).")
    group.add_argument("--corpus_format", choices=CORPUS_FORMATS, default="text",
                       help="text: the target's own text format; ernie: ERNIE 1.0's tokenised lines "
                            "'token_ids;sentence_type_ids;position_ids;seg_labels;next_sentence_label' (ids of "
                            "--vocab_path; one instance a line, whole-word masking by seg_labels; --target bert "
                            "or mlm).")
    add_tokenizer_options(parser)
    add_span_masking_options(parser)
    add_knowledge_masking_options(parser)


def add_finetune_options(parser: argparse.ArgumentParser, output_model_path: str = "models/finetuned_model.bin",
                         data_paths: bool = True, zero_epochs: bool = False) -> None:
    """Fine-tuning scripts' paths and training flags (UER-py's names and defaults). ``zero_epochs``: --epochs_num 0
    is allowed (evaluation without training: prompt zero-shot)."""
    group = parser.add_argument_group("fine-tuning")
    group.add_argument("--pretrained_model_path", default=None,
                       help="Pre-trained model (embedding + encoder); random initialisation when absent.")
    group.add_argument("--output_model_path", default=output_model_path,
                       help="Where the fine-tuned model goes (the best one on dev; written atomically).")
    if data_paths:
        group.add_argument("--train_path", required=True, help="Training set (TSV with a header row).")
        group.add_argument("--dev_path", required=True, help="Development set: evaluated after each epoch.")
        group.add_argument("--test_path", default=None, help="Test set: evaluated with the best model at the end.")
    group.add_argument("--batch_size", type=positive_int, default=64,
                       help="Instances per optimiser step (global: several processes split it).")
    group.add_argument("--seq_length", type=sequence_length, default=128, help="Longest input in tokens; longer ones are truncated.")
    group.add_argument("--epochs_num", type=non_negative_int if zero_epochs else positive_int, default=3,
                       help="Passes over the training set" + (" (0: no training, evaluate the pre-trained model)."
                                                              if zero_epochs else "."))
    group.add_argument("--report_steps", type=positive_int, default=100, help="Report training loss and speed every N steps.")
    group.add_argument("--seed", type=seed_int, default=7, help="Random seed (initialisation, shuffling, dropout).")
    add_length_bucketing_options(group)
    add_input_form_option(group)


def add_device_option(parser: argparse.ArgumentParser) -> None:
    """The one device flag of inference, generation, tools and servers (training uses --gpu_ranks)."""
    parser.add_argument("--device", default="auto",
                        help="auto (the first GPU when there is one, else the CPU), cpu, cuda or cuda:N.")


BUCKET_WINDOW = 100  # batches sorted by length together (fine-tuning and pre-training)
# Pre-training batch widths are rounded up to a multiple of this: bucketed widths took every value up to
# seq_length, and the heap kept blocks of each shape (peak RSS 7-33% lower with 8, step time the same or lower;
# benchmarks/RESULTS.md, issue 21).
PAD_MULTIPLE = 8


def add_length_bucketing_options(group) -> None:
    """--length_bucketing / --no_length_bucketing: fine-tuning (run_*.py) and pre-training (pretrain.py)."""
    group.add_argument("--length_bucketing", action="store_true", default=True,
                       help=f"(The default.) Batch instances of similar length together: windows of {BUCKET_WINDOW} "
                            "batches are sorted by length, then the batch order is shuffled; each batch is padded "
                            f"to its longest instance only (pre-training: rounded up to a multiple of {PAD_MULTIPLE}). "
                            "Fine-tuning: ~3.5x faster epochs on book_review, same accuracy; pre-training: padding "
                            "19-21%% -> about 2%% of the positions on bert/mlm data of short documents. "
                            "Deterministic and exactly resumable.")
    group.add_argument("--no_length_bucketing", dest="length_bucketing", action="store_false",
                       help="Batches in plain shuffled order, as UER-py draws them.")


def add_input_form_option(group) -> None:
    """How a single text is encoded (every fine-tuning and inference script)."""
    group.add_argument("--no_closing_sep", action="store_true",
                       help="Encode a single text as [CLS] text, without the closing [SEP]: the input form of "
                            "models fine-tuned by UER-py of 2020 (and by this project before it). The default, "
                            "[CLS] text [SEP], is Google's BERT, HuggingFace's and current UER-py's.")


def add_inference_options(parser: argparse.ArgumentParser, prediction_required: bool = True) -> None:
    """inference/run_*_infer.py's paths and flags."""
    group = parser.add_argument_group("inference")
    group.add_argument("--load_model_path", required=True, help="Fine-tuned model.")
    group.add_argument("--test_path", required=True, help="File to predict (TSV with a header row).")
    group.add_argument("--prediction_path", required=prediction_required, default=None,
                       help="Where the predictions go (TSV).")
    group.add_argument("--batch_size", type=positive_int, default=64, help="Instances per forward pass.")
    group.add_argument("--seq_length", type=sequence_length, default=128, help="Longest input in tokens (as in training).")
    add_device_option(group)
    add_quantize_option(group)
    add_input_form_option(group)


QUANTIZE_MODES = ("none", "int8")  # uer.utils.quantize (which checks itself against this)


def add_quantize_option(group) -> None:
    """--quantize: every inference script (via add_inference_options), both servers and export_onnx.py."""
    group.add_argument("--quantize", choices=QUANTIZE_MODES, default="none",
                       help="int8: dynamic int8 quantization of the linear layers for CPU inference (~1.8-2x faster "
                            "than float32, within half a point of accuracy on book_review; export_onnx.py: "
                            "onnxruntime's dynamic quantization). CPU only.")

# ------------------------------------------------------------------------------------------------------
# Training experience: help text, log files, threads, optimiser and schedule choice (kept apart from the
# option groups above).

class HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """``--help`` prints the description as written (usage examples keep their lines) and every default."""


LOG_LEVELS = ("ERROR", "WARNING", "INFO", "DEBUG", "NOTSET")


def add_logging_options(parser: argparse.ArgumentParser) -> None:
    """UER-py's log flags: the console keeps --log_level, the file (--log_path) gets --log_file_level."""
    group = parser.add_argument_group("logging")
    group.add_argument("--log_path", default=None,
                       help="Also append the log to this file (with dates and levels); none when omitted.")
    group.add_argument("--log_level", choices=LOG_LEVELS, default="INFO",
                       help="Console log level (ERROR < WARNING < INFO < DEBUG < NOTSET, the last shows everything).")
    group.add_argument("--log_file_level", choices=LOG_LEVELS, default="INFO", help="Log level of --log_path.")


def add_threads_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--threads", type=positive_int, default=None,
                        help="CPU threads per process for torch's operators. Default: torch's (one per core; "
                             "with several CPU processes, the cores divided among them). On a machine other "
                             "programs keep busy, 1 is often several times faster (docs/distributed-and-performance.md).")


def add_runtime_options(parser: argparse.ArgumentParser) -> None:
    """Log files and threads: every entry script that runs a model."""
    add_logging_options(parser)
    add_threads_option(parser)


def add_optimizer_choice_options(group: argparse._ArgumentGroup) -> None:
    """--optimizer and --scheduler (UER-py's later names), into the optimisation group; choices come from the
    registries."""
    from uer.training.optimizers import OPTIMIZERS
    from uer.training.schedulers import str2scheduler

    group.add_argument("--optimizer", choices=OPTIMIZERS, default="adamw",
                       help="adamw: torch's fused AdamW (fine-tuning: UER-py's update without bias correction); "
                            "adafactor: factored second moments, --learning_rate as its step size (UER-py's settings).")
    group.add_argument("--scheduler", choices=list(str2scheduler), default="linear",
                       help="Learning-rate schedule after --warmup (formulas in uer/training/schedulers.py).")
    group.add_argument("--lr_decay", type=probability, default=0.5,
                       help="tri_stage only: fraction of the steps spent in the final exponential decay.")
    group.add_argument("--num_cycles", type=positive_int, default=1,
                       help="cosine_with_restarts only: number of cosine cycles (hard restarts).")
    group.add_argument("--max_grad_norm", type=finite_positive_float, default=None,
                       help="Clip the gradients' total L2 norm to this (after float16 unscaling, over all "
                            "accumulated micro-batches and ranks) and report the norm; 1.0 is the usual "
                            "value (HF's default). Off by default, as in UER-py.")


def add_training_curve_options(parser: argparse.ArgumentParser) -> None:
    """--tensorboard_dir (pretrain.py and the fine-tuning scripts)."""
    from uer.utils.tensorboard import add_tensorboard_option

    add_tensorboard_option(parser.add_argument_group("training curves"))


def add_checkpoint_keeping_options(parser: argparse.ArgumentParser) -> None:
    """pretrain.py: how many checkpoints and resume files stay on disk."""
    group = parser.add_argument_group("checkpoints kept")
    group.add_argument("--save_total_limit", type=positive_int, default=None,
                       help="Keep only the newest N checkpoints (the oldest is deleted once the new one is written); "
                            "all when omitted.")
    group.add_argument("--keep_trainer_state", choices=["last", "all", "none"], default="last",
                       help="The .trainer file beside each checkpoint (optimiser state for --resume_from, 1-2x the "
                            "model's size): keep the newest only, keep all, or write none (no resume).")


def add_early_stopping_option(parser: argparse.ArgumentParser) -> None:
    """Fine-tuning scripts that keep the best model on dev."""
    parser.add_argument("--early_stopping_patience", type=positive_int, default=None,
                        help="Stop after this many dev evaluations without a better dev score (the best model is "
                             "kept); train every epoch when omitted.")
    parser.add_argument("--eval_steps", type=positive_int, default=None,
                        help="Also evaluate on dev (and keep the best model) every this many optimiser steps; "
                             "by default only after each epoch.")


def add_finetune_training_options(parser: argparse.ArgumentParser, early_stopping: bool = True) -> None:
    """What every fine-tuning command shares after its task's options: optimisation (optimiser and schedule
    included), processes, early stopping (tasks that keep the best model on dev), curves and logs, threads."""
    add_optimization_options(parser)
    group = parser.add_argument_group("fine-tuning optimiser")
    group.add_argument("--adam_bias_correction", action="store_true",
                       help="AdamW with bias correction (HF's and torch's; use it with HF recipes: also --warmup 0 "
                            "--max_grad_norm 1.0). Default: UER-py's and Google BERT's Adam without it, whose early "
                            "steps are larger.")
    group.add_argument("--adam_epsilon", type=finite_positive_float, default=1e-6, help="AdamW's epsilon (HF's default: 1e-8).")
    add_distributed_options(parser)
    if early_stopping:
        add_early_stopping_option(parser)
    add_training_curve_options(parser)
    add_runtime_options(parser)
