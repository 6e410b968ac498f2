"""Text generation with a model pre-trained with the lm target (scripts/generate.py, scripts/generate_lm.py).

Decoding: greedy (``top_k == 1``), or sampling from the temperature-scaled distribution restricted to
the ``top_k`` most likely tokens and/or the smallest set whose probability reaches ``top_p``.

Cost: a causal transformer keeps the keys and values of every position it has seen
(:class:`uer.layers.multi_headed_attn.KVCache`), so each new token runs the layers on one position.
Other encoders (LSTM, GatedCNN, ...) are re-run on the whole sequence for each token: correct for any
causal encoder, and cheap at the lengths generation uses here.
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Sequence

from uer.utils.runtime import prefer_passive_openmp_wait

prefer_passive_openmp_wait()  # before torch loads OpenMP: scripts/generate.py imports this module first

import torch  # noqa: E402

from uer.encoders.transformer_encoder import TransformerEncoder
from uer.models.model import Model
from uer.utils.ranges import finite_positive_float, non_negative_int, probability, seed_int, sequence_length


@dataclass(frozen=True)
class SamplingConfig:
    """How the next token is chosen.

    Args:
        top_k: keep the k most likely tokens (0 = no limit; 1 = greedy decoding).
        top_p: keep the most likely tokens until their probability reaches top_p (0 = no limit).
        temperature: divides the logits before sampling (< 1 sharper, > 1 flatter).
    """

    top_k: int = 0
    top_p: float = 0.0
    temperature: float = 1.0

    def __post_init__(self) -> None:
        if self.top_k < 0:
            raise ValueError(f"top_k must be >= 0, got {self.top_k}")
        if not 0.0 <= self.top_p <= 1.0:
            raise ValueError(f"top_p must be in [0, 1], got {self.top_p}")
        if self.temperature <= 0.0:
            raise ValueError(f"temperature must be > 0, got {self.temperature}")

    @property
    def greedy(self) -> bool:
        return self.top_k == 1


def filter_logits(logits: torch.Tensor, top_k: int, top_p: float) -> torch.Tensor:
    """[vocab_size] logits with every token outside the top-k / top-p set at -inf."""
    logits = logits.clone()
    if 0 < top_k < logits.shape[-1]:
        kth = torch.topk(logits, top_k).values[-1]
        logits[logits < kth] = float("-inf")
    if 0.0 < top_p < 1.0:
        ordered, order = torch.sort(logits, descending=True)
        before = torch.softmax(ordered, dim=-1).cumsum(-1) - torch.softmax(ordered, dim=-1)
        # Drop a token when the ones before it already reach top_p: the most likely token always stays.
        logits[order[before >= top_p]] = float("-inf")
    return logits


def choose(logits: torch.Tensor, sampling: SamplingConfig, generator: torch.Generator | None) -> int:
    """The next token id from [vocab_size] logits."""
    if sampling.greedy:
        return int(logits.argmax())
    probs = torch.softmax(filter_logits(logits.float() / sampling.temperature, sampling.top_k, sampling.top_p), -1)
    return int(torch.multinomial(probs, 1, generator=generator))


class LmGenerator:
    """Continues token sequences with ``model`` (embedding + causal encoder + an ``lm`` target).

    Args:
        model: built with the lm target, weights loaded; put in eval mode here.
        use_cache: use the key/value cache when the encoder is a causal transformer (False re-runs the
            whole sequence every step; the tests compare the two).
    """

    def __init__(self, model: Model, use_cache: bool = True) -> None:
        if model.target is None or "lm" not in model.target.names:
            raise ValueError("generation needs a model with the lm target (pre-trained with --target lm)")
        self.model = model.eval()
        self.lm = model.target.lm
        encoder = model.encoder
        self.cached = use_cache and isinstance(encoder, TransformerEncoder) and encoder.mask == "causal"
        if not getattr(encoder, "causal", False):
            raise ValueError(f"the {type(encoder).__name__} is not causal (it sees later tokens), so it cannot "
                             "continue text: use gpt, transformer --mask causal, lstm, gru, gatedcnn, cnn, ...")

    @torch.no_grad()
    def generate(self, ids: Sequence[int], total_length: int, sampling: SamplingConfig,
                 generator: torch.Generator | None = None, stop_id: int | None = None) -> list[int]:
        """``ids`` followed by new tokens until ``total_length`` tokens or ``stop_id`` (kept) is produced.

        Args:
            ids: the prompt, e.g. ``[CLS] tokens`` (at least one id).
            total_length: length of the result, prompt included (``--seq_length``).
            sampling: how each token is chosen.
            generator: random source for sampling (seeded by the caller for reproducible output).
            stop_id: end-of-text id ([SEP] for models trained on our lm datasets), or None.
        """
        if not ids:
            raise ValueError("the prompt must hold at least one token (e.g. [CLS])")
        device = next(self.model.parameters()).device
        out = list(ids)
        if len(out) >= total_length:
            return out[:total_length]
        src = torch.tensor([out], dtype=torch.long, device=device)
        cache = self.model.encoder.new_cache() if self.cached else None
        hidden = self._hidden(src, cache, new=len(out))
        while True:
            token = choose(self.lm.logits(hidden[0, -1]), sampling, generator)
            out.append(token)
            if len(out) >= total_length or token == stop_id:
                return out
            src = torch.cat([src, src.new_tensor([[token]])], dim=1)
            hidden = self._hidden(src, cache, new=1)

    def _hidden(self, src: torch.Tensor, cache: list | None, new: int) -> torch.Tensor:
        """Hidden states of the last ``new`` positions of ``src`` (all positions without a cache)."""
        seg = torch.ones_like(src)
        if cache is None:
            return self.model.encode(src, seg)
        # Embeddings are per position (lookup, positions, layer norm): embedding the whole sequence
        # and keeping the new positions is exact and costs little next to the encoder layers.
        emb = self.model.embedding(src, seg)[:, -new:]
        return self.model.encoder(emb, seg[:, -new:], cache=cache)


def fit_prompt(ids: Sequence[int], total_length: int) -> list[int]:
    """The prompt the model sees: ``ids`` unchanged when it leaves room for at least one new token, else
    its first id ([CLS]) and its last tokens, so that half of ``total_length`` is left for the continuation
    (UER-py generated nothing for a prompt of --seq_length tokens or more)."""
    ids = list(ids)
    if len(ids) < total_length:
        return ids
    keep = max(1, total_length // 2)
    return ids[:1] + ids[len(ids) - (keep - 1):] if keep > 1 else ids[:1]


def detokenize(tokens: Sequence[str]) -> str:
    """Tokens back to text: wordpiece continuations (``##x``) join their word, CJK and punctuation join
    without spaces (UER-py joins everything), and a space separates two ASCII words."""
    text = ""
    previous_word = False
    for token in tokens:
        if token.startswith("##") and len(token) > 2:
            text += token[2:]
            continue
        word = token.isascii() and token.isalnum()
        if previous_word and word:
            text += " "
        text += token
        previous_word = word
    return text


def build_parser(prog: str) -> argparse.ArgumentParser:
    """scripts/generate.py's flags: UER-py's two spellings (2020 generate.py and the newer generate_lm.py)."""
    from uer import opts

    parser = argparse.ArgumentParser(prog=prog, description="Continue each line of --input_path with a model "
                                     "pre-trained with the lm target.",
                                     formatter_class=opts.HelpFormatter)
    group = parser.add_argument_group("generation")
    group.add_argument("--load_model_path", "--pretrained_model_path", dest="load_model_path", required=True,
                       help="Model pre-trained with --target lm (.bin or .safetensors).")
    group.add_argument("--input_path", "--test_path", dest="input_path", required=True,
                       help="Beginnings of texts, one per line.")
    group.add_argument("--output_path", "--prediction_path", dest="output_path", required=True,
                       help="One line per input line: the beginning and its continuation.")
    group.add_argument("--seq_length", type=sequence_length, default=128,
                       help="Total length in tokens ([CLS] and the beginning included).")
    group.add_argument("--top_k", type=non_negative_int, default=70, help="Sample among the k most likely tokens (1 = greedy, 0 = all).")
    group.add_argument("--top_p", type=probability, default=0.0,
                       help="Sample among the most likely tokens that together reach this probability (0 = off).")
    group.add_argument("--temperature", type=finite_positive_float, default=1.0, help="Logits are divided by this before sampling.")
    group.add_argument("--seed", type=seed_int, default=7, help="Random seed of the sampling.")
    group.add_argument("--target", choices=["lm"], default="lm", help="The pre-training target (only lm generates).")
    group.add_argument("--has_lmtarget_bias", action="store_true", help="The lm output layer has a bias.")
    group.add_argument("--no_cache", action="store_true",
                       help="Re-run the transformer on the whole text for every token (slower; for checking the cache).")
    group.add_argument("--gpu_rank", type=non_negative_int, default=None, help="GPU to run on (older spelling of --device cuda:N).")
    opts.add_device_option(group)
    opts.add_model_options(parser)
    opts.add_tokenizer_options(parser)
    opts.add_runtime_options(parser)
    return parser


def main(argv: Sequence[str] | None = None, prog: str = "generate.py") -> None:
    """Entry point of scripts/generate.py and scripts/generate_lm.py."""
    from uer.errors import entry_point

    entry_point(prog)(_main)(argv, prog)


def _main(argv: Sequence[str] | None, prog: str) -> None:
    import logging

    from uer.config import model_config_from_args, parse_args_with_config
    from uer.errors import UsageError
    from uer.model_builder import build_model
    from uer.model_loader import ModelLoadError, load_model_weights
    from uer.text.tokenizers import build_tokenizer
    from uer.utils.io import atomic_write_text, check_outputs, read_lines
    from uer.utils.logging import setup_logging, setup_logging_from_args
    from uer.utils.progress import progress_iter
    from uer.utils.runtime import set_threads, tune_cpu_allocator

    setup_logging(True)
    tune_cpu_allocator()
    logger = logging.getLogger("generate")
    parser = build_parser(prog)
    args = parse_args_with_config(parser, argv)
    setup_logging_from_args(args)
    set_threads(args.threads)
    if not args.vocab_path and not args.spm_model_path:
        parser.error("a vocabulary is required: --vocab_path or --spm_model_path")
    check_outputs(args, outputs=("output_path",),
                  inputs=("input_path", "load_model_path", "vocab_path", "spm_model_path", "config_path"))
    # The prompts are read (and checked) first; the output is written once, atomically, when all are done:
    # a bad prompt file never empties an existing --output_path.
    prompts = [line.strip() for _, line in read_lines(args.input_path)]
    try:
        tokenizer = build_tokenizer(args.tokenizer, vocab_path=args.vocab_path, spm_model_path=args.spm_model_path,
                                    do_lower_case=args.do_lower_case, merges_path=args.merges_path)
        sampling = SamplingConfig(args.top_k, args.top_p, args.temperature)
    except ValueError as err:
        raise UsageError(str(err)) from None
    args.target = ["lm"]
    cfg = model_config_from_args(args, len(tokenizer.vocab))
    if args.seq_length > cfg.max_seq_length and {"pos", "sinusoidalpos"} & set(cfg.embedding):
        raise UsageError(f"--seq_length {args.seq_length} exceeds the model's max_seq_length {cfg.max_seq_length}")
    model = build_model(cfg)
    loaded = load_model_weights(model, args.load_model_path)
    if "target.lm.output_layer.weight" in loaded["missing"] and not cfg.tie_weights:
        raise ModelLoadError("has no lm output layer (target.lm.output_layer.weight): generate with a model "
                             "pre-trained with --target lm", args.load_model_path)
    from uer.api import resolve_device

    device = resolve_device(f"cuda:{args.gpu_rank}" if args.gpu_rank is not None else args.device)
    try:
        generator_model = LmGenerator(model.to(device), use_cache=not args.no_cache)
    except ValueError as err:
        raise UsageError(str(err)) from None
    random = torch.Generator(device=device).manual_seed(args.seed)
    vocab = tokenizer.vocab
    specials = {vocab.cls_id, vocab.sep_id, vocab.pad_id}
    outputs = []
    for number, line in enumerate(progress_iter(prompts, "generating", unit="line"), start=1):
        tokens = tokenizer.encode(line)
        prompt = fit_prompt([vocab.cls_id] + tokens, args.seq_length)
        if len(prompt) < len(tokens) + 1:
            logger.warning("%s:%d: the beginning has %d tokens, which leaves no room in --seq_length %d: the "
                           "model sees its last %d tokens and adds up to %d (the whole line is kept in the output)",
                           args.input_path, number, len(tokens), args.seq_length, len(prompt) - 1,
                           args.seq_length - len(prompt))
        ids = generator_model.generate(prompt, args.seq_length, sampling, random, stop_id=vocab.sep_id)
        continuation = [i for i in ids[len(prompt):] if i not in specials]
        outputs.append(line + detokenize(tokenizer.convert_ids_to_tokens(continuation)) + "\n")
    atomic_write_text(args.output_path, "".join(outputs))
    logger.info("continued %d line(s) of %s into %s (%s decoding%s)", len(outputs), args.input_path, args.output_path,
                "greedy" if sampling.greedy else "sampling", ", key/value cache" if generator_model.cached else "")
