"""Tokenizers with UER-py semantics (``--tokenizer bert|char|space``), built for speed.

* ``bert``: BERT's BasicTokenizer (text cleaning, CJK isolation, whitespace split, optional
  lower-casing + accent stripping, punctuation split) followed by greedy longest-match WordPiece.
  Output ids are identical to google-research/bert and to transformers' BertTokenizer (checked in
  tests/test_tokenizers.py). With ``spm_model_path`` the sentencepiece model segments the text
  instead (ALBERT-style: a piece "<digits>," is re-split so the comma stands alone) and its pieces
  are the vocabulary.
* ``char``: one token per character; whitespace characters are dropped (UER-py keeps inner
  spaces and maps them to [UNK]; dropping them is the useful behaviour for Chinese text).
* ``space``: ``text.strip().split(" ")``, exactly like UER-py (an empty text gives no tokens).
* ``jieba_wordpiece``: ERNIE tiny's Chinese subword tokenization: jieba cuts the text into words, then each
  word (lower-cased with ``do_lower_case``) is split by greedy longest-match WordPiece over the vocabulary
  (``scripts/build_vocab.py --subword wordpiece`` builds one: multi-character Chinese pieces, so inputs are
  shorter than with one token per character).

``char`` and ``space`` do not lower-case (UER-py behaviour); ``do_lower_case`` only affects
``bert``. Out-of-vocabulary tokens become the vocabulary's unknown token.

Why it is fast: BERT's pipeline is a pure function of each whitespace-delimited word once the text
has been cleaned, so ``encode`` does the cleaning + CJK isolation with one ``str.translate`` (a
lazily filled per-character table), splits with ``str.split`` and looks every word up in a memo
(word -> ids) that computes misses with the exact reference algorithm. Repeated words (every CJK
character, common English words) therefore cost one dict lookup.
"""
from __future__ import annotations

import os
import unicodedata
from itertools import chain
from typing import Callable, Iterable, Mapping, Sequence

from uer.text.vocab import Vocab
from uer.utils.io import check_input_file

__all__ = [
    "BasicTokenizer", "WordpieceTokenizer", "Tokenizer", "BertTokenizer", "CharTokenizer",
    "SpaceTokenizer", "BPETokenizer", "XLMRobertaTokenizer", "str2tokenizer", "vocab_is_uncased", "parse_bool", "build_tokenizer", "is_chinese_char", "is_whitespace",
    "is_control", "is_punctuation",
]

SPIECE_UNDERLINE = "\u2581"
# Memo sizes: enough for every distinct word of a large corpus' head; cleared when exceeded so
# that memory stays bounded (~40 MB) on long-tailed corpora.
_WORD_MEMO_SIZE = 1 << 18

# CJK Unified Ideographs blocks that BERT isolates as single tokens (same ranges as BERT).
_CJK_RANGES = (
    (0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F),
    (0x2B740, 0x2B81F), (0x2B820, 0x2CEAF), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F),
)


def is_chinese_char(cp: int) -> bool:
    """Whether code point ``cp`` is in a CJK ideograph block (not Hangul/Kana, as in BERT)."""
    for low, high in _CJK_RANGES:
        if low <= cp <= high:
            return True
    return False


def is_whitespace(char: str) -> bool:
    """BERT whitespace: space, tab, newline, carriage return and Unicode Zs."""
    return char in " \t\n\r" or unicodedata.category(char) == "Zs"


def is_control(char: str) -> bool:
    """BERT control character (removed from text): Cc/Cf, except tab/newline/CR."""
    if char in "\t\n\r":
        return False
    return unicodedata.category(char) in ("Cc", "Cf")


def is_punctuation(char: str) -> bool:
    """BERT punctuation: all non-alphanumeric printable ASCII plus Unicode P* categories."""
    cp = ord(char)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(char).startswith("P")


class _Memo(dict):
    """dict that computes a missing value with ``fn`` and keeps it; cleared past ``max_size``.

    Lookups go through ``dict.__getitem__`` (C speed); only misses run Python code.
    """

    __slots__ = ("fn", "max_size")

    def __init__(self, fn: Callable, max_size: int) -> None:
        super().__init__()
        self.fn = fn
        self.max_size = max_size

    def __missing__(self, key):
        value = self.fn(key)
        if len(self) >= self.max_size:
            self.clear()
        self[key] = value
        return value

    def __reduce__(self):  # never pickle caches; owners rebuild them
        return (dict, ())


def _clean_char(cp: int):
    """str.translate value for one code point: BERT's _clean_text + _tokenize_chinese_chars."""
    if cp == 0 or cp == 0xFFFD:
        return None
    char = chr(cp)
    if char in " \t\n\r":
        return " "
    category = unicodedata.category(char)
    if category == "Cc" or category == "Cf":
        return None
    if category == "Zs":
        return " "
    if is_chinese_char(cp):
        return f" {char} "
    return cp  # unchanged


# Shared by all tokenizers: a pure function of the character, at most one entry per code point.
_CLEAN_TABLE = _Memo(_clean_char, 1 << 22)
_PUNCT = _Memo(is_punctuation, 1 << 22)
_NONSPACING_MARK = _Memo(lambda char: unicodedata.category(char) == "Mn", 1 << 22)


def _strip_accents(text: str) -> str:
    """NFD, then drop nonspacing marks (BERT's _run_strip_accents)."""
    if text.isascii():
        return text
    marks = _NONSPACING_MARK
    return "".join([c for c in unicodedata.normalize("NFD", text) if not marks[c]])


def _split_on_punctuation(word: str) -> list[str]:
    """Every punctuation character becomes its own token (BERT's _run_split_on_punc)."""
    if word.isalnum():  # letters/digits only: no P* or ASCII punctuation inside
        return [word]
    punct = _PUNCT
    out: list[str] = []
    current: list[str] = []
    for char in word:
        if punct[char]:
            if current:
                out.append("".join(current))
                current = []
            out.append(char)
        else:
            current.append(char)
    if current:
        out.append("".join(current))
    return out


class BasicTokenizer:
    """BERT's basic tokenization: cleaning, CJK isolation, lower-casing/accents, punctuation split."""

    def __init__(self, do_lower_case: bool = True) -> None:
        self.do_lower_case = do_lower_case
        self._memo = _Memo(self.split_word, _WORD_MEMO_SIZE)

    def split_word(self, word: str) -> tuple[str, ...]:
        """Tokens of one whitespace word (lower-case + strip accents, then punctuation split)."""
        if self.do_lower_case:
            word = _strip_accents(word.lower())
        out: list[str] = []
        for piece in _split_on_punctuation(word):
            out.extend(piece.split())  # BERT re-splits on whitespace after the punctuation split
        return tuple(out)

    def tokenize(self, text: str) -> list[str]:
        """Tokens of ``text``, exactly as BERT's BasicTokenizer produces them."""
        return list(chain.from_iterable(map(self._memo.__getitem__, text.translate(_CLEAN_TABLE).split())))

    def __getstate__(self) -> dict:
        return {"do_lower_case": self.do_lower_case}

    def __setstate__(self, state: dict) -> None:
        self.__init__(**state)


class WordpieceTokenizer:
    """Greedy longest-match-first WordPiece with ``##`` continuations.

    A word longer than ``max_input_chars_per_word`` characters, or one that cannot be covered by
    vocabulary pieces, becomes a single ``unk_token``.
    """

    def __init__(self, vocab: Vocab | Mapping[str, int] | Iterable[str], unk_token: str = "[UNK]",
                 max_input_chars_per_word: int = 100) -> None:
        if isinstance(vocab, Vocab):
            vocab = vocab.w2i
        self.vocab = vocab if isinstance(vocab, (Mapping, set, frozenset)) else set(vocab)
        self.unk_token = unk_token
        self.max_input_chars_per_word = max_input_chars_per_word
        # No vocabulary piece is longer than this: longer candidates need not be looked up.
        self._max_piece_chars = max(map(len, self.vocab), default=0)

    def tokenize_word(self, word: str) -> tuple[str, ...]:
        """WordPiece pieces of one word (no whitespace inside)."""
        n = len(word)
        if n > self.max_input_chars_per_word:
            return (self.unk_token,)
        vocab = self.vocab
        if word in vocab:
            return (word,)
        limit = self._max_piece_chars
        pieces: list[str] = []
        start = 0
        while start < n:
            end = min(n, start + limit)
            while end > start:
                piece = word[start:end] if start == 0 else "##" + word[start:end]
                if piece in vocab:
                    break
                end -= 1
            else:
                return (self.unk_token,)
            pieces.append(piece)
            start = end
        return tuple(pieces)

    def tokenize(self, text: str) -> list[str]:
        """WordPiece pieces of every whitespace-separated word of ``text``."""
        out: list[str] = []
        for word in text.split():
            out.extend(self.tokenize_word(word))
        return out


class Tokenizer:
    """Common interface: ``vocab``, ``tokenize``, ``convert_tokens_to_ids``, ``encode``, ``convert_ids_to_tokens``.

    The vocabulary comes from ``spm_model_path`` when given (its pieces, UER semantics), else from
    ``vocab_path``; an already built ``vocab`` may be passed instead.
    """

    def __init__(self, vocab_path: str | os.PathLike | None = None, spm_model_path: str | os.PathLike | None = None,
                 do_lower_case: bool | None = True, *, vocab: Vocab | None = None) -> None:
        self.vocab_path = None if vocab_path is None else os.fspath(vocab_path)
        self.spm_model_path = None if spm_model_path is None else os.fspath(spm_model_path)
        self.sp_model = None
        if self.spm_model_path:
            self.sp_model = _load_spm(self.spm_model_path)
            self.vocab = vocab if vocab is not None else Vocab.from_sp_processor(self.sp_model, path=self.spm_model_path)
        elif vocab is not None:
            self.vocab = vocab
        elif self.vocab_path:
            self.vocab = Vocab.from_file(self.vocab_path)
        else:
            raise ValueError(f"{type(self).__name__} needs a vocabulary: pass vocab_path (--vocab_path) "
                             "or spm_model_path (--spm_model_path)")
        # None: from the vocabulary (a cased vocabulary must not be lower-cased: "Paris" is a token of it)
        self.do_lower_case = vocab_is_uncased(self.vocab) if do_lower_case is None else bool(do_lower_case)
        self._init_caches()

    def _init_caches(self) -> None:
        """(Re)build per-instance lookup caches; called after __init__ and after unpickling."""

    def tokenize(self, text: str) -> list[str]:
        raise NotImplementedError

    def convert_tokens_to_ids(self, tokens: Sequence[str]) -> list[int]:
        """Ids of ``tokens``; unknown tokens map to the vocabulary's unk id."""
        return self.vocab.to_ids(tokens)

    def convert_ids_to_tokens(self, ids: Sequence[int]) -> list[str]:
        return self.vocab.to_tokens(ids)

    def encode(self, text: str) -> list[int]:
        """Ids of ``tokenize(text)`` (subclasses override with a faster path)."""
        return self.vocab.to_ids(self.tokenize(text))

    def __getstate__(self) -> dict:
        # Caches hold bound methods and can be large: rebuild them instead of pickling them.
        return {k: v for k, v in self.__dict__.items()
                if not isinstance(v, (_Memo, BasicTokenizer, WordpieceTokenizer))}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._init_caches()

    def __repr__(self) -> str:
        source = self.spm_model_path or self.vocab_path or "<in memory>"
        return f"{type(self).__name__}(vocab={source!r}, size={len(self.vocab)})"


def vocab_is_uncased(vocab: Vocab) -> bool:
    """Whether a WordPiece vocabulary was built from lower-cased text: at most 1% of its (non-special) tokens hold an
    ASCII capital (google_cased_en_vocab.txt: 29%; the uncased and Chinese ones: 0.01%, their <S>/<T>)."""
    tokens = [t for t in vocab.i2w if not (t[:1] in "[<" and t[-1:] in "]>")]
    capitals = sum(1 for t in tokens if any("A" <= c <= "Z" for c in t))
    return capitals <= 0.01 * max(1, len(tokens))


def _load_spm(path: str):
    check_input_file(path, "sentencepiece model")
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor()
    sp.Load(path)
    return sp


class BertTokenizer(Tokenizer):
    """BERT tokenization (basic + WordPiece), or sentencepiece segmentation when an spm model is given."""

    def _init_caches(self) -> None:
        if self.sp_model is not None:
            return
        self.basic_tokenizer = BasicTokenizer(do_lower_case=self.do_lower_case)
        self.wordpiece_tokenizer = WordpieceTokenizer(self.vocab, unk_token=self.vocab.unk_token)
        self._piece_memo = _Memo(self._word_pieces, _WORD_MEMO_SIZE)
        self._id_memo = _Memo(self._word_ids, _WORD_MEMO_SIZE)

    def _word_pieces(self, word: str) -> tuple[str, ...]:
        wordpiece = self.wordpiece_tokenizer.tokenize_word
        return tuple(chain.from_iterable(map(wordpiece, self.basic_tokenizer.split_word(word))))

    def _word_ids(self, word: str) -> tuple[int, ...]:
        return tuple(self.vocab.to_ids(self._piece_memo[word]))

    def _spm_tokenize(self, text: str) -> list[str]:
        sp = self.sp_model
        out: list[str] = []
        for piece in sp.EncodeAsPieces(text):
            if len(piece) > 1 and piece[-1] == "," and piece[-2].isdigit():
                # ALBERT's fix: "1,000," style pieces are re-encoded without the trailing comma
                sub = sp.EncodeAsPieces(piece[:-1].replace(SPIECE_UNDERLINE, ""))
                if not piece.startswith(SPIECE_UNDERLINE) and sub and sub[0].startswith(SPIECE_UNDERLINE):
                    sub = sub[1:] if len(sub[0]) == 1 else [sub[0][1:]] + sub[1:]
                out.extend(sub)
                out.append(",")
            else:
                out.append(piece)
        return out

    def tokenize(self, text: str) -> list[str]:
        if self.sp_model is not None:
            return self._spm_tokenize(text)
        return list(chain.from_iterable(map(self._piece_memo.__getitem__, text.translate(_CLEAN_TABLE).split())))

    def encode(self, text: str) -> list[int]:
        if self.sp_model is not None:
            return self.vocab.to_ids(self._spm_tokenize(text))
        return list(chain.from_iterable(map(self._id_memo.__getitem__, text.translate(_CLEAN_TABLE).split())))


class CharTokenizer(Tokenizer):
    """One token per non-whitespace character; characters outside the vocabulary become unk."""

    def _init_caches(self) -> None:
        w2i, unk = self.vocab.w2i, self.vocab.unk_id
        self._char_ids = _Memo(lambda char: w2i.get(char, unk), _WORD_MEMO_SIZE)

    def tokenize(self, text: str) -> list[str]:
        w2i, unk = self.vocab.w2i, self.vocab.unk_token
        return [c if c in w2i else unk for c in "".join(text.split())]

    def encode(self, text: str) -> list[int]:
        return list(map(self._char_ids.__getitem__, "".join(text.split())))


class SpaceTokenizer(Tokenizer):
    """Tokens are the single-space-separated fields of the stripped text (UER-py semantics)."""

    @staticmethod
    def _fields(text: str) -> list[str]:
        text = text.strip()
        return text.split(" ") if text else []

    def tokenize(self, text: str) -> list[str]:
        w2i, unk = self.vocab.w2i, self.vocab.unk_token
        return [t if t in w2i else unk for t in self._fields(text)]

    def encode(self, text: str) -> list[int]:
        return self.vocab.to_ids(self._fields(text))


class JiebaWordpieceTokenizer(Tokenizer):
    """Words from jieba, then WordPiece within each word (see the module doc); jieba is imported lazily."""

    def _init_caches(self) -> None:
        from uer.text.segment import _import_jieba

        self._jieba = _import_jieba()
        self.wordpiece_tokenizer = WordpieceTokenizer(self.vocab, unk_token=self.vocab.unk_token)
        lower = self.do_lower_case
        self._piece_memo = _Memo(lambda word: self.wordpiece_tokenizer.tokenize_word(word.lower() if lower else word),
                                 _WORD_MEMO_SIZE)

    def tokenize(self, text: str) -> list[str]:
        words = (part for word in self._jieba.cut(text) for part in word.split())  # jieba keeps spaces as words
        return list(chain.from_iterable(map(self._piece_memo.__getitem__, words)))

    def __getstate__(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k not in ("_jieba", "wordpiece_tokenizer", "_piece_memo")}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._init_caches()


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte -> printable character table (bytes that are printable map to themselves)."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("\xa1"), ord("\xac") + 1)) + \
        list(range(ord("\xae"), ord("\xff") + 1))
    table, extra = {}, 0
    for byte in range(256):
        if byte in printable:
            table[byte] = chr(byte)
        else:
            table[byte] = chr(256 + extra)
            extra += 1
    return table


# GPT-2's pre-tokenization: contractions, letters, digits, other symbols, each with one leading space
_GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""


def _read_bpe_vocab(path: str) -> list[str]:
    """vocab.json ({token: id}, HF's form) or one token a line (UER-py's huggingface_gpt2_vocab.txt)."""
    check_input_file(path, "vocabulary file")
    if path.endswith(".json"):
        import json

        from uer.text.vocab import VocabError

        with open(path, encoding="utf-8-sig") as reader:
            table = json.load(reader)
        tokens = sorted(table, key=table.__getitem__)
        if [table[t] for t in tokens] != list(range(len(tokens))):
            raise VocabError(f"vocab {path}: ids are not 0 .. {len(tokens) - 1} without gaps")
        return tokens
    return Vocab.from_file(path, validate=False).i2w


class BPETokenizer(Tokenizer):
    """Byte-level BPE (GPT-2, RoBERTa; UER-py's ``--tokenizer bpe``): GPT-2's pre-tokenization, bytes as printable
    characters, then the merges in rank order. ``vocab_path``: vocab.json or one token a line; ``merges_path``:
    merges.txt. Special tokens: fairseq's (``<s> <pad> </s> <unk> <mask>``, RoBERTa) when the vocabulary has
    ``<s>``, else GPT-2's ``<|endoftext|>`` in every role. Never lower-cases."""

    def __init__(self, vocab_path: str | os.PathLike | None = None, spm_model_path: str | os.PathLike | None = None,
                 do_lower_case: bool | None = None, *, merges_path: str | os.PathLike | None = None,
                 vocab: Vocab | None = None) -> None:
        from uer.text.vocab import FAIRSEQ_SPECIALS

        if spm_model_path:
            raise ValueError("--tokenizer bpe reads --vocab_path and --merges_path, not --spm_model_path")
        if do_lower_case:
            raise ValueError("--tokenizer bpe never lower-cases (byte-level BPE is cased): leave --do_lower_case out")
        if not merges_path:
            raise ValueError("--tokenizer bpe needs --merges_path (merges.txt) next to --vocab_path")
        if vocab is None:
            if not vocab_path:
                raise ValueError("--tokenizer bpe needs --vocab_path (vocab.json, or one token a line)")
            tokens = _read_bpe_vocab(os.fspath(vocab_path))
            specials = FAIRSEQ_SPECIALS if "<s>" in tokens else dict.fromkeys(FAIRSEQ_SPECIALS, "<|endoftext|>")
            vocab = Vocab(tokens, path=os.fspath(vocab_path), specials=specials)
        self.merges_path = os.fspath(merges_path)
        check_input_file(self.merges_path, "BPE merges file")
        with open(self.merges_path, encoding="utf-8-sig") as reader:
            lines = [line.rstrip("\n") for line in reader]
        pairs = [tuple(line.split(" ")) for line in lines if line and not line.startswith("#version")]
        bad = next((i for i, pair in enumerate(pairs) if len(pair) != 2), None)
        if bad is not None:
            raise ValueError(f"{self.merges_path}: merge {bad + 1} is not two symbols separated by one space")
        self.ranks = {pair: rank for rank, pair in enumerate(pairs)}
        super().__init__(vocab_path, None, False, vocab=vocab)

    def _init_caches(self) -> None:
        import regex

        self._pattern = regex.compile(_GPT2_PATTERN)
        self._byte_chars = _bytes_to_unicode()
        self._piece_memo = _Memo(self._bpe, _WORD_MEMO_SIZE)
        self._id_memo = _Memo(lambda word: tuple(self.vocab.to_ids(self._piece_memo[word])), _WORD_MEMO_SIZE)

    def __getstate__(self) -> dict:
        return {k: v for k, v in super().__getstate__().items() if k not in ("_pattern", "_byte_chars")}

    def _bpe(self, word: str) -> tuple[str, ...]:
        """Merge the lowest-ranked adjacent pair until none is in the merges (GPT-2's algorithm)."""
        symbols = list(word)
        ranks = self.ranks
        while len(symbols) > 1:
            best, best_rank = None, None
            for i in range(len(symbols) - 1):
                rank = ranks.get((symbols[i], symbols[i + 1]))
                if rank is not None and (best_rank is None or rank < best_rank):
                    best, best_rank = (symbols[i], symbols[i + 1]), rank
            if best is None:
                break
            merged, i = [], 0
            while i < len(symbols):
                if i < len(symbols) - 1 and (symbols[i], symbols[i + 1]) == best:
                    merged.append(symbols[i] + symbols[i + 1])
                    i += 2
                else:
                    merged.append(symbols[i])
                    i += 1
            symbols = merged
        return tuple(symbols)

    def _words(self, text: str) -> list[str]:
        chars = self._byte_chars
        return ["".join(chars[b] for b in word.encode("utf-8")) for word in self._pattern.findall(text)]

    def tokenize(self, text: str) -> list[str]:
        return list(chain.from_iterable(map(self._piece_memo.__getitem__, self._words(text))))

    def encode(self, text: str) -> list[int]:
        return list(chain.from_iterable(map(self._id_memo.__getitem__, self._words(text))))


class XLMRobertaTokenizer(Tokenizer):
    """XLM-R's sentencepiece segmentation with fairseq's ids (UER-py's ``--tokenizer xlmroberta``): ``<s> <pad> </s>
    <unk>`` are ids 0-3, every other piece has its sentencepiece id + 1, and ``<mask>`` comes last."""

    def __init__(self, vocab_path: str | os.PathLike | None = None, spm_model_path: str | os.PathLike | None = None,
                 do_lower_case: bool | None = None, *, vocab: Vocab | None = None) -> None:
        from uer.text.vocab import FAIRSEQ_SPECIALS

        if not spm_model_path:
            raise ValueError("--tokenizer xlmroberta needs --spm_model_path (sentencepiece.bpe.model)")
        if vocab_path:
            raise ValueError("--tokenizer xlmroberta takes its vocabulary from --spm_model_path: leave --vocab_path out")
        if do_lower_case:
            raise ValueError("--tokenizer xlmroberta never lower-cases: leave --do_lower_case out")
        sp = _load_spm(os.fspath(spm_model_path))
        pieces = [sp.IdToPiece(i) for i in range(sp.GetPieceSize())]
        if pieces[:3] != ["<unk>", "<s>", "</s>"]:
            raise ValueError(f"{spm_model_path}: pieces 0-2 are {pieces[:3]}, XLM-R's layout needs <unk> <s> </s>")
        if vocab is None:
            vocab = Vocab(["<s>", "<pad>", "</s>", "<unk>"] + pieces[3:] + ["<mask>"], path=os.fspath(spm_model_path),
                          specials=FAIRSEQ_SPECIALS)
        super().__init__(None, spm_model_path, False, vocab=vocab)

    def tokenize(self, text: str) -> list[str]:
        return self.sp_model.EncodeAsPieces(text)

    def encode(self, text: str) -> list[int]:
        return self.vocab.to_ids(self.sp_model.EncodeAsPieces(text))


str2tokenizer: dict[str, type[Tokenizer]] = {"bert": BertTokenizer, "char": CharTokenizer, "space": SpaceTokenizer,
                                             "jieba_wordpiece": JiebaWordpieceTokenizer, "bpe": BPETokenizer,
                                             "xlmroberta": XLMRobertaTokenizer}


def build_tokenizer(name: str = "bert", vocab_path: str | os.PathLike | None = None,
                    spm_model_path: str | os.PathLike | None = None, do_lower_case: bool | None = None,
                    merges_path: str | os.PathLike | None = None) -> Tokenizer:
    """Tokenizer for ``--tokenizer name``; the spm model (if given) wins over ``vocab_path``, as in UER-py.
    ``do_lower_case`` None: from the vocabulary (:func:`vocab_is_uncased`); ``merges_path``: bpe only."""
    if name not in str2tokenizer:
        raise ValueError(f"unknown tokenizer {name!r}; choose one of {sorted(str2tokenizer)}")
    if not vocab_path and not spm_model_path:
        raise ValueError(f"tokenizer {name!r} needs a vocabulary: pass vocab_path (--vocab_path) "
                         "or spm_model_path (--spm_model_path)")
    if name == "bpe":
        return BPETokenizer(vocab_path or None, spm_model_path or None, do_lower_case, merges_path=merges_path)
    if merges_path:
        raise ValueError(f"--merges_path is read by --tokenizer bpe only, not {name}")
    if name == "xlmroberta":
        return XLMRobertaTokenizer(vocab_path or None, spm_model_path or None, do_lower_case)
    return str2tokenizer[name](vocab_path=vocab_path or None, spm_model_path=spm_model_path or None,
                               do_lower_case=do_lower_case)


def parse_bool(text: str) -> bool:
    """``true``/``false`` (any case; also 1/0, yes/no) for flags such as ``--do_lower_case``."""
    value = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}.get(str(text).lower())
    if value is None:
        import argparse

        raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")
    return value


def tokenizer_from_args(args, require_specials: tuple[str, ...] = ("[CLS]", "[SEP]", "[PAD]")) -> Tokenizer:
    """The tokenizer of ``--tokenizer`` over ``--vocab_path`` / ``--spm_model_path`` (every command's one way).

    ``require_specials``: tokens the command's inputs need (fine-tuning and inference: [CLS], [SEP] and [PAD]);
    a vocabulary without one is an error naming it, before any work.
    """
    from uer.errors import DataError, UsageError, UserError

    vocab_path, spm_path = getattr(args, "vocab_path", None), getattr(args, "spm_model_path", None)
    if not vocab_path and not spm_path:
        raise UsageError("give --vocab_path (or --spm_model_path): the vocabulary the model was trained with")
    try:
        tokenizer = build_tokenizer(args.tokenizer, vocab_path, spm_path, getattr(args, "do_lower_case", None),
                                    getattr(args, "merges_path", None))
    except ValueError as err:
        if isinstance(err, UserError):  # a bad vocabulary file: its own message and exit status
            raise
        raise UsageError(str(err)) from None
    vocab = tokenizer.vocab
    ids = {"[CLS]": vocab.cls_id, "[SEP]": vocab.sep_id, "[PAD]": vocab.pad_id}
    missing = [name for name in require_specials if ids.get(name, 0) < 0]
    if missing:
        raise DataError(f"the vocabulary has no {', '.join(missing)} token; fine-tuning needs {', '.join(require_specials)}",
                        vocab_path or spm_path)
    return tokenizer

