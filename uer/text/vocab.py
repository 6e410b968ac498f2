"""Vocabulary: token <-> id tables loaded from a BERT-style vocab.txt or a sentencepiece model.

Rules every vocabulary must satisfy (UER-py's conventions, checked at load time so that a bad
file fails loudly instead of silently training a model with shifted special ids):

* ``[PAD]`` exists and has id 0 (embeddings and masks treat id 0 as padding);
* ``[CLS]``, ``[SEP]`` and ``[MASK]`` exist (targets and data builders insert them);
* an unknown token exists: ``[UNK]`` for a vocab.txt; for a sentencepiece model, the piece the
  model itself declares as unknown (``sp.unk_id()``, normally ``<unk>``, or ``[UNK]`` in
  UER-style models such as ``cluecorpussmall_spm.model``), because that is the id sentencepiece
  emits for unknown text.

Sentencepiece models used with BERT-style models carry ``[PAD]/[CLS]/[SEP]/[MASK]`` as pieces
(``cluecorpussmall_spm.model``: ``[PAD]``=0, ``[UNK]``=1 (the unk piece), ``[CLS]``=2, ``[SEP]``=3,
``[MASK]``=4), so the very same rules apply to them: the id of the piece ``[PAD]`` must be 0.
A plain sentencepiece model (``<unk>``, ``<s>``, ``</s>`` only) is rejected with a message naming
the missing pieces.

Duplicate tokens in a vocab.txt: every line keeps its id in ``i2w`` and ``w2i`` maps the token to
the id of its *last* occurrence. That is what both transformers' ``load_vocab`` and UER-py's
``Vocab.load`` do, so ids stay identical to theirs.
"""
from __future__ import annotations

import io
import logging
import os
from typing import Iterable, Iterator, Sequence

from uer.errors import UserError
from uer.utils.io import UTF8_BOM, atomic_open, check_input_file

PAD_TOKEN = "[PAD]"
UNK_TOKEN = "[UNK]"
CLS_TOKEN = "[CLS]"
SEP_TOKEN = "[SEP]"
MASK_TOKEN = "[MASK]"
SPM_UNK_TOKEN = "<unk>"
# Special tokens by role. BERT's are the default; byte-level BPE (RoBERTa, GPT-2) and XLM-R vocabularies use
# fairseq's, whose padding id is 1, not 0 (padding positions are found from the segment ids, never from id 0).
BERT_SPECIALS = {"pad": PAD_TOKEN, "unk": UNK_TOKEN, "cls": CLS_TOKEN, "sep": SEP_TOKEN, "mask": MASK_TOKEN}
FAIRSEQ_SPECIALS = {"pad": "<pad>", "unk": "<unk>", "cls": "<s>", "sep": "</s>", "mask": "<mask>"}

logger = logging.getLogger(__name__)


class VocabError(UserError, ValueError):
    """A vocabulary file breaks one of the rules above (the message names the file and the rule)."""


class Vocab:
    """Token <-> id mapping with validated special tokens.

    ``w2i`` maps a token to its id, ``i2w`` lists tokens by id. Lookups of unknown tokens return
    ``unk_id``.
    """

    __slots__ = ("w2i", "i2w", "_unk_token", "_path", "_pad_id", "_unk_id", "_cls_id", "_sep_id", "_mask_id")

    def __init__(self, tokens: Iterable[str], *, unk_token: str = UNK_TOKEN, path: str | None = None,
                 source: str | None = None, validate: bool = True, specials: dict[str, str] | None = None) -> None:
        """Build from tokens in id order; ``source`` is how errors name the origin (default: the path).
        ``specials``: the special tokens by role (pad, unk, cls, sep, mask) when they are not BERT's."""
        self.i2w: list[str] = list(tokens)
        self.w2i: dict[str, int] = {token: index for index, token in enumerate(self.i2w)}  # last wins
        self._unk_token = specials["unk"] if specials else unk_token
        self._path = None if path is None else str(path)
        if validate:
            origin = source or (f"vocab {self._path}" if self._path else "vocab <in memory>")
            self._validate_specials(origin, specials) if specials else self._validate(origin)
        w2i = self.w2i
        roles = specials or BERT_SPECIALS
        self._unk_id = w2i.get(self._unk_token, -1)
        self._pad_id = w2i.get(roles["pad"], -1)
        self._cls_id = w2i.get(roles["cls"], -1)
        self._sep_id = w2i.get(roles["sep"], -1)
        self._mask_id = w2i.get(roles["mask"], -1)

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_file(cls, path: str | os.PathLike, validate: bool = True) -> "Vocab":
        """Load a vocab.txt: one token per line, UTF-8, id = 0-based line number.

        Only the line terminator is removed (like transformers' ``load_vocab``): a token may
        legitimately end in other whitespace, e.g. google_zh_vocab.txt has ``"\\u2028"`` and
        ``"##\\u2028"`` entries; stripping them would shift nothing but would create a bogus ``##``
        token and diverge from transformers.
        """
        path = os.fspath(path)
        check_input_file(path, "vocabulary file")
        with open(path, "rb") as reader:
            raw = reader.read()
        if raw.startswith(UTF8_BOM):
            raw = raw[len(UTF8_BOM):]
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as err:
            raise VocabError(f"invalid UTF-8 at byte offset {err.start}: a vocabulary must be UTF-8, one token per "
                             "line", path, raw[:err.start].count(b"\n") + 1) from None
        # Universal newlines (\r\n -> \n) as text-mode open() does; str.splitlines would also cut at U+2028.
        tokens = [line[:-1] if line.endswith("\n") else line for line in io.StringIO(text, newline=None)]
        return cls(tokens, path=path, validate=validate)

    @classmethod
    def from_spm(cls, model_path: str | os.PathLike, validate: bool = True) -> "Vocab":
        """Use a sentencepiece model's pieces as the vocabulary (id = piece id)."""
        model_path = os.fspath(model_path)
        check_input_file(model_path, "sentencepiece model")
        import sentencepiece as spm

        sp = spm.SentencePieceProcessor()
        try:
            sp.Load(model_path)
        except Exception as exc:  # sentencepiece raises OSError/RuntimeError with a terse message
            raise VocabError(f"spm model {model_path}: cannot be loaded by sentencepiece ({exc})") from exc
        return cls.from_sp_processor(sp, path=model_path, validate=validate)

    @classmethod
    def from_sp_processor(cls, sp: "object", path: str | None = None, validate: bool = True) -> "Vocab":
        """Vocabulary of an already loaded ``SentencePieceProcessor`` (unk = its unk piece)."""
        pieces = [sp.IdToPiece(i) for i in range(sp.GetPieceSize())]
        unk_id = sp.unk_id()
        unk_token = pieces[unk_id] if 0 <= unk_id < len(pieces) else SPM_UNK_TOKEN
        source = f"spm model {path}" if path else "spm model <in memory>"
        return cls(pieces, unk_token=unk_token, path=path, source=source, validate=validate)

    @classmethod
    def from_tokens(cls, tokens: Iterable[str], unk_token: str = UNK_TOKEN, validate: bool = True) -> "Vocab":
        """Vocabulary from tokens in id order (e.g. one built from a corpus)."""
        return cls(tokens, unk_token=unk_token, validate=validate)

    # ------------------------------------------------------------------ validation
    def _validate(self, source: str) -> None:
        w2i = self.w2i
        problems = []
        if PAD_TOKEN not in w2i:
            problems.append(f"{PAD_TOKEN} is missing (it must have id 0)")
        elif w2i[PAD_TOKEN] != 0:
            problems.append(f"{PAD_TOKEN} must have id 0, found at line {w2i[PAD_TOKEN] + 1}")
        missing = [t for t in (CLS_TOKEN, SEP_TOKEN, MASK_TOKEN) if t not in w2i]
        if missing:
            problems.append(f"required token(s) {', '.join(missing)} missing")
        if self._unk_token not in w2i:
            problems.append(f"unknown token {self._unk_token} is missing")
        if problems:
            raise VocabError(f"{source}: " + "; ".join(problems))
        self._check_duplicates(source)

    def _check_duplicates(self, source: str) -> None:
        """A special token twice would silently move (the last occurrence wins): refused with both lines.
        Ordinary tokens twice keep transformers' and UER-py's ids (one warning with their count)."""
        if len(self.w2i) == len(self.i2w):
            return
        specials = {PAD_TOKEN, CLS_TOKEN, SEP_TOKEN, MASK_TOKEN, self._unk_token}
        first: dict[str, int] = {}
        repeated = 0
        for index, token in enumerate(self.i2w):
            if token not in first:
                first[token] = index
                continue
            if token in specials:
                raise VocabError(f"{source}: the special token {token} is on line {first[token] + 1} and again on "
                                 f"line {index + 1}; a vocabulary holds each special token once")
            repeated += 1
        example = next(t for t, i in first.items() if self.w2i[t] != i)
        logger.warning("%s: %d tokens occur more than once (e.g. %r); each maps to its last line, as in "
                       "transformers and UER-py", source, repeated, example)

    def _validate_specials(self, source: str, specials: dict[str, str]) -> None:
        missing = sorted({token for token in specials.values() if token not in self.w2i})
        if missing:
            raise VocabError(f"{source}: special token(s) {', '.join(missing)} missing")

    # ------------------------------------------------------------------ lookups
    def __len__(self) -> int:
        return len(self.i2w)

    def __contains__(self, token: object) -> bool:
        return token in self.w2i

    def __iter__(self) -> Iterator[str]:
        return iter(self.i2w)

    def __repr__(self) -> str:
        return f"Vocab(size={len(self.i2w)}, path={self._path!r})"

    def get(self, token: str) -> int:
        """Id of ``token``; ``unk_id`` when it is not in the vocabulary."""
        return self.w2i.get(token, self._unk_id)

    def fingerprint(self) -> str:
        """SHA-256 of the tokens in id order: two vocabularies with the same fingerprint give every token the
        same id (datasets record it, so a vocabulary of the right size in another order is caught)."""
        import hashlib

        return hashlib.sha256("\n".join(self.i2w).encode("utf-8")).hexdigest()

    def to_ids(self, tokens: Sequence[str]) -> list[int]:
        """Ids of ``tokens`` (unknown ones map to ``unk_id``)."""
        get, unk = self.w2i.get, self._unk_id
        return [get(t, unk) for t in tokens]

    def to_tokens(self, ids: Sequence[int]) -> list[str]:
        """Tokens of ``ids`` (IndexError for an id outside the vocabulary)."""
        i2w = self.i2w
        return [i2w[i] for i in ids]

    @property
    def unk_token(self) -> str:
        return self._unk_token

    @property
    def pad_id(self) -> int:
        return self._pad_id

    @property
    def unk_id(self) -> int:
        return self._unk_id

    @property
    def cls_id(self) -> int:
        return self._cls_id

    @property
    def sep_id(self) -> int:
        return self._sep_id

    @property
    def mask_id(self) -> int:
        return self._mask_id

    @property
    def path(self) -> str | None:
        """File the vocabulary was loaded from (None when built in memory)."""
        return self._path

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | os.PathLike) -> None:
        """Write one token per line, atomically (:func:`uer.utils.io.atomic_open`)."""
        path = os.fspath(path)
        for index, token in enumerate(self.i2w):
            if "\n" in token or "\r" in token:
                raise VocabError(f"vocab {path}: token {index} ({token!r}) contains a line break "
                                 "and cannot be saved one per line")
        with atomic_open(path, "w") as writer:
            writer.write("".join(token + "\n" for token in self.i2w))

    def __getstate__(self) -> dict:
        return {name: getattr(self, name) for name in self.__slots__ if name != "w2i"}

    def __setstate__(self, state: dict) -> None:
        for name, value in state.items():
            setattr(self, name, value)
        self.w2i = {token: index for index, token in enumerate(self.i2w)}
