"""The command lines of ``scripts/convert_*.py``; each script calls one function here.

Flags follow UER-py's scripts: ``--input_model_path --output_model_path --layers_num`` (here taken from
the file when omitted, and checked against it when given) and ``--type bert|mlm`` (UER-py's older
spelling ``--target`` works too). Model files are read and written as ``.bin`` or ``.safetensors`` by
their name. Converters to HF write a complete folder: the weights, config.json (next to them or in
``--config_output_dir``) and, from ``--vocab_path`` / ``--merges_path`` / ``--spm_model_path``, the tokenizer files
(uer/hf_folder.py); the Google converter writes bert_config.json with ``--config_output_dir``. The number of heads,
which no tensor shape tells, comes from ``--heads_num`` or our ``--config_path``.
"""
from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Callable, Sequence

from uer.converters import albert, bert, google, gpt2, roberta, sbert
from uer.converters.common import ConversionError, read_state, write_state
from uer.errors import entry_point
from uer.model_loader import normalize_keys
from uer.opts import HelpFormatter, add_runtime_options, add_tokenizer_options
from uer.utils.io import atomic_write_text, check_outputs
from uer.utils.logging import setup_logging_from_args
from uer.utils.runtime import set_threads
from uer.utils.ranges import non_negative_int, positive_int

logger = logging.getLogger(__name__)


def _parser(description: str, input_help: str, output_help: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description, formatter_class=HelpFormatter)
    parser.add_argument("--input_model_path", required=True, help=input_help)
    parser.add_argument("--output_model_path", required=True, help=output_help)
    parser.add_argument("--layers_num", type=positive_int, default=None,
                        help="Number of transformer layers; taken from the file when omitted (and checked when given).")
    return parser


def _add_type(parser: argparse.ArgumentParser, kinds: Sequence[str] = ("bert", "mlm")) -> None:
    parser.add_argument("--type", "--target", dest="type", choices=list(kinds), default=kinds[0],
                        help="bert: MLM + next-sentence heads; mlm: MLM head only.")


def _add_config_output(parser: argparse.ArgumentParser, file_name: str) -> None:
    group = parser.add_argument_group("config file of the output")
    group.add_argument("--config_output_dir", default=None,
                       help=f"Also write {file_name} describing the output model into this folder.")
    group.add_argument("--config_path", default=None,
                       help="Our JSON config of the model (heads_num, hidden_act, layer norm) for that file.")
    group.add_argument("--heads_num", type=positive_int, default=None,
                       help="Attention heads (default: from --config_path, else hidden_size / 64 as in every BERT size).")


def _add_hf_output(parser: argparse.ArgumentParser, tokenizer: str = "bert") -> None:
    """UER -> HF converters write a complete HF folder: weights, config.json and, from the vocabulary options, the
    tokenizer files (``--output_model_path`` may name the folder: the weights are then its model.safetensors)."""
    _add_config_output(parser, "config.json")
    add_tokenizer_options(parser)
    parser.set_defaults(tokenizer=tokenizer)


def _hf_output_folder(args: argparse.Namespace) -> Path:
    """Where config.json and the tokenizer files go: --config_output_dir, else the weights' folder."""
    path = Path(args.output_model_path)
    if path.suffix not in (".bin", ".safetensors", ".pt"):  # a folder: HF's file name inside it
        args.output_model_path = str(path / "model.safetensors")
    return Path(args.config_output_dir or Path(args.output_model_path).parent)


def _run(parser: argparse.ArgumentParser, argv: Sequence[str] | None, convert: Callable[[argparse.Namespace], None],
         hf_output: bool = False) -> None:
    """Parse, check that the output is not the input, convert; user errors end in one line (uer.errors)."""
    add_runtime_options(parser)

    @entry_point(parser.prog)
    def run() -> None:
        args = parser.parse_args(argv)
        setup_logging_from_args(args)
        set_threads(args.threads)
        extra = {}
        if hf_output:
            args.hf_folder = _hf_output_folder(args)
            extra = {name: str(args.hf_folder / name) for name in (
                "config.json", "vocab.txt", "vocab.json", "merges.txt", "sentencepiece.bpe.model",
                "tokenizer_config.json", "special_tokens_map.json")}
        # The output folder may be new (HF-style folders); the input must survive.
        check_outputs(args, outputs=("output_model_path",), extra_outputs=extra, create_folder=True,
                      inputs=("input_model_path", "config_path", "vocab_path", "spm_model_path", "merges_path"))
        convert(args)

    run()


def _output_tokenizer(args: argparse.Namespace):
    """The tokenizer whose files the HF folder gets (None without --vocab_path / --spm_model_path)."""
    if not (args.vocab_path or args.spm_model_path):
        return None
    from uer.text.tokenizers import tokenizer_from_args

    return tokenizer_from_args(args, require_specials=())


def _write_hf_folder(args: argparse.Namespace, config: dict, tokenizer, max_length: int) -> None:
    """config.json and the tokenizer files next to the weights (the vocabulary must fit the embedding)."""
    folder = Path(args.hf_folder)
    folder.mkdir(parents=True, exist_ok=True)
    _write_json(str(folder), "config.json", config)
    if tokenizer is None:
        logger.warning("no --vocab_path / --spm_model_path: %s has no tokenizer files; AutoTokenizer.from_pretrained "
                       "needs them (give the vocabulary the model was trained with)", folder)
        return
    from uer.hf_folder import write_tokenizer_files

    written = write_tokenizer_files(folder, tokenizer, config["model_type"], max_length)
    logger.info("wrote %s to %s", ", ".join(written), folder)


def _check_vocab_size(tokenizer, config: dict) -> None:
    if tokenizer is not None and len(tokenizer.vocab) != config["vocab_size"]:
        raise ConversionError(f"the vocabulary has {len(tokenizer.vocab)} tokens but the model's word embedding "
                              f"{config['vocab_size']} rows: not the vocabulary the model was trained with")


def _model_options(args: argparse.Namespace, hidden_act: str = "gelu", layer_norm_eps: float = 1e-12) -> dict:
    """heads_num, hidden_act and layer norm epsilon for the output's config file."""
    options = {"heads_num": args.heads_num, "hidden_act": hidden_act, "layer_norm_eps": layer_norm_eps}
    if args.config_path:
        from uer.config import ConfigError, load_json_config

        try:
            config = load_json_config(args.config_path)
        except ConfigError as err:
            raise ConversionError(str(err)) from None
        options["heads_num"] = args.heads_num or config.get("heads_num")
        options["hidden_act"] = config.get("hidden_act", hidden_act)
        if config.get("layernorm_variant") == "uer":
            logger.warning("%s selects UER-py's layer norm variant; other tools compute the standard one, "
                           "so activations will differ by up to ~1e-2", args.config_path)
        elif config.get("layernorm_eps") is not None:
            options["layer_norm_eps"] = float(config["layernorm_eps"])
    else:  # a model fine-tuned by this project remembers its config (uer.model_meta)
        from uer import model_meta

        record = model_meta.read(args.input_model_path)
        recorded = record["options"] if record else {}
        if args.heads_num and recorded.get("heads_num") not in (None, args.heads_num):
            raise ConversionError(f"--heads_num {args.heads_num} contradicts the model, which was trained with "
                                  f"--heads_num {recorded['heads_num']} ({model_meta.record_path(args.input_model_path)})")
        options["heads_num"] = args.heads_num or recorded.get("heads_num")
        options["hidden_act"] = recorded.get("hidden_act", hidden_act)
    return options


def _write_json(folder: str, name: str, config: dict) -> None:
    path = Path(folder) / name
    atomic_write_text(path, json.dumps(config, indent=2, sort_keys=True) + "\n")
    logger.info("wrote %s", path)


def bert_huggingface_to_uer(argv: Sequence[str] | None = None, kind: str | None = None) -> None:
    """HF BERT (BertModel / BertForPreTraining / BertForMaskedLM, or a task model when ``kind`` is given) -> ours."""
    what = "BERT" if kind is None else kind.replace("_", " ")
    parser = _parser(f"Convert a HuggingFace {what} model file to UER format.",
                     "HF model file (pytorch_model.bin, model.safetensors) or the folder holding it.",
                     "Output file in UER format (.bin, or .safetensors).")
    if kind is None:
        _add_type(parser)

    def convert(args: argparse.Namespace) -> None:
        state = read_state(args.input_model_path, normalize=False)
        write_state(bert.hf_to_uer(state, kind or args.type, args.layers_num), args.output_model_path)

    _run(parser, argv, convert)


def bert_uer_to_huggingface(argv: Sequence[str] | None = None, kind: str | None = None) -> None:
    """Ours -> HF BertForPreTraining / BertForMaskedLM (or the task class of ``kind``)."""
    what = "BERT" if kind is None else kind.replace("_", " ")
    parser = _parser(f"Convert a UER-format {what} model file to HuggingFace format.",
                     "Model file in UER format (either key generation).",
                     "HF model file: pytorch_model.bin or model.safetensors (the names from_pretrained looks for).")
    if kind is None:
        _add_type(parser)
    _add_hf_output(parser)

    def convert(args: argparse.Namespace) -> None:
        chosen = kind or args.type
        options = _model_options(args)  # before the work: a bad --config_path or vocabulary fails fast
        tokenizer = _output_tokenizer(args)
        state = read_state(args.input_model_path)
        if kind is None and not any(key.startswith(("target.mlm.", "target.sp.linear_2.")) for key in state):
            # an encoder without pre-training heads (converted from a BertModel or sentence-transformers file, its
            # pooler kept as target.sp.linear_1, or taken out of a fine-tuned model): HF's bare BertModel
            logger.info("the UER file has no pre-training heads: writing a bare BertModel")
            chosen = "bare"
        hf_state = bert.uer_to_hf(state, chosen, args.layers_num)
        config = bert.hf_config(hf_state, chosen, **options)
        _check_vocab_size(tokenizer, config)
        write_state(hf_state, args.output_model_path)
        _write_hf_folder(args, config, tokenizer, config["max_position_embeddings"])

    _run(parser, argv, convert, hf_output=True)


def bert_google_to_uer(argv: Sequence[str] | None = None) -> None:
    """Google's TF BERT checkpoint -> ours."""
    parser = _parser("Convert Google's TensorFlow BERT checkpoint to UER format (needs tensorflow-cpu).",
                     "TF checkpoint prefix, e.g. models/chinese_L-12_H-768_A-12/bert_model.ckpt.",
                     "Output file in UER format (.bin, or .safetensors).")
    _add_type(parser)

    def convert(args: argparse.Namespace) -> None:
        variables = google.read_tf_checkpoint(args.input_model_path)
        write_state(google.google_to_uer(variables, args.type, args.layers_num), args.output_model_path)

    _run(parser, argv, convert)


def bert_uer_to_google(argv: Sequence[str] | None = None) -> None:
    """Ours -> Google's TF BERT checkpoint."""
    parser = _parser("Convert a UER-format BERT model file to Google's TensorFlow checkpoint (needs tensorflow-cpu).",
                     "Model file in UER format (either key generation).",
                     "TF checkpoint prefix to write, e.g. models/output_model.ckpt (.index and .data-* files).")
    _add_type(parser)
    _add_config_output(parser, "bert_config.json")

    def convert(args: argparse.Namespace) -> None:
        options = _model_options(args)
        hf_state = bert.uer_to_hf(read_state(args.input_model_path), args.type, args.layers_num)
        google.write_tf_checkpoint(google.hf_state_to_google(hf_state), args.output_model_path)
        if args.config_output_dir:
            config = bert.hf_config(hf_state, args.type, **options)
            _write_json(args.config_output_dir, "bert_config.json", google.google_config(config))

    _run(parser, argv, convert)


def gpt2_huggingface_to_uer(argv: Sequence[str] | None = None) -> None:
    """HF GPT2LMHeadModel (or GPT2Model) -> ours (causal transformer, pre-LayerNorm, lm target)."""
    parser = _parser("Convert a HuggingFace GPT-2 model file to UER format (use it with models/gpt2/config.json).",
                     "HF model file (pytorch_model.bin, model.safetensors) or the folder holding it.",
                     "Output file in UER format (.bin, or .safetensors).")

    def convert(args: argparse.Namespace) -> None:
        state = read_state(args.input_model_path, normalize=False)
        write_state(gpt2.hf_to_uer(state, args.layers_num), args.output_model_path)

    _run(parser, argv, convert)


def gpt2_uer_to_huggingface(argv: Sequence[str] | None = None) -> None:
    """Ours (causal transformer, pre-LayerNorm, lm target) -> HF GPT2LMHeadModel."""
    parser = _parser("Convert a UER-format GPT-2 model file to HuggingFace's GPT2LMHeadModel.",
                     "Model file in UER format (either key generation).",
                     "HF model file: pytorch_model.bin or model.safetensors (or the folder to write).")
    _add_hf_output(parser, tokenizer="bpe")

    def convert(args: argparse.Namespace) -> None:
        options = _model_options(args, hidden_act="gelu_fast", layer_norm_eps=1e-5)
        tokenizer = _output_tokenizer(args)
        hf_state = gpt2.uer_to_hf(read_state(args.input_model_path), args.layers_num)
        config = gpt2.hf_config(hf_state, **options)
        _check_vocab_size(tokenizer, config)
        write_state(hf_state, args.output_model_path)
        _write_hf_folder(args, config, tokenizer, config["n_positions"])

    _run(parser, argv, convert, hf_output=True)


def albert_huggingface_to_uer(argv: Sequence[str] | None = None) -> None:
    """HF AlbertModel / AlbertForPreTraining / AlbertForMaskedLM -> ours (use with an ALBERT config)."""
    parser = _parser("Convert a HuggingFace ALBERT model file to UER format (--factorized_embedding_parameterization "
                     "--parameter_sharing, an ALBERT config).",
                     "HF model file (pytorch_model.bin, model.safetensors) or the folder holding it.",
                     "Output file in UER format (.bin, or .safetensors).")
    _add_type(parser, ("albert", "mlm"))

    def convert(args: argparse.Namespace) -> None:
        state = read_state(args.input_model_path, normalize=False)
        write_state(albert.hf_to_uer(state, args.type), args.output_model_path)

    _run(parser, argv, convert)


def albert_uer_to_huggingface(argv: Sequence[str] | None = None) -> None:
    """Ours (ALBERT) -> HF AlbertForPreTraining (--type albert) or AlbertForMaskedLM (--type mlm)."""
    parser = _parser("Convert a UER-format ALBERT model file to HuggingFace's AlbertForPreTraining / AlbertForMaskedLM.",
                     "Model file in UER format (factorized embeddings, one shared layer).",
                     "HF model file: pytorch_model.bin or model.safetensors.")
    _add_type(parser, ("albert", "mlm"))
    _add_hf_output(parser)

    def convert(args: argparse.Namespace) -> None:
        options = _model_options(args, hidden_act="gelu_fast")
        tokenizer = _output_tokenizer(args)
        layers = args.layers_num
        if args.config_path and layers is None:
            from uer.config import load_json_config

            layers = load_json_config(args.config_path).get("layers_num")
        hf_state = albert.uer_to_hf(read_state(args.input_model_path), args.type)
        if layers is None:  # shared layers: the count is in no tensor
            if args.config_output_dir:
                raise ConversionError("ALBERT's number of layers is not in its tensors (they are shared): give "
                                      "--config_path or --layers_num")
            logger.warning("no --config_path or --layers_num: ALBERT's layer count is in no tensor, so no config.json "
                           "or tokenizer files are written (only the weights)")
            write_state(hf_state, args.output_model_path)
            return
        config = albert.hf_config(hf_state, args.type, layers_num=layers, **options)  # before writing anything
        _check_vocab_size(tokenizer, config)
        write_state(hf_state, args.output_model_path)
        _write_hf_folder(args, config, tokenizer, config["max_position_embeddings"])

    _run(parser, argv, convert, hf_output=True)


def uer_legacy_to_current(argv: Sequence[str] | None = None) -> None:
    """2020-era UER-py key names -> current ones (the tensors are unchanged)."""
    parser = argparse.ArgumentParser(description="Rewrite a UER-py model file keyed with 2020-era names "
                                                 "(embedding.word_embedding, target.mlm_linear_1, ...) to current names.",
                                     formatter_class=HelpFormatter)
    parser.add_argument("--input_model_path", required=True, help="Model file with old (or current) UER key names.")
    parser.add_argument("--output_model_path", required=True, help="Output file (.bin, or .safetensors).")

    def convert(args: argparse.Namespace) -> None:
        old = read_state(args.input_model_path, normalize=False)
        new = normalize_keys(old)
        renamed = sum(1 for before, after in zip(old, new) if before != after)
        write_state(new, args.output_model_path)
        logger.info("renamed %d of %d keys", renamed, len(old))

    _run(parser, argv, convert)


def sbert_huggingface_to_uer(argv: Sequence[str] | None = None) -> None:
    """sentence-transformers (its BertModel weights) -> our siamese file (both towers)."""
    parser = _parser("Convert a sentence-transformers BERT model (HF BertModel weights) to a UER-format siamese model "
                     "(run_classifier_siamese.py; both towers).",
                     "The sentence-transformers model folder, or its model.safetensors / pytorch_model.bin.",
                     "Output file in UER format (.bin, or .safetensors).")

    def convert(args: argparse.Namespace) -> None:
        state = read_state(args.input_model_path, normalize=False)
        write_state(sbert.hf_to_uer(state, args.layers_num), args.output_model_path)

    _run(parser, argv, convert)


def roberta_huggingface_to_uer(argv: Sequence[str] | None = None, model_type: str = "roberta") -> None:
    """HF RoBERTa / XLM-R (RobertaForMaskedLM, RobertaModel, task models) -> ours."""
    name = "XLM-R" if model_type == "xlm-roberta" else "RoBERTa"
    parser = _parser(f"Convert a HuggingFace {name} model file (or folder) to UER format (positions shifted by "
                     "fairseq's padding offset; one token type).",
                     "HF model file (pytorch_model.bin, model.safetensors) or the folder holding it.",
                     "Output file in UER format (.bin, or .safetensors).")
    parser.add_argument("--type", choices=list(roberta.KINDS), default="mlm",
                        help="Heads: mlm (RobertaForMaskedLM), bare (RobertaModel), or a task model's.")
    parser.add_argument("--pad_token_id", type=non_negative_int, default=1, help="The HF config's pad_token_id (positions start "
                                                                    "after it).")

    def convert(args: argparse.Namespace) -> None:
        state = read_state(args.input_model_path, normalize=False)
        write_state(roberta.hf_to_uer(state, args.type, args.pad_token_id), args.output_model_path)

    _run(parser, argv, convert)


def sbert_uer_to_huggingface(argv: Sequence[str] | None = None) -> None:
    """Our siamese file -> HF BertModel weights (tower 0) for a sentence-transformers folder."""
    parser = _parser("Convert a UER-format siamese model (run_classifier_siamese.py, convert_sbert_from_huggingface_to_uer.py) "
                     "to HF BertModel weights: tower 0, for a sentence-transformers model folder.",
                     "Model file in UER format (siamese, either spelling, or a single tower).",
                     "HF model file: model.safetensors or pytorch_model.bin (the names sentence-transformers loads).")
    _add_config_output(parser, "config.json")

    def convert(args: argparse.Namespace) -> None:
        options = _model_options(args)
        hf_state = sbert.uer_to_hf(read_state(args.input_model_path), args.layers_num)
        write_state(hf_state, args.output_model_path)
        if args.config_output_dir:
            config = bert.hf_config(hf_state, "bare", **options)
            _write_json(args.config_output_dir, "config.json", config)

    _run(parser, argv, convert)


def roberta_uer_to_huggingface(argv: Sequence[str] | None = None, model_type: str = "roberta") -> None:
    """Ours -> HF RoBERTa / XLM-R folder (weights, config.json, tokenizer files)."""
    name = "XLM-R" if model_type == "xlm-roberta" else "RoBERTa"
    parser = _parser(f"Convert a UER-format {name} model file to a HuggingFace folder.",
                     "Model file in UER format (either key generation).",
                     "HF model file (model.safetensors, pytorch_model.bin) or the folder to write.")
    parser.add_argument("--type", choices=list(roberta.KINDS), default="mlm",
                        help="Heads: mlm (RobertaForMaskedLM), bare (RobertaModel), or a task model's.")
    _add_hf_output(parser, tokenizer="xlmroberta" if model_type == "xlm-roberta" else "bpe")

    def convert(args: argparse.Namespace) -> None:
        options = _model_options(args, layer_norm_eps=1e-5)
        tokenizer = _output_tokenizer(args)
        hf_state = roberta.uer_to_hf(read_state(args.input_model_path), args.type)
        config = roberta.hf_config(hf_state, args.type, model_type, **options)
        _check_vocab_size(tokenizer, config)
        write_state(hf_state, args.output_model_path)
        _write_hf_folder(args, config, tokenizer, config["max_position_embeddings"] - 2)

    _run(parser, argv, convert, hf_output=True)


def xlmroberta_huggingface_to_uer(argv: Sequence[str] | None = None) -> None:
    """HF XLM-R -> ours (the RoBERTa converter; console scripts call functions without arguments)."""
    roberta_huggingface_to_uer(argv, model_type="xlm-roberta")


def xlmroberta_uer_to_huggingface(argv: Sequence[str] | None = None) -> None:
    """Ours -> HF XLM-R folder."""
    roberta_uer_to_huggingface(argv, model_type="xlm-roberta")
