"""Word vectors of a pre-trained model: the embedding matrix, and nearest neighbours by cosine similarity.

scripts/extract_embedding.py (= extract_embeddings.py) writes the word embedding matrix in word2vec's text
format (a ``rows dims`` header, then ``token v_1 ... v_dims`` per vocabulary entry, in id order)::

    python3 scripts/extract_embedding.py --load_model_path models/google_zh_model.bin \\
        --vocab_path models/google_zh_vocab.txt --word_embedding_path embeddings.txt

scripts/topn_words_indep.py: context-independent neighbours, from the embedding matrix; one target word per
line of --target_words_path (= --test_path, --word_path), first field::

    python3 scripts/topn_words_indep.py --pretrained_model_path models/google_zh_model.bin \\
        --vocab_path models/google_zh_vocab.txt --cand_vocab_path models/google_zh_vocab.txt --target_words_path target_words.txt

scripts/topn_words_dep.py: context-dependent neighbours. Each line is ``sentence<TAB>word`` (--sent_path, the
docs' order) or ``word<TAB>sentence`` (--test_path, UER-py's newer order); the word must be one token of the
tokenized sentence. Every candidate replaces it in turn (batches of --batch_size copies of the sentence) and
is scored by the cosine between the last layer's vector at that position and the original's::

    python3 scripts/topn_words_dep.py --pretrained_model_path models/google_zh_model.bin --vocab_path models/google_zh_vocab.txt \\
        --cand_vocab_path models/google_zh_vocab.txt --sent_path target_words_with_sentences.txt \\
        --config_path models/bert_base_config.json --batch_size 256 --seq_length 32 --tokenizer bert

Both print UER-py's blocks: per target word ``Target word: w`` (topn_words_dep.py: after ``Original sentence: s``),
then the --topn (15) best candidates other than the word itself as ``token<TAB>cosine``, most similar first, then
a blank line. --prediction_path also writes that text to a file. Candidates are the tokens of --cand_vocab_path (default: --vocab_path) that the
model's vocabulary has; special tokens ([PAD], [CLS], ...) are never candidates.
"""
from __future__ import annotations

import argparse
import sys
from typing import Sequence

import torch

from uer.tools.common import (ToolError, add_encoder_options, add_load_model_option, check_outputs_are_not_inputs,
                              load_encoder, parse, require_file, run_tool, text_lines, tokenizer_from_args,
                              write_text)
from uer.utils.ranges import positive_int

SPECIAL_TOKENS = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "<unk>", "<pad>", "<s>", "</s>"}


def word_embedding(path: str) -> torch.Tensor:
    """The [vocab_size x emb_size] word embedding of a model file (float32)."""
    from uer.model_loader import load_state_dict

    state = load_state_dict(path)
    key = "embedding.word.embedding.weight"
    if key not in state:
        raise ToolError(f"{path}: no word embedding ({key}); is this a UER-py model file?")
    return state[key].float()


def check_vocab_fits(matrix: torch.Tensor, vocab, model_path: str) -> None:
    if matrix.shape[0] != len(vocab):
        raise ToolError(f"{model_path}: the word embedding has {matrix.shape[0]} rows but the vocabulary "
                        f"{vocab.path or ''} has {len(vocab)} tokens: not the model's vocabulary")


def word2vec_text(matrix: torch.Tensor, tokens: Sequence[str]) -> str:
    """word2vec's text format; values printed with 8 significant digits (float32 round-trips to ~1e-7)."""
    lines = [f"{matrix.shape[0]} {matrix.shape[1]}"]
    for token, row in zip(tokens, matrix.numpy()):
        lines.append(token + " " + " ".join(f"{v:.8g}" for v in row))
    return "\n".join(lines) + "\n"


def candidate_ids(vocab, cand_path: str | None) -> tuple[list[int], list[str]]:
    """(model ids, tokens) of the candidates: the candidate vocabulary's tokens the model knows, no specials."""
    if cand_path:
        from uer.text.vocab import Vocab

        require_file(cand_path, "candidate vocabulary (--cand_vocab_path)")
        tokens = list(Vocab.from_file(cand_path, validate=False))
    else:
        tokens = list(vocab)
    seen, ids, kept = set(), [], []
    for token in tokens:
        if token and token not in SPECIAL_TOKENS and token in vocab and token not in seen:
            seen.add(token)
            ids.append(vocab.get(token))
            kept.append(token)
    if not ids:
        raise ToolError(f"{cand_path or 'the vocabulary'}: no candidate token is in the model's vocabulary")
    return ids, kept


def rank_by_cosine(target: torch.Tensor, candidates: torch.Tensor, topn: int,
                   self_index: int | None = None) -> list[tuple[int, float]]:
    """Indices of the ``topn`` rows of ``candidates`` most similar to ``target`` with their cosines, best first.
    ``self_index`` (the target word's own row) is left out, as UER-py's scripts leave out the first hit."""
    sims = torch.nn.functional.cosine_similarity(target.double().view(1, -1), candidates.double(), dim=-1)
    ranked = sims.clone()
    if self_index is not None:
        ranked[self_index] = -float("inf")
    order = torch.sort(ranked, descending=True, stable=True).indices
    order = order[:min(topn, len(order) - (self_index is not None))]
    return [(int(i), float(sims[i])) for i in order]


def format_neighbours(word: str, ranked: Sequence[tuple[int, float]], tokens: Sequence[str],
                      sentence: str | None = None) -> str:
    """One UER-py block: [``Original sentence: s``,] ``Target word: w``, ``token<TAB>cosine`` lines, a blank line."""
    head = [f"Original sentence: {sentence}"] if sentence is not None else []
    return "\n".join(head + [f"Target word: {word}"] + [f"{tokens[i]}\t{sim:.6f}" for i, sim in ranked]) + "\n\n"


def topn_independent(matrix: torch.Tensor, vocab, words: Sequence[tuple[int, str]], cand_ids: Sequence[int],
                     cand_tokens: Sequence[str], topn: int, path: str) -> str:
    candidates = matrix[list(cand_ids)]
    position = {token_id: i for i, token_id in enumerate(cand_ids)}
    blocks = []
    for line_no, word in words:
        if word not in vocab:
            raise ToolError(f"{path}:{line_no}: {word!r} is not in the model's vocabulary")
        word_id = vocab.get(word)
        ranked = rank_by_cosine(matrix[word_id], candidates, topn, position.get(word_id))
        blocks.append(format_neighbours(word, ranked, cand_tokens))
    return "".join(blocks)


def topn_dependent(encoder, tokenizer, lines: Sequence[tuple[int, str, str]], cand_ids: Sequence[int],
                   cand_tokens: Sequence[str], topn: int, batch_size: int, path: str) -> str:
    """For (line number, sentence, word): substitute every candidate for the word and compare hidden states."""
    vocab = tokenizer.vocab
    model, device = encoder.model, encoder.device
    position_of = {token_id: i for i, token_id in enumerate(cand_ids)}
    cand = torch.tensor(list(cand_ids), dtype=torch.long)
    blocks = []
    for line_no, sentence, word in lines:
        word_ids = tokenizer.encode(word)
        if len(word_ids) != 1 or word_ids[0] == vocab.unk_id:
            raise ToolError(f"{path}:{line_no}: {word!r} is not one token of the vocabulary "
                            f"(tokenized as {tokenizer.tokenize(word)}); word-based models need --tokenizer space")
        ids = ([vocab.cls_id] + tokenizer.encode(sentence))[:encoder.seq_length]
        if word_ids[0] not in ids[1:]:
            raise ToolError(f"{path}:{line_no}: the word {word!r} is not a token of its sentence "
                            f"(within --seq_length {encoder.seq_length})")
        position = ids.index(word_ids[0], 1)
        src = torch.tensor([ids], dtype=torch.long)
        seg = torch.ones_like(src)
        with torch.inference_mode():
            target = model.encode(src.to(device), seg.to(device))[0, position].float().cpu()
            vectors = []
            for start in range(0, len(cand), batch_size):
                chunk = cand[start:start + batch_size]
                batch = src.repeat(len(chunk), 1)
                batch[:, position] = chunk
                hidden = model.encode(batch.to(device), seg.repeat(len(chunk), 1).to(device))
                vectors.append(hidden[:, position].float().cpu())
        ranked = rank_by_cosine(target, torch.cat(vectors), topn, position_of.get(word_ids[0]))
        blocks.append(format_neighbours(word, ranked, cand_tokens, sentence))
    return "".join(blocks)


def read_target_words(path: str) -> list[tuple[int, str]]:
    return [(n, line.split()[0]) for n, line in text_lines(path, "target words file") if line.strip()]


def read_sentences(path: str, word_first: bool) -> list[tuple[int, str, str]]:
    out = []
    for n, line in text_lines(path, "sentences file"):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) != 2:
            order = "word<TAB>sentence" if word_first else "sentence<TAB>word"
            raise ToolError(f"expected 2 tab-separated fields ({order}), found {len(fields)}", path, n)
        word, sentence = (fields[0], fields[1]) if word_first else (fields[1], fields[0])
        out.append((n, sentence, word.strip()))
    return out


def emit(text: str, output_path: str | None) -> None:
    if output_path:
        write_text(output_path, text)
    sys.stdout.write(text)


# ---------------------------------------------------------------------------------------------- commands

def extract_embedding_main(argv: Sequence[str] | None = None, prog: str = "extract_embedding.py") -> None:
    parser = argparse.ArgumentParser(prog=prog, description="Write the word embedding matrix in word2vec text format.",
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_load_model_option(parser)
    parser.add_argument("--vocab_path", default=None, help="The model's vocabulary.")
    parser.add_argument("--spm_model_path", default=None, help="The model's sentencepiece model (instead of a vocabulary).")
    parser.add_argument("--word_embedding_path", "--output_word_embedding_path", dest="word_embedding_path",
                        required=True, help="Output file (word2vec text format).")

    def body(argv: Sequence[str] | None) -> None:
        args = parser.parse_args(argv)
        args.tokenizer = "bert"
        check_outputs_are_not_inputs([("--word_embedding_path", args.word_embedding_path)],
                                     [("--load_model_path", args.load_model_path), ("--vocab_path", args.vocab_path)])
        vocab = tokenizer_from_args(args).vocab
        matrix = word_embedding(args.load_model_path)
        check_vocab_fits(matrix, vocab, args.load_model_path)
        write_text(args.word_embedding_path, word2vec_text(matrix, list(vocab)))
        print(f"{args.word_embedding_path}: {matrix.shape[0]} vectors of {matrix.shape[1]} dimensions")

    run_tool(prog, body, argv)


def topn_indep_main(argv: Sequence[str] | None = None, prog: str = "topn_words_indep.py") -> None:
    parser = argparse.ArgumentParser(prog=prog, description="Nearest neighbours in the word embedding matrix.",
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_load_model_option(parser)
    parser.add_argument("--vocab_path", default=None, help="The model's vocabulary.")
    parser.add_argument("--spm_model_path", default=None, help="The model's sentencepiece model.")
    parser.add_argument("--cand_vocab_path", default=None, help="Candidate tokens (default: the model's vocabulary).")
    parser.add_argument("--target_words_path", "--test_path", "--word_path", dest="target_words_path", required=True,
                        help="Target words, one per line.")
    parser.add_argument("--prediction_path", default=None, help="Also write the neighbours to this file.")
    parser.add_argument("--topn", type=positive_int, default=15, help="Neighbours per word.")

    def body(argv: Sequence[str] | None) -> None:
        args = parser.parse_args(argv)
        args.tokenizer = "bert"
        check_outputs_are_not_inputs([("--prediction_path", args.prediction_path)],
                                     [("--target_words_path", args.target_words_path),
                                      ("--load_model_path", args.load_model_path), ("--vocab_path", args.vocab_path),
                                      ("--cand_vocab_path", args.cand_vocab_path)])
        if args.topn < 1:
            raise ToolError(f"--topn must be >= 1, got {args.topn}")
        vocab = tokenizer_from_args(args).vocab
        matrix = word_embedding(args.load_model_path)
        check_vocab_fits(matrix, vocab, args.load_model_path)
        cand_ids, cand_tokens = candidate_ids(vocab, args.cand_vocab_path)
        words = read_target_words(args.target_words_path)
        emit(topn_independent(matrix, vocab, words, cand_ids, cand_tokens, args.topn, args.target_words_path),
             args.prediction_path)

    run_tool(prog, body, argv)


def topn_dep_main(argv: Sequence[str] | None = None, prog: str = "topn_words_dep.py") -> None:
    parser = argparse.ArgumentParser(prog=prog, description="Context-dependent nearest neighbours.",
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_load_model_option(parser)
    parser.add_argument("--cand_vocab_path", default=None, help="Candidate tokens (default: the model's vocabulary).")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--sent_path", default=None, help="Lines 'sentence<TAB>word' (the docs' format).")
    source.add_argument("--test_path", default=None, help="Lines 'word<TAB>sentence' (UER-py's newer format).")
    parser.add_argument("--prediction_path", default=None, help="Also write the neighbours to this file.")
    parser.add_argument("--topn", type=positive_int, default=15, help="Neighbours per word.")
    add_encoder_options(parser, batch_size=64, seq_length=128)

    def body(argv: Sequence[str] | None) -> None:
        args = parse(parser, argv)
        path = args.sent_path or args.test_path
        check_outputs_are_not_inputs([("--prediction_path", args.prediction_path)],
                                     [("--sent_path/--test_path", path), ("--load_model_path", args.load_model_path),
                                      ("--vocab_path", args.vocab_path), ("--cand_vocab_path", args.cand_vocab_path)])
        if args.topn < 1:
            raise ToolError(f"--topn must be >= 1, got {args.topn}")
        lines = read_sentences(path, word_first=args.test_path is not None)
        tokenizer, encoder = load_encoder(args)
        cand_ids, cand_tokens = candidate_ids(tokenizer.vocab, args.cand_vocab_path)
        emit(topn_dependent(encoder, tokenizer, lines, cand_ids, cand_tokens, args.topn, args.batch_size, path),
             args.prediction_path)

    run_tool(prog, body, argv)
