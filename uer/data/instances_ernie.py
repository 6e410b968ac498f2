"""ERNIE's data: the ERNIE 1.0 pre-training line format and the ERNIE 2.0 dataset kinds.

**ERNIE 1.0 lines** (``preprocess.py --corpus_format ernie``). ERNIE 1.0 ships its pre-training data already
tokenised, one instance a line::

    token_ids;sentence_type_ids;position_ids;seg_labels;next_sentence_label

each field a space-separated list of integers (the label a single one): ``token_ids`` are
``[CLS] A [SEP]`` or ``[CLS] A [SEP] B [SEP]`` in the vocabulary's ids, ``sentence_type_ids`` 0 on
``[CLS] A [SEP]`` and 1 on ``B [SEP]``, ``position_ids`` 0, 1, 2, ..., ``seg_labels`` 0 where a word starts,
1 inside a word and -1 on [CLS]/[SEP], and ``next_sentence_label`` the sentence-pair label (stored as the
``sp`` label as given, 0 or 1). Each line becomes one instance, exactly as written (no re-chunking); the
word boundaries become the dataset's masking units (array ``unit``, the same mechanism as
``--whole_word_masking``), so masking takes whole words without a segmenter.

**ERNIE 2.0 kinds** (``preprocess.py --target KIND``; each also carries MLM masks, so ``--target mlm KIND``
trains both, and ``--dataset_path_list`` mixes them):

* ``cap`` (capitalisation, English; one document per line): words are split at white space and lower-cased
  before tokenising; a word's first token is labelled 1 when the word began with a capital, 0 otherwise; other
  tokens carry no label. Instances as ``mlm``'s (``[CLS] tokens [SEP]``, ``seq_length - 2`` tokens each).
* ``tdr`` (token-document relation; sentences of documents, blank line between documents): each sentence is a
  segment and an instance; a token is labelled 1 when its id also occurs in another sentence of its document.
  One-sentence documents are skipped (no other segment).
* ``dr`` (discourse relation; documents): a sentence that opens with a connective of :data:`CONNECTIVES`
  (Chinese or English) and the sentence before it form a pair ``A = previous``, ``B = sentence without its
  connective``, labelled by the connective's relation (:data:`RELATIONS`). Other sentences give no instance.
* ``ir`` (IR relevance): ``query<TAB>title<TAB>grade`` lines (grade 0, 1 or 2; a first line starting with
  ``query`` is a header); ``[CLS] query [SEP] title [SEP]`` labelled by the grade.
* ``dlm`` (dialogue language model, ERNIE 1.0): ``query<TAB>response`` lines; with probability 1/2 the response
  is replaced by another line's response of the same buffer (label 1 = replaced, 0 = the real response). The
  two dialogue roles are the two segments, so their role embedding is the segment embedding's rows 1 and 2.

Sentence labels are stored in ``label`` (batch key ``<kind>_labels``); token labels in ``token_label``
(int8, -1 = none, batch key ``<kind>_labels`` too).
"""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from typing import Any, Callable, ClassVar

import numpy as np

from uer.data.instances_base import DocumentBuffer, InstanceBuilder, InstanceConfig, Ranges, register_instances
from uer.data.instances_pairs import _cut_lengths
from uer.text.segment import CONTINUES, WORD_START, SegmentedIds

CORPUS_FORMATS = ("text", "ernie")  # preprocess.py --corpus_format: the target's own text format, or ERNIE lines
ERNIE_LINE_TARGETS = ("bert", "mlm")  # the dataset kinds an ERNIE-format corpus can be written as


@dataclass(frozen=True)
class Record:
    """One line of a record corpus (corpus format "records"): segment A (and B) without specials, and a label."""

    a: list[int]
    b: list[int] | None
    label: int


def _ints(field: str, name: str) -> list[int]:
    try:
        return [int(x) for x in field.split()]
    except ValueError:
        raise ValueError(f"{name}: expected space-separated integers, got {field.strip()[:40]!r}") from None


def parse_ernie_line(text: str, vocab_size: int, cls_id: int, sep_id: int) -> Record:
    """Parse and check one line (see the module doc). Raises ValueError naming the problem."""
    fields = text.split(";")
    if len(fields) != 5:
        raise ValueError(f"expected 5 ';'-separated fields (token_ids;sentence_type_ids;position_ids;seg_labels;"
                         f"next_sentence_label), got {len(fields)}")
    tokens = _ints(fields[0], "token_ids")
    types = _ints(fields[1], "sentence_type_ids")
    positions = _ints(fields[2], "position_ids")
    seg_labels = _ints(fields[3], "seg_labels")
    label_field = _ints(fields[4], "next_sentence_label")
    n = len(tokens)
    if not (len(types) == len(positions) == len(seg_labels) == n):
        raise ValueError(f"fields of different lengths: token_ids {n}, sentence_type_ids {len(types)}, "
                         f"position_ids {len(positions)}, seg_labels {len(seg_labels)}")
    if len(label_field) != 1 or label_field[0] not in (0, 1):
        raise ValueError(f"next_sentence_label must be 0 or 1, got {fields[4].strip()!r}")
    bad = [t for t in tokens if not 0 <= t < vocab_size]
    if bad:
        raise ValueError(f"token id {bad[0]} is outside the vocabulary (size {vocab_size}): wrong --vocab_path?")
    if positions != list(range(n)):
        raise ValueError("position_ids must be 0, 1, 2, ... (positions are implied by the order here)")
    seps = [i for i, t in enumerate(tokens) if t == sep_id]
    if n < 3 or tokens[0] != cls_id or tokens[-1] != sep_id or len(seps) > 2 or cls_id in tokens[1:]:
        raise ValueError(f"token_ids must be [CLS] A [SEP] or [CLS] A [SEP] B [SEP] ([CLS] = {cls_id}, "
                         f"[SEP] = {sep_id} in this vocabulary)")
    first_sep = seps[0]
    expected_types = [0] * (first_sep + 1) + [1] * (n - first_sep - 1)
    if types != expected_types:
        raise ValueError("sentence_type_ids must be 0 on [CLS] A [SEP] and 1 on B [SEP]")
    special = {0, first_sep, n - 1}
    for i, s in enumerate(seg_labels):
        if (s == -1) != (i in special) or s not in (-1, 0, 1):
            raise ValueError(f"seg_labels[{i}] = {s}: expected -1 on [CLS]/[SEP], 0 (word start) or 1 (inside a "
                             "word) elsewhere")

    def segment(lo: int, hi: int) -> SegmentedIds | None:
        if hi <= lo:
            return None
        units = [WORD_START if s == 0 else CONTINUES for s in seg_labels[lo:hi]]
        units[0] = WORD_START  # a segment never continues the word of the segment before it
        return SegmentedIds(tokens[lo:hi], units)

    a = segment(1, first_sep)
    if a is None:
        raise ValueError("segment A is empty")
    b = segment(first_sep + 1, n - 1) if len(seps) == 2 else None
    if len(seps) == 2 and b is None:
        raise ValueError("segment B is empty")
    return Record(a, b, label_field[0])


class ErnieLineInstances(InstanceBuilder):
    """Each line of an ERNIE-format corpus as one instance, as written: ``[CLS] A [SEP] (B [SEP])``.

    Not a dataset kind of its own: the dataset is written as the ``bert`` kind (mlm + sp, the line's
    label as the ``sp`` label) or the ``mlm`` kind (labels dropped). ``iter_buffers`` reads each line
    into a document of one or two sentences with its label.
    """

    corpus_format: ClassVar[str] = "records"
    objectives = ("mlm", "sp")
    trains_on = ("bert",)

    def __init__(self, cfg: InstanceConfig, seed: int, worker: int = 0, with_label: bool = True) -> None:
        super().__init__(cfg, seed, worker)
        self.has_label = with_label  # instance attribute: the kind written decides

    def text_encoder(self, encode: Callable[[str], list[int]], vocab: Any) -> Callable[[str], Record]:
        def parse(text: str) -> Record:
            line = parse_ernie_line(text, len(vocab), vocab.cls_id, vocab.sep_id)
            check_ernie_line_length(line, self.cfg.seq_length)
            return line

        return parse

    def ranges(self, buf: DocumentBuffer, final: bool) -> tuple[np.ndarray, Ranges]:
        out = Ranges.empty()
        sent, docs = buf.sent_offsets.tolist(), buf.doc_offsets.tolist()
        labels = buf.labels.tolist()
        for _ in range(self.cfg.copies):
            for d in range(len(buf)):
                s = docs[d]
                a0, a1 = sent[s], sent[s + 1]
                if docs[d + 1] - s == 2:
                    out.add(a0, a1 - a0, sent[s + 1], sent[s + 2] - sent[s + 1], labels[d])
                else:
                    out.add(a0, a1 - a0, 0, 0, labels[d])
        return buf.flat(), out


def check_ernie_line_length(line: Record, seq_length: int) -> None:
    """An instance longer than --seq_length would have to be cut, which ERNIE's lines do not allow for."""
    n = len(line.a) + 2 + (len(line.b) + 1 if line.b is not None else 0)
    if n > seq_length:
        raise ValueError(f"{n} tokens, more than --seq_length {seq_length}: raise --seq_length (ERNIE's lines are "
                         "instances as they are, never cut)")


# ---------------------------------------------------------------------------------------------------------------
# ERNIE 2.0 kinds

class LabelledIds(list):
    """Token ids with a label per token (``token_labels``, -1 = none) and/or a sentence tag (``tag``, -1 = none),
    which :class:`DocumentBuffer` stores beside the tokens."""

    def __init__(self, ids: list[int], token_labels: list[int] | None = None, tag: int | None = None,
                 units: list[int] | None = None) -> None:
        super().__init__(ids)
        if token_labels is not None:
            self.token_labels = token_labels
        if tag is not None:
            self.tag = tag
        if units is not None:  # knowledge masking's unit codes (uer.text.segment.SegmentedIds), kept
            self.units = units


class _Single(InstanceBuilder):
    """``[CLS] tokens [SEP]`` instances of at most ``seq_length - 2`` tokens, each a range of the buffer."""

    has_label = False

    def _chunks(self, first: int, end: int, out: Ranges) -> None:
        width = self.cfg.seq_length - 2
        for start in range(first, end, width):
            out.add(start, min(width, end - start))


class CapInstances(_Single):
    """Capitalisation prediction (see the module doc): mlm instances with a capital label per word start."""

    corpus_format = "lines"
    objectives = ("mlm", "cap")
    trains_on = ("cap",)
    token_label_key = "cap_labels"

    def text_encoder(self, encode: Callable[[str], list[int]], vocab: Any) -> Callable[[str], LabelledIds]:
        def encode_words(text: str) -> LabelledIds:
            ids: list[int] = []
            labels: list[int] = []
            units: list[int] | None = None
            for word in text.split():
                piece = encode(word.lower())
                if piece:
                    ids.extend(piece)
                    labels.append(1 if word[0].isupper() else 0)
                    labels.extend([-1] * (len(piece) - 1))
                    if hasattr(piece, "units"):
                        units = (units or []) + list(piece.units)
            return LabelledIds(ids, token_labels=labels, units=units)

        return encode_words

    def ranges(self, buf: DocumentBuffer, final: bool) -> tuple[np.ndarray, Ranges]:
        out = Ranges.empty()
        sent, docs = buf.sent_offsets.tolist(), buf.doc_offsets.tolist()
        for _ in range(self.cfg.copies):
            for d in range(len(buf)):
                self._chunks(sent[docs[d]], sent[docs[d + 1]], out)
        return buf.flat(), out

    def token_label_stream(self, buf: DocumentBuffer) -> np.ndarray | None:
        if buf.token_labels is None or not len(buf.token_labels):
            return np.full(1, -1, np.int8)
        return np.frombuffer(buf.token_labels, dtype=np.int8)


def tdr_labels(tokens: np.ndarray, sent_offsets: list[int]) -> np.ndarray:
    """Per token of one document (``tokens``, sentences at ``sent_offsets`` relative to it): 1 if its id occurs
    in another sentence of the document, else 0."""
    total = Counter(tokens.tolist())
    out = np.zeros(len(tokens), np.int8)
    for lo, hi in zip(sent_offsets, sent_offsets[1:]):
        own = Counter(tokens[lo:hi].tolist())
        out[lo:hi] = [1 if total[t] > own[t] else 0 for t in tokens[lo:hi].tolist()]
    return out


class TdrInstances(_Single):
    """Token-document relation (see the module doc): one instance per sentence of a multi-sentence document."""

    corpus_format = "documents"
    objectives = ("mlm", "tdr")
    trains_on = ("tdr",)
    token_label_key = "tdr_labels"

    def __init__(self, cfg: InstanceConfig, seed: int, worker: int = 0) -> None:
        super().__init__(cfg, seed, worker)
        self._labels = np.full(1, -1, np.int8)

    def ranges(self, buf: DocumentBuffer, final: bool) -> tuple[np.ndarray, Ranges]:
        out = Ranges.empty()
        sent, docs = buf.sent_offsets.tolist(), buf.doc_offsets.tolist()
        flat = buf.flat()
        labels = np.full(max(len(buf.tokens), 1), -1, np.int8)
        for d in range(len(buf)):
            if docs[d + 1] - docs[d] >= 2:
                lo, hi = sent[docs[d]], sent[docs[d + 1]]
                labels[lo:hi] = tdr_labels(flat[lo:hi], [o - lo for o in sent[docs[d]:docs[d + 1] + 1]])
        self._labels = labels
        for _ in range(self.cfg.copies):
            for d in range(len(buf)):
                if docs[d + 1] - docs[d] >= 2:
                    for s in range(docs[d], docs[d + 1]):
                        self._chunks(sent[s], sent[s + 1], out)
        return flat, out

    def token_label_stream(self, buf: DocumentBuffer) -> np.ndarray | None:
        return self._labels


# Discourse relations and the connectives that open a sentence with them (longest match first; English is
# matched case-insensitively as whole words, a comma after the connective goes with it).
RELATIONS = ("contrast", "cause", "result", "addition", "condition", "concession", "temporal", "example")
CONNECTIVES: dict[str, dict[str, tuple[str, ...]]] = {
    "zh": {
        "contrast": ("但是", "然而", "可是", "不过"),
        "cause": ("因为", "由于"),
        "result": ("所以", "因此", "因而", "于是"),
        "addition": ("而且", "并且", "此外", "另外", "况且"),
        "condition": ("如果", "假如", "只要", "除非", "要是"),
        "concession": ("虽然", "尽管", "即使", "哪怕"),
        "temporal": ("然后", "之后", "随后", "后来"),
        "example": ("例如", "比如", "譬如"),
    },
    "en": {
        "contrast": ("but", "however", "yet", "nevertheless", "nonetheless"),
        "cause": ("because", "since"),
        "result": ("so", "therefore", "thus", "hence", "consequently", "as a result"),
        "addition": ("moreover", "furthermore", "also", "in addition", "besides"),
        "condition": ("if", "unless"),
        "concession": ("although", "though", "even though"),
        "temporal": ("then", "afterwards", "later", "meanwhile"),
        "example": ("for example", "for instance"),
    },
}
_ZH = sorted(((c, RELATIONS.index(r)) for r, cs in CONNECTIVES["zh"].items() for c in cs), key=lambda x: -len(x[0]))
_EN = re.compile(r"(" + "|".join(sorted((re.escape(c) for cs in CONNECTIVES["en"].values() for c in cs),
                                        key=len, reverse=True)) + r")\b[\s,;:]*", re.IGNORECASE)
_EN_RELATION = {c: RELATIONS.index(r) for r, cs in CONNECTIVES["en"].items() for c in cs}


def split_connective(text: str) -> tuple[int, str]:
    """(relation index, the sentence without its opening connective), or (-1, text) when it opens with none."""
    text = text.strip()
    for connective, relation in _ZH:
        if text.startswith(connective):
            return relation, text[len(connective):].lstrip("，,、：: ")
    match = _EN.match(text)
    if match:
        return _EN_RELATION[match.group(1).lower()], text[match.end():]
    return -1, text


class DrInstances(InstanceBuilder):
    """Discourse relation (see the module doc): (previous sentence, sentence without connective) pairs."""

    corpus_format = "documents"
    has_label = True
    objectives = ("mlm", "dr")
    trains_on = ("dr",)
    label_key = "dr_labels"

    def text_encoder(self, encode: Callable[[str], list[int]], vocab: Any) -> Callable[[str], LabelledIds]:
        def encode_sentence(text: str) -> LabelledIds:
            relation, rest = split_connective(text)
            ids = encode(rest)
            return LabelledIds(ids, tag=relation, units=getattr(ids, "units", None))

        return encode_sentence

    def ranges(self, buf: DocumentBuffer, final: bool) -> tuple[np.ndarray, Ranges]:
        out = Ranges.empty()
        sent, docs = buf.sent_offsets.tolist(), buf.doc_offsets.tolist()
        tags = buf.sent_tags.tolist() if buf.sent_tags is not None else []
        for _ in range(self.cfg.copies):
            for d in range(len(buf)):
                for s in range(docs[d] + 1, docs[d + 1]):
                    if tags[s] >= 0:
                        _add_pair(out, (sent[s - 1], sent[s]), (sent[s], sent[s + 1]), tags[s], self.cfg.seq_length)
        return buf.flat(), out


def _add_pair(out: Ranges, a: tuple[int, int], b: tuple[int, int], label: int, seq_length: int) -> None:
    """``[CLS] A [SEP] B [SEP]`` cut to fit: A keeps its end and B its start (the text next to the junction)."""
    cut_a, cut_b = _cut_lengths(a[1] - a[0], b[1] - b[0], seq_length - 3)
    out.add(a[0] + cut_a, a[1] - a[0] - cut_a, b[0], b[1] - b[0] - cut_b, label)


IR_GRADES = 3


class IrInstances(InstanceBuilder):
    """IR relevance (see the module doc): query-title pairs and their grade."""

    corpus_format = "records"
    has_label = True
    objectives = ("mlm", "ir")
    trains_on = ("ir",)
    label_key = "ir_labels"

    def text_encoder(self, encode: Callable[[str], list[int]], vocab: Any) -> Callable[[str], Record | None]:
        def parse(text: str) -> Record | None:
            fields = text.split("\t")
            if fields[0].strip().lower() == "query":
                return None
            if len(fields) != 3 or fields[2].strip() not in {str(g) for g in range(IR_GRADES)}:
                raise ValueError(f"expected 'query<TAB>title<TAB>grade' with a grade 0, 1 or 2, got {text[:60]!r}")
            query, title = encode(fields[0]), encode(fields[1])
            if not query or not title:
                raise ValueError("the query or the title has no tokens")
            return Record(query, title, int(fields[2]))

        return parse

    def ranges(self, buf: DocumentBuffer, final: bool) -> tuple[np.ndarray, Ranges]:
        out = Ranges.empty()
        sent, docs, labels = buf.sent_offsets.tolist(), buf.doc_offsets.tolist(), buf.labels.tolist()
        for _ in range(self.cfg.copies):
            for d in range(len(buf)):
                s = docs[d]
                _add_pair(out, (sent[s], sent[s + 1]), (sent[s + 1], sent[s + 2]), labels[d], self.cfg.seq_length)
        return buf.flat(), out


DLM_REAL, DLM_REPLACED = 0, 1


class DlmInstances(InstanceBuilder):
    """Dialogue language model (see the module doc): query-response pairs, half the responses replaced."""

    corpus_format = "records"
    has_label = True
    objectives = ("mlm", "dlm")
    trains_on = ("dlm",)
    label_key = "dlm_labels"

    def text_encoder(self, encode: Callable[[str], list[int]], vocab: Any) -> Callable[[str], Record | None]:
        def parse(text: str) -> Record | None:
            fields = text.split("\t")
            if [f.strip().lower() for f in fields] == ["query", "response"]:
                return None
            if len(fields) != 2:
                raise ValueError(f"expected 'query<TAB>response', got {len(fields)} field(s): {text[:60]!r}")
            query, response = encode(fields[0]), encode(fields[1])
            if not query or not response:
                raise ValueError("the query or the response has no tokens")
            return Record(query, response, DLM_REAL)

        return parse

    def ranges(self, buf: DocumentBuffer, final: bool) -> tuple[np.ndarray, Ranges]:
        out, rnd, n = Ranges.empty(), self.random, len(buf)
        sent, docs = buf.sent_offsets.tolist(), buf.doc_offsets.tolist()
        for _ in range(self.cfg.copies):
            for d in range(n):
                s = docs[d]
                query = (sent[s], sent[s + 1])
                if n > 1 and rnd.random() < 0.5:
                    other = rnd.randrange(n - 1)
                    other += other >= d
                    o = docs[other]
                    _add_pair(out, query, (sent[o + 1], sent[o + 2]), DLM_REPLACED, self.cfg.seq_length)
                else:
                    _add_pair(out, query, (sent[s + 1], sent[s + 2]), DLM_REAL, self.cfg.seq_length)
        return buf.flat(), out


register_instances("cap")(CapInstances)
register_instances("tdr")(TdrInstances)
register_instances("dr")(DrInstances)
register_instances("ir")(IrInstances)
register_instances("dlm")(DlmInstances)
