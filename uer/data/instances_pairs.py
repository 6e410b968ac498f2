"""Instance builders of sentence pairs: ``bert`` (next sentence), ``albert`` (sentence order), ``sd`` (sentence
distance) and ``sr`` (sentence reordering); their semantics are in uer/data/pretrain_instances.py's docstring and the
classes' own."""
from __future__ import annotations

import itertools
import math
import random
from abc import abstractmethod

import numpy as np

from uer.data.instances_base import DocumentBuffer, InstanceBuilder, InstanceConfig, Ranges, register_instances


def _cut_lengths(la: int, lb: int, max_tokens: int) -> tuple[int, int]:
    """Tokens to remove from A and B: the same totals as removing one token at a time from the longer
    segment (from B on ties) until ``la + lb <= max_tokens``, in O(1)."""
    excess = la + lb - max_tokens
    if excess <= 0:
        return 0, 0
    if la > lb:
        first = min(excess, la - lb)
        cut_a, cut_b = first, 0
    else:
        first = min(excess, lb - la)
        cut_a, cut_b = 0, first
    rest = excess - first  # lengths are now equal: B, A, B, ... alternate
    return cut_a + rest // 2, cut_b + (rest + 1) // 2


def _front_cut(rnd: random.Random, k: int) -> int:
    """How many of ``k`` removed tokens come off the front: each end with p=1/2 -> Binomial(k, 1/2)."""
    return bin(rnd.getrandbits(k)).count("1") if k > 0 else 0


class _SentencePairs(InstanceBuilder):
    """Google-BERT chunking shared by bert (NSP) and albert (SOP)."""

    corpus_format = "documents"
    has_label = True

    def ranges(self, buf: DocumentBuffer, final: bool) -> tuple[np.ndarray, Ranges]:
        out = Ranges.empty()
        sent = buf.sent_offsets.tolist()
        docs = buf.doc_offsets.tolist()
        for _ in range(self.cfg.copies):
            for d in range(len(buf)):
                self._document(sent, docs, d, out)
        return buf.flat(), out

    def _target_length(self) -> int:
        max_tokens = self.cfg.seq_length - 3
        if self.random.random() < self.cfg.short_seq_prob:
            return self.random.randint(2, max_tokens)
        return max_tokens

    def _emit(self, out: Ranges, a: tuple[int, int], b: tuple[int, int], label: int) -> None:
        """Truncate (a_start, a_end), (b_start, b_end) to fit and record the instance."""
        (a0, a1), (b0, b1) = a, b
        cut_a, cut_b = _cut_lengths(a1 - a0, b1 - b0, self.cfg.seq_length - 3)
        fa, fb = _front_cut(self.random, cut_a), _front_cut(self.random, cut_b)
        a0, a1 = a0 + fa, a1 - (cut_a - fa)
        b0, b1 = b0 + fb, b1 - (cut_b - fb)
        out.add(a0, a1 - a0, b0, b1 - b0, label)

    @abstractmethod
    def _document(self, sent: list[int], docs: list[int], d: int, out: Ranges) -> None:
        ...


class BertInstances(_SentencePairs):
    """MLM + next-sentence prediction (label 1 = B is a random sentence)."""

    objectives = ("mlm", "sp")
    trains_on = ("bert",)

    def _document(self, sent: list[int], docs: list[int], d: int, out: Ranges) -> None:
        rnd = self.random
        first, last = docs[d], docs[d + 1]  # sentence index range of the document
        target = self._target_length()
        n_docs = len(docs) - 1
        chunk_start, chunk_len = first, 0
        s = first
        while s < last:
            chunk_len += sent[s + 1] - sent[s]
            if s == last - 1 or chunk_len >= target:
                n_sent = s + 1 - chunk_start
                a_end = chunk_start + (rnd.randint(1, n_sent - 1) if n_sent >= 2 else 1)
                a = (sent[chunk_start], sent[a_end])
                if n_sent == 1 or rnd.random() < 0.5:
                    # B from another document of the buffer, from a random sentence on.
                    other = d
                    if n_docs > 1:
                        other = rnd.randrange(n_docs - 1)
                        other += other >= d
                    o_first, o_last = docs[other], docs[other + 1]
                    b_target = target - (a[1] - a[0])
                    o = rnd.randrange(o_first, o_last)
                    b_start = sent[o]
                    while o < o_last - 1 and sent[o + 1] - b_start < b_target:
                        o += 1
                    self._emit(out, a, (b_start, sent[o + 1]), 1)
                    s = a_end - 1  # the chunk's unused sentences start the next chunk
                else:
                    self._emit(out, a, (sent[a_end], sent[s + 1]), 0)
                chunk_start, chunk_len = s + 1, 0
            s += 1


class AlbertInstances(_SentencePairs):
    """MLM + sentence-order prediction (label 1 = the two segments are swapped)."""

    objectives = ("mlm", "sp")
    trains_on = ("albert",)

    def _document(self, sent: list[int], docs: list[int], d: int, out: Ranges) -> None:
        rnd = self.random
        first, last = docs[d], docs[d + 1]
        target = self._target_length()
        chunk_start, chunk_len = first, 0
        for s in range(first, last):
            chunk_len += sent[s + 1] - sent[s]
            if s == last - 1 or chunk_len >= target:
                n_sent = s + 1 - chunk_start
                if n_sent >= 2:
                    split = sent[chunk_start + rnd.randint(1, n_sent - 1)]
                elif chunk_len >= 2:  # one sentence: split inside it
                    split = sent[chunk_start] + rnd.randint(1, chunk_len - 1)
                else:
                    chunk_start, chunk_len = s + 1, 0
                    continue
                a, b = (sent[chunk_start], split), (split, sent[s + 1])
                if rnd.random() < 0.5:
                    self._emit(out, b, a, 1)
                else:
                    self._emit(out, a, b, 0)
                chunk_start, chunk_len = s + 1, 0


SD_ADJACENT, SD_SAME_DOCUMENT, SD_OTHER_DOCUMENT = 0, 1, 2


class SdInstances(_SentencePairs):
    """MLM + sentence distance (ERNIE 2.0): is B the segment right after A (0), elsewhere in A's document
    (1, at least one sentence away, before or after A) or from another document (2)?

    Chunks and A as for bert; the label is drawn uniformly among the cases the document allows (1 needs a
    sentence that is neither in A nor right after it; 2 needs another document in the buffer).
    """

    objectives = ("mlm", "sd")
    trains_on = ("sd",)
    label_key = "sd_labels"

    def _document(self, sent: list[int], docs: list[int], d: int, out: Ranges) -> None:
        rnd = self.random
        first, last = docs[d], docs[d + 1]
        target = self._target_length()
        n_docs = len(docs) - 1
        chunk_start, chunk_len = first, 0
        s = first
        while s < last:
            chunk_len += sent[s + 1] - sent[s]
            if s == last - 1 or chunk_len >= target:
                n_sent = s + 1 - chunk_start
                a_end = chunk_start + (rnd.randint(1, n_sent - 1) if n_sent >= 2 else 1)
                a = (sent[chunk_start], sent[a_end])
                b_target = max(1, target - (a[1] - a[0]))
                # Sentences B may start at for "same document, not adjacent": after a gap, or before A
                # with a gap (B then ends at least one sentence before A starts).
                far = [o for o in range(first, last) if o > a_end or o < chunk_start - 1]
                choices = ([SD_ADJACENT] if a_end < s + 1 else []) + ([SD_SAME_DOCUMENT] if far else []) \
                    + ([SD_OTHER_DOCUMENT] if n_docs > 1 else [])
                if not choices:
                    chunk_start, chunk_len = s + 1, 0
                    s += 1
                    continue
                label = choices[rnd.randrange(len(choices))]
                if label == SD_ADJACENT:
                    self._emit(out, a, (sent[a_end], sent[s + 1]), label)
                else:
                    if label == SD_SAME_DOCUMENT:
                        o = far[rnd.randrange(len(far))]
                        o_last = chunk_start - 1 if o < chunk_start else last
                    else:
                        other = rnd.randrange(n_docs - 1)
                        other += other >= d
                        o = rnd.randrange(docs[other], docs[other + 1])
                        o_last = docs[other + 1]
                    b_start, e = sent[o], o
                    while e < o_last - 1 and sent[e + 1] - b_start < b_target:
                        e += 1
                    self._emit(out, a, (b_start, sent[e + 1]), label)
                    s = a_end - 1  # the chunk's unused sentences start the next chunk
                chunk_start, chunk_len = s + 1, 0
            s += 1


def sr_labels_num(max_segments: int) -> int:
    """Classes of sentence reordering: every order of 1, 2, ..., max_segments segments."""
    return sum(math.factorial(k) for k in range(1, max_segments + 1))


def sr_label(order: tuple[int, ...]) -> int:
    """The class of a permutation: orders of fewer segments first, then lexicographic (itertools order)."""
    k = len(order)
    return sr_labels_num(k - 1) + list(itertools.permutations(range(k))).index(tuple(order))


def sr_order(label: int) -> tuple[int, ...]:
    """Inverse of :func:`sr_label`: the order of the original segments in the shuffled instance."""
    k = 1
    while label >= sr_labels_num(k):
        k += 1
    return next(itertools.islice(itertools.permutations(range(k)), label - sr_labels_num(k - 1), None))


class SrInstances(InstanceBuilder):
    """MLM + sentence reordering (ERNIE 2.0): a paragraph (consecutive sentences of a document, at most
    ``seq_length - 2`` tokens) is cut into 1 .. ``sr_max_segments`` segments, at sentence boundaries when it
    has enough sentences and inside the text otherwise; the segments are shuffled into ``[CLS] ... [SEP]``
    and the label is the permutation applied (:func:`sr_label`: instance = segments[order[0]], ...)."""

    corpus_format = "documents"
    has_label = True
    objectives = ("mlm", "sr")
    trains_on = ("sr",)
    label_key = "sr_labels"

    def __init__(self, cfg: InstanceConfig, seed: int, worker: int = 0) -> None:
        super().__init__(cfg, seed, worker)
        self._stream_units: np.ndarray | None = None

    def unit_stream(self, buf: DocumentBuffer) -> np.ndarray | None:
        return self._stream_units

    def ranges(self, buf: DocumentBuffer, final: bool) -> tuple[np.ndarray, Ranges]:
        rnd, keep = self.random, self.cfg.seq_length - 2
        sent, docs = buf.sent_offsets.tolist(), buf.doc_offsets.tolist()
        tokens, units = buf.flat(), buf.flat_units()
        pieces, unit_pieces, out, base = [], [], Ranges.empty(), 0
        for _ in range(self.cfg.copies):
            for d in range(len(buf)):
                s, last = docs[d], docs[d + 1]
                while s < last:
                    # A paragraph: sentences from s while they fit (at least one, cut to fit).
                    e = s + 1
                    while e < last and sent[e + 1] - sent[s] <= keep:
                        e += 1
                    start, end = sent[s], min(sent[e], sent[s] + keep)
                    bounds = [b for b in sent[s + 1:e] if start < b < end]
                    k = rnd.randint(1, min(self.cfg.sr_max_segments, end - start))
                    cuts = sorted(rnd.sample(bounds, k - 1)) if len(bounds) >= k - 1 \
                        else sorted(rnd.sample(range(start + 1, end), k - 1))
                    edges = [start] + cuts + [end]
                    order = list(range(k))
                    rnd.shuffle(order)
                    for i in order:
                        pieces.append(tokens[edges[i]:edges[i + 1]])
                        if units is not None:
                            piece_units = units[edges[i]:edges[i + 1]].copy()
                            piece_units[0] = max(piece_units[0], 1)  # a segment never continues another's word
                            unit_pieces.append(piece_units)
                    out.add(base, end - start, label=sr_label(tuple(order)))
                    base += end - start
                    s = e
        flat = np.concatenate(pieces) if pieces else np.zeros(1, np.int32)
        self._stream_units = (np.concatenate(unit_pieces) if unit_pieces else np.zeros(1, np.int8)) \
            if units is not None else None
        return flat, out


register_instances("bert")(BertInstances)
register_instances("albert")(AlbertInstances)
register_instances("sd")(SdInstances)
register_instances("sr")(SrInstances)
