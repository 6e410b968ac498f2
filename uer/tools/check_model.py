"""scripts/check_model.py: what a model file holds, and whether it loads with a given config.

    python3 scripts/check_model.py --load_model_path models/book_review_model.bin \\
        --config_path models/bert/base_config.json --vocab_path models/google_zh_vocab.txt

Reports the key generation (current UER-py names, 2020-era names, a DDP ``module.`` prefix, or another tool's
names), the embedding parts, the encoder kind, layers, hidden and feed-forward sizes (heads from the config
when one is given), the objectives or task heads, the parameter count (tied copies counted once), dtypes,
and every tensor holding NaN or inf. With --config_path, the model of that config is built and the file
loaded into it as pre-training loads it; missing, unexpected and mis-shaped keys are listed.
Exit status 0 when the file is sound (and loads, when a config is given), 1 otherwise.
"""
from __future__ import annotations

import argparse
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Sequence

import torch

from uer.tools.common import ToolError, config_from_args, parse, require_file, run_tool


TIED_OUTPUT_KEYS = ("target.mlm.linear_2.weight", "target.lm.output_layer.weight", "target.bilm.output_layer.weight")


@dataclass
class ModelReport:
    """What :func:`inspect_state_dict` found (printed by :meth:`lines`)."""

    path: str
    key_generation: str
    embedding: list[str]
    vocab_size: int | None
    emb_size: int | None
    max_positions: int | None
    encoder: str
    layers: int | None
    parameter_sharing: bool
    hidden_size: int | None
    feedforward_size: int | None
    heads: list[str]
    parameters: int
    dtypes: dict[str, int]
    non_finite: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        size = lambda v: "?" if v is None else str(v)  # noqa: E731
        layers = f"{size(self.layers)} layer(s)" + (" (one shared layer)" if self.parameter_sharing else "")
        return [
            f"model file: {self.path}",
            f"keys: {self.key_generation}",
            f"embedding: {' + '.join(self.embedding) or 'none'} (vocabulary {size(self.vocab_size)}, "
            f"emb_size {size(self.emb_size)}" + (f", {self.max_positions} positions" if self.max_positions else "") + ")",
            f"encoder: {self.encoder}, {layers}, hidden_size {size(self.hidden_size)}"
            + (f", feedforward_size {self.feedforward_size}" if self.feedforward_size else ""),
            f"heads: {', '.join(self.heads) or 'none (embedding + encoder only)'}",
            f"parameters: {self.parameters:,} ({', '.join(f'{n} {d}' for d, n in self.dtypes.items())} tensors)",
            "NaN/inf: " + (", ".join(self.non_finite) if self.non_finite else "none"),
        ]


def key_generation(raw_keys: Sequence[str]) -> str:
    """Which naming the file's keys follow (before the loader normalises them)."""
    from uer.model_loader import LEGACY_KEY_PREFIXES

    notes = []
    if any(key.startswith("module.") for key in raw_keys):
        notes.append("saved from a DistributedDataParallel/DataParallel wrapper ('module.' prefix; loads here)")
    stripped = [re.sub(r"^module\.", "", key) for key in raw_keys]
    if any(key.startswith(old) for key in stripped for old, _ in LEGACY_KEY_PREFIXES):
        notes.insert(0, "UER-py 2020-era names (embedding.word_embedding, target.mlm_linear_1, ...; load here, "
                        "scripts/convert_uer_legacy_to_current.py rewrites them)")
    elif any(key.startswith(("bert.", "embeddings.", "transformer.h.", "cls.predictions")) for key in stripped):
        notes.insert(0, "not UER-py names (HuggingFace?): converted on the fly when loaded (uer/hf_folder.py); "
                        "scripts/convert_*_from_huggingface_to_uer.py writes a converted file")
    elif not any(key.startswith(("embedding.", "encoder.")) for key in stripped):
        notes.insert(0, "no embedding.*/encoder.* keys: not a UER-py model file")
    else:
        notes.insert(0, "current UER-py names")
    return "; ".join(notes)


def inspect_state_dict(path: str) -> ModelReport:
    from uer.model_loader import load_state_dict

    raw = load_state_dict(path, normalize=False, finite=False)  # NaN/inf are reported, not refused
    state = load_state_dict(path, finite=False)
    keys = list(state)
    order = {"word": 0, "pos": 1, "seg": 2}
    embedding = sorted({key.split(".")[1] for key in keys if key.startswith("embedding.") and key.count(".") >= 3},
                       key=lambda part: (order.get(part, 9), part))
    word = state.get("embedding.word.embedding.weight")
    pos = state.get("embedding.pos.embedding.weight")
    encoder_parts = Counter(key.split(".")[1] for key in keys if key.startswith("encoder."))
    layer_ids = {int(m.group(1)) for key in keys if (m := re.match(r"encoder\.transformer\.(\d+)\.", key))}
    sharing = any(re.match(r"encoder\.transformer\.[a-z]", key) for key in keys)
    if "transformer" in encoder_parts:
        encoder = "transformer" + (" (pre-LN: final encoder.layer_norm)" if "layer_norm" in encoder_parts else "")
        layers = 1 if sharing else (max(layer_ids) + 1 if layer_ids else None)
        prefix = "encoder.transformer." + ("" if sharing else "0.")
        norm = state.get(prefix + "layer_norm_2.gamma")
        ff = state.get(prefix + "feed_forward.linear_1.weight")
        hidden = int(norm.shape[0]) if norm is not None else None
        feedforward = int(ff.shape[0]) if ff is not None else None
    elif encoder_parts:
        names = sorted(encoder_parts)
        encoder = ", ".join(names)
        rnn_layers = {int(m.group(1)) for key in keys if (m := re.search(r"_l(\d+)$", key))}
        layers = max(rnn_layers) + 1 if rnn_layers else None
        hidden = feedforward = None
        for key in ("encoder.rnn.weight_hh_l0", "encoder.rnn_forward.weight_hh_l0"):
            if key in state:
                hidden = int(state[key].shape[1])
    else:
        encoder, layers, hidden, feedforward = "none", None, None, None
    heads = sorted({".".join(key.split(".")[:2]) for key in keys if not key.startswith(("embedding.", "encoder."))})
    # A tied output layer is saved as a second copy of the word embedding (UER-py does the same): count it once.
    tied = [key for key in TIED_OUTPUT_KEYS if word is not None and key in state
            and state[key].shape == word.shape and torch.equal(state[key], word)]
    parameters = sum(value.numel() for key, value in state.items() if key not in tied)
    dtypes: Counter = Counter()
    non_finite = []
    for key, value in raw.items():
        dtypes[str(value.dtype).replace("torch.", "")] += 1
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            bad = int((~torch.isfinite(value)).sum())
            non_finite.append(f"{key} ({bad} of {value.numel()} values)")
    heads = [head + (" (output tied to the word embedding)" if any(k.startswith(head + ".") for k in tied) else "")
             for head in heads]
    return ModelReport(path, key_generation(list(raw)), embedding,
                       int(word.shape[0]) if word is not None else None, int(word.shape[1]) if word is not None else None,
                       int(pos.shape[0]) if pos is not None else None, encoder, layers, sharing, hidden, feedforward,
                       heads, parameters, dict(dtypes), non_finite)


def check_loading(args: argparse.Namespace, path: str, vocab_size: int) -> list[str]:
    """Problems loading ``path`` into the model of the merged config (empty when it loads)."""
    from uer.config import normalize_target
    from uer.model_builder import build_model
    from uer.model_loader import load_state_dict

    targets = None
    if getattr(args, "target", None):
        targets, _ = normalize_target(args.target, getattr(args, "data_processor", None))
    cfg = config_from_args(args, vocab_size, target=tuple(targets) if targets else None)
    state = load_state_dict(path, finite=False)
    model = build_model(cfg, with_target=bool(cfg.target))
    own = model.state_dict()
    problems = [f"shape of {key}: file {tuple(value.shape)}, config {tuple(own[key].shape)}"
                for key, value in state.items() if key in own and own[key].shape != value.shape]
    missing = [key for key in own if key not in state]
    unexpected = [key for key in state if key not in own]
    if missing:
        problems.append(f"{len(missing)} key(s) the config's model needs are missing: {', '.join(missing[:8])}"
                        + (" ..." if len(missing) > 8 else ""))
    if unexpected:
        problems.append(f"{len(unexpected)} key(s) the config's model does not have: {', '.join(unexpected[:8])}"
                        + (" ..." if len(unexpected) > 8 else ""))
    if not problems:
        return []
    heads = ("target.", "output_layer")  # pre-training targets; fine-tuned output_layer_*/output_layers_*
    only_heads = all(key.startswith(heads) for key in missing + unexpected) and not any(
        p.startswith("shape") for p in problems)
    if only_heads:
        problems.append("(embedding and encoder match: only the heads differ, which fine-tuning and "
                        "incremental pre-training accept)")
    return problems


def build_parser(prog: str) -> argparse.ArgumentParser:
    from uer import opts

    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--load_model_path", "--pretrained_model_path", "--input_model_path", dest="load_model_path",
                        required=True, help="Model file to check.")
    opts.add_model_options(parser)
    opts.add_tokenizer_options(parser)
    parser.add_argument("--target", nargs="+", default=None,
                        help="Objectives the config's model gets (default: the config's target).")
    parser.set_defaults(config_path=None)
    return parser


def main(argv: Sequence[str] | None = None, prog: str = "check_model.py") -> None:
    status = {"code": 0}

    def body(argv: Sequence[str] | None) -> None:
        from uer.hf_folder import is_hf_folder

        args = parse(build_parser(prog), argv)
        if not is_hf_folder(args.load_model_path):  # an HF model folder: inspected as our keys after conversion
            require_file(args.load_model_path, "model file (--load_model_path)")
        report = inspect_state_dict(args.load_model_path)
        print("\n".join(report.lines()))
        if report.non_finite:
            status["code"] = 1
        if not args.config_path:
            print("loading check: skipped (give --config_path and the model flags to check)")
            return
        if args.vocab_path or args.spm_model_path:
            from uer.tools.common import tokenizer_from_args

            vocab_size = len(tokenizer_from_args(args).vocab)
        elif report.vocab_size is not None:
            vocab_size = report.vocab_size
        else:
            raise ToolError("give --vocab_path: the file has no word embedding to take the vocabulary size from")
        from uer.config import model_config_from_args

        heads_num = model_config_from_args(args, vocab_size, with_target=False).heads_num
        print(f"heads (from {args.config_path}): {heads_num}")
        problems = check_loading(args, args.load_model_path, vocab_size)
        heads_only = bool(problems) and problems[-1].startswith("(embedding and encoder match")
        if problems and not heads_only:
            status["code"] = 1
        verdict = "OK" if not problems else "OK for fine-tuning" if heads_only else "FAILED"
        print(f"loading with {args.config_path}: {verdict}")
        for problem in problems:
            print("  " + problem)

    run_tool(prog, body, argv)
    if status["code"]:
        raise SystemExit(status["code"])
