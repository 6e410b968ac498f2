"""The command lines of ``scripts/convert_*.py``; each script calls one function here.

Flags follow UER-py's scripts: ``--input_model_path --output_model_path --layers_num`` (here taken from
the file when omitted, and checked against it when given) and ``--type bert|mlm`` (UER-py's older
spelling ``--target`` works too). Model files are read and written as ``.bin`` or ``.safetensors`` by
their name. Converters that write another tool's format can also write its config file
(``--config_output_dir``); the number of heads, which no tensor shape tells, comes from ``--heads_num``
or our ``--config_path``.
"""
from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Callable, Sequence

from uer.converters import albert, bert, google, gpt2, sbert
from uer.converters.common import ConversionError, read_state, write_state
from uer.errors import entry_point
from uer.model_loader import normalize_keys
from uer.opts import HelpFormatter, add_runtime_options
from uer.utils.io import atomic_write_text, check_outputs
from uer.utils.logging import setup_logging_from_args
from uer.utils.runtime import set_threads
from uer.utils.ranges import positive_int

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


def _run(parser: argparse.ArgumentParser, argv: Sequence[str] | None, convert: Callable[[argparse.Namespace], None]) -> None:
    """Parse, check that the output is not the input, convert; user errors end in one line (uer.errors)."""
    add_runtime_options(parser)

    @entry_point(parser.prog)
    def run() -> None:
        args = parser.parse_args(argv)
        setup_logging_from_args(args)
        set_threads(args.threads)
        # The output folder may be new (HF-style folders); the input must survive.
        check_outputs(args, outputs=("output_model_path",), inputs=("input_model_path", "config_path"),
                      create_folder=True)
        convert(args)

    run()


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
    _add_config_output(parser, "config.json")

    def convert(args: argparse.Namespace) -> None:
        chosen = kind or args.type
        options = _model_options(args)  # before the work: a bad --config_path fails fast
        state = read_state(args.input_model_path)
        if kind is None and not any(key.startswith("target.") for key in state):
            # an encoder without pre-training heads (converted from a BertModel or sentence-transformers file, or
            # taken out of a fine-tuned model): HF's bare BertModel
            logger.info("the UER file has no pre-training heads: writing a bare BertModel")
            chosen = "bare"
        hf_state = bert.uer_to_hf(state, chosen, args.layers_num)
        write_state(hf_state, args.output_model_path)
        if args.config_output_dir:
            _write_json(args.config_output_dir, "config.json", bert.hf_config(hf_state, chosen, **options))
        elif chosen in ("bert", "mlm") and not bert.mlm_weights_tied(hf_state):
            logger.warning("the MLM output weights are not tied to the word embedding: the config.json you load "
                           "this with needs \"tie_word_embeddings\": false (--config_output_dir writes one)")

    _run(parser, argv, convert)


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
                     "HF model file: pytorch_model.bin or model.safetensors.")
    _add_config_output(parser, "config.json")

    def convert(args: argparse.Namespace) -> None:
        options = _model_options(args, hidden_act="gelu_fast", layer_norm_eps=1e-5)
        hf_state = gpt2.uer_to_hf(read_state(args.input_model_path), args.layers_num)
        write_state(hf_state, args.output_model_path)
        if args.config_output_dir:
            _write_json(args.config_output_dir, "config.json", gpt2.hf_config(hf_state, **options))

    _run(parser, argv, convert)


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
    _add_config_output(parser, "config.json")

    def convert(args: argparse.Namespace) -> None:
        options = _model_options(args, hidden_act="gelu_fast")
        layers = args.layers_num
        if args.config_path and layers is None:
            from uer.config import load_json_config

            layers = load_json_config(args.config_path).get("layers_num")
        hf_state = albert.uer_to_hf(read_state(args.input_model_path), args.type)
        if args.config_output_dir:  # before writing anything: the config needs the layer count
            config = albert.hf_config(hf_state, args.type, layers_num=layers, **options)
        write_state(hf_state, args.output_model_path)
        if args.config_output_dir:
            _write_json(args.config_output_dir, "config.json", config)

    _run(parser, argv, convert)


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
