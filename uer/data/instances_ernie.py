"""ERNIE's data: the ERNIE 1.0 pre-training line format (``preprocess.py --corpus_format ernie``).

ERNIE 1.0 ships its pre-training data already tokenised, one instance a line::

    token_ids;sentence_type_ids;position_ids;seg_labels;next_sentence_label

each field a space-separated list of integers (the label a single one): ``token_ids`` are
``[CLS] A [SEP]`` or ``[CLS] A [SEP] B [SEP]`` in the vocabulary's ids, ``sentence_type_ids`` 0 on
``[CLS] A [SEP]`` and 1 on ``B [SEP]``, ``position_ids`` 0, 1, 2, ..., ``seg_labels`` 0 where a word starts,
1 inside a word and -1 on [CLS]/[SEP], and ``next_sentence_label`` the sentence-pair label (stored as the
``sp`` label as given, 0 or 1). Each line becomes one instance, exactly as written (no re-chunking); the
word boundaries become the dataset's masking units (array ``unit``, the same mechanism as
``--whole_word_masking``), so masking takes whole words without a segmenter.

The ERNIE 2.0 dataset kinds and their instance builders live in :mod:`uer.data.instances_ernie2`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from uer.data.pretrain_instances import DocumentBuffer, InstanceBuilder, InstanceConfig, Ranges
from uer.text.segment import CONTINUES, WORD_START, SegmentedIds

CORPUS_FORMATS = ("text", "ernie")  # preprocess.py --corpus_format: the target's own text format, or ERNIE lines
ERNIE_LINE_TARGETS = ("bert", "mlm")  # the dataset kinds an ERNIE-format corpus can be written as


@dataclass(frozen=True)
class ErnieLine:
    """One parsed line: segment A (and B) without specials, each with its unit codes, and the label."""

    a: SegmentedIds
    b: SegmentedIds | None
    label: int


def _ints(field: str, name: str) -> list[int]:
    try:
        return [int(x) for x in field.split()]
    except ValueError:
        raise ValueError(f"{name}: expected space-separated integers, got {field.strip()[:40]!r}") from None


def parse_ernie_line(text: str, vocab_size: int, cls_id: int, sep_id: int) -> ErnieLine:
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
    return ErnieLine(a, b, label_field[0])


class ErnieLineInstances(InstanceBuilder):
    """Each line of an ERNIE-format corpus as one instance, as written: ``[CLS] A [SEP] (B [SEP])``.

    Not a dataset kind of its own: the dataset is written as the ``bert`` kind (mlm + sp, the line's
    label as the ``sp`` label) or the ``mlm`` kind (labels dropped). ``iter_buffers`` reads each line
    into a document of one or two sentences with its label.
    """

    corpus_format: ClassVar[str] = "ernie"
    objectives = ("mlm", "sp")
    trains_on = ("bert",)

    def __init__(self, cfg: InstanceConfig, seed: int, worker: int = 0, with_label: bool = True) -> None:
        super().__init__(cfg, seed, worker)
        self.has_label = with_label  # instance attribute: the kind written decides

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


def check_ernie_line_length(line: ErnieLine, seq_length: int) -> None:
    """An instance longer than --seq_length would have to be cut, which ERNIE's lines do not allow for."""
    n = len(line.a) + 2 + (len(line.b) + 1 if line.b is not None else 0)
    if n > seq_length:
        raise ValueError(f"{n} tokens, more than --seq_length {seq_length}: raise --seq_length (ERNIE's lines are "
                         "instances as they are, never cut)")
