"""Word and entity boundaries for knowledge masking (ERNIE 1.0's whole-word and entity masking).

A segmenter cuts a text into *units*: words, and with ``entities`` the named entities and phrases, each a
run of text that masking treats as one piece. :func:`segmented_encoder` tokenizes each unit separately and
returns the token ids with one code per token (:data:`CONTINUES`, :data:`WORD_START`, :data:`ENTITY_START`),
which preprocessing stores in the dataset (array ``unit``) so that dynamic masking never segments again.

Segmenters (``--segmenter``):

* ``jieba``: the text is segmented by jieba (the segmenter UER-py uses for whole-word masking; imported
  lazily). Entities are jieba's part-of-speech tags for person (``nr``, ``nrfg``, ``nrt``), place (``ns``)
  and organisation (``nt``) names, plus the phrases of ``--entity_dict_path`` (one per line, loaded into
  jieba as user words with the tag ``nz``; a line may carry a count and a tag as jieba's own user dictionary does).
* ``space``: the corpus is already segmented, words separated by spaces (e.g. People's Daily); the spaces
  only mark boundaries and are not part of the text the tokenizer sees. Entities come from
  ``--entity_dict_path`` only: runs of consecutive words whose concatenation is a phrase of the dictionary
  (longest match first).

Tokens from one unit are the same as the tokenizer gives for the whole text whenever the tokenizer splits
at the unit's boundaries anyway (every Chinese character is its own BERT token); elsewhere (an English word
cut in two by the segmenter) the unit's own tokenization is used.
"""
from __future__ import annotations

from typing import Callable, Iterable

CONTINUES, WORD_START, ENTITY_START = 0, 1, 2
ENTITY_TAGS = frozenset({"nr", "nrfg", "nrt", "ns", "nt", "nz_user"})
SEGMENTERS = ("jieba", "space")


class SegmentedIds(list):
    """Token ids (a plain list, so existing code can use it as one) with a unit code per token."""

    def __init__(self, ids: Iterable[int], units: list[int]) -> None:
        super().__init__(ids)
        self.units = units


def _import_jieba():
    try:
        import jieba
        import jieba.posseg
    except ImportError:
        raise ImportError("whole-word and entity masking with --segmenter jieba need the package 'jieba' "
                          "(pip install -r requirements-segment.txt)") from None
    jieba.setLogLevel(60)  # no "Building prefix dict" lines in every worker
    return jieba


def read_phrases(path: str) -> list[str]:
    """Phrases of a user dictionary: the first whitespace-separated field of each non-empty line."""
    with open(path, encoding="utf-8") as handle:
        return [line.split()[0] for line in handle if line.strip()]


class Segmenter:
    """Cuts a text into (unit text, is_entity) pieces; see the module doc."""

    def __init__(self, name: str = "jieba", entities: bool = False, entity_dict_path: str | None = None) -> None:
        if name not in SEGMENTERS:
            raise ValueError(f"unknown segmenter {name!r}; choose one of {', '.join(SEGMENTERS)}")
        self.name = name
        self.entities = entities
        self.phrases = set(read_phrases(entity_dict_path)) if entity_dict_path else set()
        self._longest_phrase = max((len(p) for p in self.phrases), default=0)
        if name == "jieba":
            self._jieba = _import_jieba()
            for phrase in sorted(self.phrases):
                self._jieba.add_word(phrase, freq=None, tag="nz_user")

    def __call__(self, text: str) -> list[tuple[str, bool]]:
        if self.name == "space":
            return self._space(text)
        if not self.entities:
            return [(word, False) for word in self._jieba.cut(text) if word.strip()]
        return [(pair.word, pair.flag in ENTITY_TAGS) for pair in self._jieba.posseg.cut(text) if pair.word.strip()]

    def _space(self, text: str) -> list[tuple[str, bool]]:
        words = text.split()
        if not (self.entities and self.phrases):
            return [(w, False) for w in words]
        out, i = [], 0
        while i < len(words):
            # Longest run of words starting at i that spells a dictionary phrase.
            best, joined = 0, ""
            for j in range(i, len(words)):
                joined += words[j]
                if len(joined) > self._longest_phrase:
                    break
                if joined in self.phrases:
                    best = j + 1 - i
            if best:
                out.append(("".join(words[i:i + best]), True))
                i += best
            else:
                out.append((words[i], False))
                i += 1
        return out


def segmented_encoder(encode: Callable[[str], list[int]], segmenter: Segmenter) -> Callable[[str], SegmentedIds]:
    """``encode`` applied unit by unit: the ids of the whole text and each token's unit code."""

    def encode_units(text: str) -> SegmentedIds:
        ids: list[int] = []
        units: list[int] = []
        for piece, is_entity in segmenter(text):
            piece_ids = encode(piece)
            if not piece_ids:
                continue
            ids.extend(piece_ids)
            units.append(ENTITY_START if is_entity else WORD_START)
            units.extend([CONTINUES] * (len(piece_ids) - 1))
        return SegmentedIds(ids, units)

    return encode_units
