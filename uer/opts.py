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


def add_model_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("model")
    group.add_argument("--config_path", default="models/bert/base_config.json",
                       help="JSON file of model hyper-parameters; the sizes are in models/bert/ (tiny, mini, small, medium, base, large, xlarge) and models/albert/.")
    group.add_argument("--embedding", nargs="+", default=["word", "pos", "seg"],
                       help=f"Embedding parts ({', '.join(names.EMBEDDINGS)}), e.g. 'word pos seg', or a legacy "
                            f"name: {', '.join(names.EMBEDDING_ALIASES)}.")
    group.add_argument("--encoder", default="transformer",
                       choices=sorted(names.ENCODERS) + list(names.ENCODER_ALIASES),
                       help="Encoder; " + ", ".join(f"'{alias}' = {encoder} with {mask} mask"
                                                    for alias, (encoder, mask) in names.ENCODER_ALIASES.items()) + ".")
    group.add_argument("--mask", default="fully_visible", choices=names.MASKS,
                       help="Attention mask of the transformer.")
    group.add_argument("--factorized_embedding_parameterization", action="store_true",
                       help="Untie emb_size from hidden_size with a projection (ALBERT).")
    group.add_argument("--parameter_sharing", action="store_true", help="Share one layer's parameters across all layers (ALBERT).")
    group.add_argument("--tie_weights", action="store_true", help="Tie the word embedding and the MLM output weights.")
    group.add_argument("--dropout", type=float, default=0.1, help="Dropout probability.")
    group.add_argument("--layernorm_variant", default="standard", choices=names.LAYERNORM_VARIANTS,
                       help="Layer norm numerics: 'standard' (torch/Google/HF BERT) or 'uer' (UER-py-trained models).")
    group.add_argument("--bidirectional", action="store_true",
                       help="rnn/lstm/gru: bidirectional torch RNN (for a bidirectional LM use --encoder bilstm).")


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
    group.add_argument("--span_geo_prob", type=float, default=0.2, help="p of the geometric span-length distribution.")
    group.add_argument("--span_max_length", type=int, default=10, help="Longest span.")


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
    group.add_argument("--sr_max_segments", type=int, default=3,
                       help="--target sr: a paragraph is cut into 1 .. N segments that are shuffled.")


def add_optimization_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("optimisation")
    group.add_argument("--learning_rate", type=float, default=2e-5, help="Peak learning rate.")
    group.add_argument("--warmup", type=float, default=0.1, help="Fraction of total steps spent warming up.")
    group.add_argument("--beta1", type=float, default=0.9, help="Adam beta1.")
    group.add_argument("--beta2", type=float, default=0.999, help="Adam beta2.")
    group.add_argument("--weight_decay", type=float, default=0.01, help="AdamW weight decay (not on biases and norms).")
    group.add_argument("--fp16", action="store_true",
                       help="Mixed precision with torch.amp: float16 + loss scaling on CUDA, bfloat16 on CPU.")
    group.add_argument("--fp16_opt_level", default="O1", choices=["O0", "O1", "O2", "O3"],
                       help="Apex-compatible spelling: O0 keeps float32; O1-O3 all use native autocast with float32 master weights.")


def add_training_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("training")
    group.add_argument("--dataset_path", default="dataset.pt", help="Dataset written by preprocess.py.")
    group.add_argument("--dataset_path_list", nargs="+", default=None,
                       help="Multi-task pre-training: several datasets (e.g. bert, sd and sr instances), each "
                            "micro-batch drawn from one of them; the model's --target lists every objective.")
    group.add_argument("--dataset_weights", nargs="+", type=float, default=None,
                       help="Sampling weight of each dataset of --dataset_path_list (default: equal).")
    group.add_argument("--pretrained_model_path", default=None, help="Model to start from (incremental pre-training).")
    group.add_argument("--output_model_path", required=True, help="Where checkpoints go (with a -STEP suffix).")
    group.add_argument("--resume_from", default=None,
                       help="Resume a run of ours from its checkpoint (e.g. models/output_model.bin-1000): "
                            "model, optimiser, scheduler, step, RNG state and data position.")
    group.add_argument("--total_steps", type=int, default=100000, help="Optimiser steps.")
    group.add_argument("--save_checkpoint_steps", type=int, default=10000, help="Checkpoint every N steps.")
    group.add_argument("--report_steps", type=int, default=100, help="Report every N steps.")
    group.add_argument("--accumulation_steps", type=int, default=1, help="Micro-batches per optimiser step.")
    group.add_argument("--batch_size", type=int, default=32, help="Instances per micro-batch per process.")
    group.add_argument("--instances_buffer_size", type=int, default=25600,
                       help="Instances shuffled together (consecutive chunk of the dataset).")
    group.add_argument("--seed", type=int, default=7, help="Random seed.")
    group.add_argument("--no_verify_dataset", action="store_true",
                       help="Skip the check of the dataset's array checksums at start-up (it reads the whole file "
                            "once, about a second per GB; the header is always checked).")


def add_distributed_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("distributed")
    group.add_argument("--world_size", type=int, default=1, help="Total number of processes over all nodes.")
    group.add_argument("--gpu_ranks", type=int, nargs="+", default=[],
                       help="Global ranks started on this node, one process per GPU (none: CPU).")
    group.add_argument("--master_ip", default="tcp://localhost:12345", help="tcp://host:port of rank 0.")
    group.add_argument("--backend", default="nccl", choices=["nccl", "gloo"],
                       help="torch.distributed backend (gloo for CPU processes).")
    group.add_argument("--dist_timeout", type=float, default=300.0,
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
    """pretrain.py's flags for recurrent encoders and the cls objective (UER-py's names).

    Separate from add_model_options because the fine-tuning scripts define their own --bidirectional.
    """
    group = parser.add_argument_group("encoders and objectives")
    group.add_argument("--labels_num", type=int, default=None,
                       help="cls target: number of classes (default: the config's labels_num, else 2).")
    group.add_argument("--sr_max_segments", type=int, default=3,
                       help="sr target: classify the orders of up to this many segments (as preprocess.py's).")


def add_preprocess_options(parser: argparse.ArgumentParser) -> None:
    """preprocess.py's flags (UER-py's names and defaults); --target choices come from str2instances."""
    from uer.data.pretrain_instances import str2instances  # numpy-only module; imported where it is needed

    group = parser.add_argument_group("preprocessing")
    group.add_argument("--corpus_path", required=True,
                       help="Corpus: bert/albert one sentence per line with a blank line between documents; "
                            "mlm one document per line.")
    group.add_argument("--dataset_path", default="dataset.pt",
                       help="Output dataset (our binary format, memory-mapped by pretrain.py; not a pickle).")
    group.add_argument("--processes_num", type=int, default=1,
                       help="Worker processes; each builds the instances of a part of the corpus.")
    group.add_argument("--target", default="bert", choices=sorted(str2instances),
                       help="Objective the instances are built for.")
    group.add_argument("--docs_buffer_size", type=int, default=100000,
                       help="Documents each worker holds in memory at once (bounds peak memory).")
    group.add_argument("--seq_length", type=int, default=128, help="Instance length in tokens, [CLS]/[SEP] included.")
    group.add_argument("--dup_factor", type=int, default=5,
                       help="Copies of the data with different masks (static masking; 1 with --dynamic_masking).")
    group.add_argument("--short_seq_prob", type=float, default=0.1,
                       help="bert/albert: probability of a shorter random target length.")
    group.add_argument("--full_sentences", action="store_true",
                       help="mlm: pack instances across document boundaries (RoBERTa FULL-SENTENCES).")
    group.add_argument("--seed", type=int, default=7, help="Random seed (output is fixed for a given --processes_num).")
    group.add_argument("--dynamic_masking", action="store_true",
                       help="Store unmasked instances; the data loader masks them at training time (RoBERTa).")
    add_tokenizer_options(parser)
    add_span_masking_options(parser)
    add_knowledge_masking_options(parser)


def add_finetune_options(parser: argparse.ArgumentParser, output_model_path: str = "models/finetuned_model.bin",
                         data_paths: bool = True) -> None:
    """Fine-tuning scripts' paths and training flags (UER-py's names and defaults)."""
    group = parser.add_argument_group("fine-tuning")
    group.add_argument("--pretrained_model_path", default=None,
                       help="Pre-trained model (embedding + encoder); random initialisation when absent.")
    group.add_argument("--output_model_path", default=output_model_path,
                       help="Where the fine-tuned model goes (the best one on dev; written atomically).")
    if data_paths:
        group.add_argument("--train_path", required=True, help="Training set (TSV with a header row).")
        group.add_argument("--dev_path", required=True, help="Development set: evaluated after each epoch.")
        group.add_argument("--test_path", default=None, help="Test set: evaluated with the best model at the end.")
    group.add_argument("--batch_size", type=int, default=64,
                       help="Instances per optimiser step (global: several processes split it).")
    group.add_argument("--seq_length", type=int, default=128, help="Longest input in tokens; longer ones are truncated.")
    group.add_argument("--epochs_num", type=int, default=3, help="Passes over the training set.")
    group.add_argument("--report_steps", type=int, default=100, help="Report training loss and speed every N steps.")
    group.add_argument("--seed", type=int, default=7, help="Random seed (initialisation, shuffling, dropout).")
    group.add_argument("--length_bucketing", action="store_true", default=True,
                       help="(The default.) Batch training instances of similar length together: chunks of 100 random batches "
                            "are sorted by length, then the batch order is shuffled (less padding, ~3.5x faster "
                            "epochs on book_review, same accuracy). --no_length_bucketing draws batches as UER-py "
                            "does (a plain random permutation).")
    group.add_argument("--no_length_bucketing", dest="length_bucketing", action="store_false",
                       help="Training batches from a plain random permutation, as UER-py draws them.")
    add_input_form_option(group)


def add_device_option(parser: argparse.ArgumentParser) -> None:
    """The one device flag of inference, generation, tools and servers (training uses --gpu_ranks)."""
    parser.add_argument("--device", default="auto",
                        help="auto (the first GPU when there is one, else the CPU), cpu, cuda or cuda:N.")


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
    group.add_argument("--batch_size", type=int, default=64, help="Instances per forward pass.")
    group.add_argument("--seq_length", type=int, default=128, help="Longest input in tokens (as in training).")
    add_device_option(group)
    add_input_form_option(group)

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
    parser.add_argument("--threads", type=int, default=None,
                        help="CPU threads per process for torch's operators. Default: torch's (one per core; "
                             "with several CPU processes, the cores divided among them). On a machine other "
                             "programs keep busy, 1 is often several times faster (see the README).")


def add_runtime_options(parser: argparse.ArgumentParser) -> None:
    """Log files and threads: every entry script that runs a model."""
    add_logging_options(parser)
    add_threads_option(parser)


def add_optimizer_choice_options(parser: argparse.ArgumentParser) -> None:
    """--optimizer and --scheduler (UER-py's later names); choices come from the registries."""
    from uer.utils.optimizers import OPTIMIZERS
    from uer.utils.schedulers import str2scheduler

    group = parser.add_argument_group("optimiser and schedule")
    group.add_argument("--optimizer", choices=OPTIMIZERS, default="adamw",
                       help="adamw: torch's fused AdamW (fine-tuning: UER-py's update without bias correction); "
                            "adafactor: factored second moments, --learning_rate as its step size (UER-py's settings).")
    group.add_argument("--scheduler", choices=list(str2scheduler), default="linear",
                       help="Learning-rate schedule after --warmup (formulas in uer/utils/schedulers.py).")
    group.add_argument("--lr_decay", type=float, default=0.5,
                       help="tri_stage only: fraction of the steps spent in the final exponential decay.")
    group.add_argument("--num_cycles", type=int, default=1,
                       help="cosine_with_restarts only: number of cosine cycles (hard restarts).")
    group.add_argument("--max_grad_norm", type=float, default=None,
                       help="Clip the gradients' total L2 norm to this (after float16 unscaling, over all "
                            "accumulated micro-batches and ranks) and report the norm; 1.0 is the usual "
                            "value (HF's default). Off by default, as in UER-py.")


def check_optimizer_choice_options(args: argparse.Namespace) -> None:
    """An option that only one schedule reads is an error with the others (never silently ignored)."""
    from uer.errors import UsageError

    explicit = getattr(args, "explicit", set())
    if "lr_decay" in explicit and args.scheduler != "tri_stage":
        raise UsageError(f"--lr_decay applies to --scheduler tri_stage only (this run: {args.scheduler})")
    if "num_cycles" in explicit and args.scheduler != "cosine_with_restarts":
        raise UsageError(f"--num_cycles applies to --scheduler cosine_with_restarts only (this run: {args.scheduler})")


def add_training_curve_options(parser: argparse.ArgumentParser) -> None:
    """--tensorboard_dir (pretrain.py and the fine-tuning scripts)."""
    from uer.utils.tensorboard import add_tensorboard_option

    add_tensorboard_option(parser.add_argument_group("training curves"))


def add_checkpoint_keeping_options(parser: argparse.ArgumentParser) -> None:
    """pretrain.py: how many checkpoints and resume files stay on disk."""
    group = parser.add_argument_group("checkpoints kept")
    group.add_argument("--save_total_limit", type=int, default=None,
                       help="Keep only the newest N checkpoints (the oldest is deleted once the new one is written); "
                            "all when omitted.")
    group.add_argument("--keep_trainer_state", choices=["last", "all", "none"], default="last",
                       help="The .trainer file beside each checkpoint (optimiser state for --resume_from, 1-2x the "
                            "model's size): keep the newest only, keep all, or write none (no resume).")


def add_early_stopping_option(parser: argparse.ArgumentParser) -> None:
    """Fine-tuning scripts that keep the best model on dev."""
    parser.add_argument("--early_stopping_patience", type=int, default=None,
                        help="Stop after this many epochs without a better dev score (the best model is kept); "
                             "train every epoch when omitted.")


def add_finetune_training_options(parser: argparse.ArgumentParser, early_stopping: bool = True) -> None:
    """What every fine-tuning command shares after its task's options: optimisation, processes,
    optimiser/schedule choice, early stopping (tasks that keep the best model on dev), curves and logs, threads."""
    add_optimization_options(parser)
    group = parser.add_argument_group("fine-tuning optimiser")
    group.add_argument("--adam_bias_correction", action="store_true",
                       help="AdamW with bias correction (HF's and torch's; use it with HF recipes: also --warmup 0 "
                            "--max_grad_norm 1.0). Default: UER-py's and Google BERT's Adam without it, whose early "
                            "steps are larger.")
    group.add_argument("--adam_epsilon", type=float, default=1e-6, help="AdamW's epsilon (HF's default: 1e-8).")
    add_distributed_options(parser)
    add_optimizer_choice_options(parser)
    if early_stopping:
        add_early_stopping_option(parser)
    add_training_curve_options(parser)
    add_runtime_options(parser)
