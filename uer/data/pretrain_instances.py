"""Instance builders: from tokenized documents to fixed-width training instances, one class per target.

UER-py semantics (its docs are the contract; this is our own code):

* ``bert`` (corpus: one sentence per line, a blank line between documents). Google BERT's recipe: per
  document, a target length of ``seq_length - 3`` tokens, or with probability ``short_seq_prob`` a random
  one in [2, seq_length - 3]; sentences are gathered into a chunk until it reaches the target; A = the
  chunk's first 1..k-1 sentences; B = the rest (label 0), or with probability 1/2 (always when the chunk
  has one sentence) sentences from a random *other* document of the buffer (label 1, "random next"; the
  chunk's unused sentences are put back). The longer segment is truncated one token at a time from a
  random end until ``[CLS] A [SEP] B [SEP]`` fits. A buffer holding a single document draws B from it.
* ``albert``: same corpus and chunking; B is always the continuation of A, and with probability 1/2 the
  two are swapped (label 1 = swapped). A one-sentence chunk is split inside the sentence so that both
  segments are real text (Google's ALBERT falls back to a random document there; SOP never does here).
* ``mlm`` (corpus: one document per line, RoBERTa format): ``[CLS] tokens [SEP]`` with at most
  ``seq_length - 2`` tokens per instance. Without ``--full_sentences`` each document gives its own
  instances (the last one shorter). With it, documents are packed into one stream separated by [SEP]
  (a separator that would open an instance is dropped) so every instance is full; the tail of a buffer
  carries over to the next one and only a worker's very last instance can be short.
* ``lm`` and ``bilm`` (one document per line, GPT/ELMo): each document becomes the stream
  ``[CLS] tokens [SEP]``, cut into windows of ``seq_length + 1`` tokens that start every ``seq_length``
  tokens (consecutive windows share one token), so the loader's inputs ``window[:-1]`` are at most
  ``seq_length`` wide and every token after [CLS] is a next-token label exactly once. A window needs two
  tokens. No masks and one copy (``--dup_factor`` does not apply); the two targets store the same arrays.
* ``cls`` (``label<TAB>text`` per line, the label an integer 0..n-1; a header line whose first field is
  ``label`` is skipped): ``[CLS] tokens [SEP]`` truncated to ``seq_length``, plus the label (int32). No masks.
* ``dup_factor``: static masking writes each buffer ``dup_factor`` times; bert/albert rebuild the
  instances each time (new A/B splits, random documents and masks), mlm repeats the same chunks with new
  masks. With dynamic masking the masks are drawn in the loader, so one copy is stored (as UER-py does:
  preprocess.py logs that --dup_factor is ignored).

Memory: a buffer stores its tokens in one flat int32 array (4 bytes per token, not a Python list of
ints) and instances are described by token ranges into it, then gathered into arrays in blocks of at
most ``PACK_BLOCK`` instances; peak memory is set by ``--docs_buffer_size``, not by the corpus size.
"""
from __future__ import annotations

import itertools
import math
import random
from abc import ABC, abstractmethod
from array import array
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Iterator

import numpy as np

from uer.names import TARGETS
from uer.registry import make_register
from uer.data.dataset import token_dtype
from uer.data.masking import GeneratorUniforms, MaskingConfig, mask_batch

PACK_BLOCK = 8192  # instances gathered, masked and written at a time
BATCH_LAYOUTS = ("masked", "windows", "labelled")  # see InstanceBuilder.batch_layout


@dataclass(frozen=True)
class InstanceConfig:
    """Options of the instance builders (the preprocess.py flags they use).

    Args:
        seq_length: instance width in tokens, specials included.
        masking: special ids, vocabulary size and span options (used for static masking).
        dup_factor: copies per buffer with static masking (1 is forced with dynamic masking).
        short_seq_prob: bert/albert: probability of a shorter random target length.
        full_sentences: mlm: pack documents across document boundaries.
        dynamic_masking: store unmasked instances; the loader masks them.
        sr_max_segments: sr: a paragraph is cut into 1 .. sr_max_segments segments before shuffling.
    """

    seq_length: int
    masking: MaskingConfig
    dup_factor: int = 5
    short_seq_prob: float = 0.1
    full_sentences: bool = False
    dynamic_masking: bool = False
    sr_max_segments: int = 3

    def __post_init__(self) -> None:
        if not 5 <= self.seq_length <= 65535:
            raise ValueError(f"seq_length must be in [5, 65535], got {self.seq_length}")
        if self.dup_factor < 1:
            raise ValueError(f"dup_factor must be >= 1, got {self.dup_factor}")
        if not 0.0 <= self.short_seq_prob <= 1.0:
            raise ValueError(f"short_seq_prob must be in [0, 1], got {self.short_seq_prob}")

    @property
    def copies(self) -> int:
        return 1 if self.dynamic_masking else self.dup_factor


class DocumentBuffer:
    """Tokenized documents held in compact arrays.

    ``tokens`` holds every token; sentence s covers ``tokens[sent_offsets[s]:sent_offsets[s+1]]``;
    document d covers sentences ``doc_offsets[d]:doc_offsets[d+1]``.
    """

    def __init__(self) -> None:
        self.tokens = array("i")
        self.sent_offsets = array("q", [0])
        self.doc_offsets = array("q", [0])
        self.labels = array("q")  # one per document, for labelled corpora (cls) only
        # Knowledge masking: a unit code per token (uer.text.segment: 0 continues, 1 word start, 2 entity start);
        # filled when the sentences come with units (SegmentedIds), else None.
        self.units: array | None = None
        # ERNIE 2.0 annotations read from the text (uer.data.instances_ernie): a label per token (-1: none), from
        # the ids' ``token_labels``, and a tag per sentence (-1: none), from the ids' ``tag``; else None.
        self.token_labels: array | None = None
        self.sent_tags: array | None = None

    def __len__(self) -> int:
        return len(self.doc_offsets) - 1

    def add_sentence(self, ids: list[int]) -> None:
        """Append a sentence to the open document (empty sentences are dropped)."""
        if ids:
            units = getattr(ids, "units", None)
            if units is not None:
                if self.units is None:
                    self.units = array("b")
                self.units.extend(units)
            token_labels = getattr(ids, "token_labels", None)
            if token_labels is not None:
                if self.token_labels is None:
                    self.token_labels = array("b")
                self.token_labels.extend(token_labels)
            tag = getattr(ids, "tag", None)
            if tag is not None:
                if self.sent_tags is None:
                    self.sent_tags = array("b")
                self.sent_tags.append(tag)
            self.tokens.extend(ids)
            self.sent_offsets.append(len(self.tokens))

    def end_document(self) -> bool:
        """Close the open document; returns whether it had any sentence."""
        if len(self.sent_offsets) - 1 > self.doc_offsets[-1]:
            self.doc_offsets.append(len(self.sent_offsets) - 1)
            return True
        return False

    def add_document(self, ids: list[int], label: int | None = None) -> bool:
        """A one-sentence document (line formats), with its label for labelled corpora."""
        self.add_sentence(ids)
        added = self.end_document()
        if added and label is not None:
            self.labels.append(label)
        return added

    def flat(self) -> np.ndarray:
        return np.frombuffer(self.tokens, dtype=np.int32) if len(self.tokens) else np.zeros(1, np.int32)

    def flat_units(self) -> np.ndarray | None:
        """Unit codes aligned with :meth:`flat` (None without knowledge masking)."""
        if self.units is None:
            return None
        return np.frombuffer(self.units, dtype=np.int8) if len(self.units) else np.zeros(1, np.int8)


@dataclass
class Ranges:
    """Instances described as token ranges into a buffer's flat token array.

    Instance i is ``[CLS] flat[a_start:a_start+a_len] [SEP]`` followed, when ``b_len > 0``, by
    ``flat[b_start:b_start+b_len] [SEP]``; ``label`` is the sentence-pair label (bert/albert).
    """

    a_start: array
    a_len: array
    b_start: array
    b_len: array
    label: array

    @classmethod
    def empty(cls) -> "Ranges":
        return cls(array("q"), array("q"), array("q"), array("q"), array("b"))

    def add(self, a_start: int, a_len: int, b_start: int = 0, b_len: int = 0, label: int = 0) -> None:
        self.a_start.append(a_start)
        self.a_len.append(a_len)
        self.b_start.append(b_start)
        self.b_len.append(b_len)
        self.label.append(label)

    def __len__(self) -> int:
        return len(self.a_start)


def pack_ranges(flat: np.ndarray, ranges: Ranges, lo: int, hi: int, width: int,
                cls_id: int, sep_id: int, pad_id: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gather instances ``lo:hi`` of ``ranges`` into a padded [n, width] int64 array (vectorised).

    Returns:
        (src [n, width] int64, length [n] int64, seg_a_len [n] int64).
    """
    a_start = np.frombuffer(ranges.a_start, dtype=np.int64)[lo:hi, None]
    la = np.frombuffer(ranges.a_len, dtype=np.int64)[lo:hi, None]
    b_start = np.frombuffer(ranges.b_start, dtype=np.int64)[lo:hi, None]
    lb = np.frombuffer(ranges.b_len, dtype=np.int64)[lo:hi, None]
    j = np.arange(width, dtype=np.int64)[None, :]
    seg_a = la + 2
    length = np.where(lb > 0, seg_a + lb + 1, seg_a)
    in_a = (j >= 1) & (j <= la)
    in_b = (j >= seg_a) & (j < seg_a + lb)
    idx = np.where(in_a, a_start + j - 1, np.where(in_b, b_start + j - seg_a, 0))
    src = np.where(in_a | in_b, flat[idx], pad_id).astype(np.int64)
    rows = np.arange(hi - lo)
    src[:, 0] = cls_id
    src[rows, seg_a[:, 0] - 1] = sep_id
    src[rows, length[:, 0] - 1] = sep_id
    return src, length[:, 0], seg_a[:, 0]


class InstanceBuilder(ABC):
    """Turns buffers of tokenized documents into blocks of instance arrays for the dataset writer.

    Subclasses say how the corpus is read (``corpus_format``) and describe instances as token ranges
    (``ranges``); packing, static masking and block layout are shared.
    """

    #: "documents": one sentence per line, blank line between documents; "lines": one document per line;
    #: "labelled_lines": ``label<TAB>text`` per line.
    corpus_format: ClassVar[str] = "documents"
    #: whether instances carry a sentence-pair label (array ``label``).
    has_label: ClassVar[bool] = False
    #: whether the instances get MLM masks (static, or dynamic in the loader); lm/bilm/cls do not.
    uses_masking: ClassVar[bool] = True
    #: The link between targets and data, declared here once. ``objectives``: what ``--target KIND`` trains
    #: (``bert`` = mlm + sp). ``trains_on``: the dataset kinds (a dataset header's ``target``) that a run
    #: whose target needs this kind can read, this kind first (an mlm run also reads bert/albert/sd/sr datasets:
    #: it uses their masks and ignores their labels). ``batch_layout``: how the loader
    #: (uer.data.pretrain_loader) turns the instances into batches: "masked" (src, seg, MLM positions and
    #: labels, plus the label array under ``label_key`` when the kind has labels), "windows" (next- and
    #: previous-token labels of lm windows) or "labelled" (sentences and their cls labels).
    objectives: ClassVar[tuple[str, ...]]
    trains_on: ClassVar[tuple[str, ...]]
    batch_layout: ClassVar[str] = "masked"
    #: the batch key under which the loader hands out the ``label`` array (the target reading it).
    label_key: ClassVar[str] = "sp_labels"
    #: the batch key of the ``token_label`` array (a label per position, -1 = none), for kinds that store one.
    token_label_key: ClassVar[str] = ""

    def __init__(self, cfg: InstanceConfig, seed: int, worker: int = 0) -> None:
        self.cfg = cfg
        # Scalar decisions use Python's fast RNG, masks a numpy Generator; both from (seed, worker).
        ss = np.random.SeedSequence([seed, worker])
        self.random = random.Random(int(ss.generate_state(2, np.uint64)[0]))
        self.np_rng = np.random.default_rng(ss.spawn(1)[0])
        self.dtype = token_dtype(cfg.masking.vocab_size)

    @abstractmethod
    def ranges(self, buf: DocumentBuffer, final: bool) -> tuple[np.ndarray, Ranges]:
        """Instances of one buffer (all copies) as (flat tokens, ranges). ``final``: no more input follows."""

    def unit_stream(self, buf: DocumentBuffer) -> np.ndarray | None:
        """Unit codes aligned with the flat tokens the last :meth:`ranges` call returned (None without
        knowledge masking). Builders whose ``ranges`` build a new token stream override this."""
        return buf.flat_units()

    def token_label_stream(self, buf: DocumentBuffer) -> np.ndarray | None:
        """A label per flat token of the last :meth:`ranges` call (-1: none), stored as the array
        ``token_label``; None for kinds without token labels (ERNIE's cap and tdr have them)."""
        return None

    def text_encoder(self, encode: Callable[[str], list[int]], vocab: Any) -> Callable[[str], Any]:
        """What turns a line of the corpus into what the buffer stores: the tokenizer's ids by default; kinds
        that read annotations from the text (capitals, connectives, ERNIE's lines) wrap ``encode``."""
        return encode

    def blocks(self, buf: DocumentBuffer, final: bool = False) -> Iterator[tuple[dict[str, np.ndarray], int]]:
        """Arrays for :meth:`uer.data.dataset.DatasetWriter.write`, at most PACK_BLOCK instances each."""
        flat, ranges = self.ranges(buf, final)
        flat_units = self.unit_stream(buf) if self.uses_masking else None
        flat_labels = self.token_label_stream(buf)
        m = self.cfg.masking
        for lo in range(0, len(ranges), PACK_BLOCK):
            hi = min(lo + PACK_BLOCK, len(ranges))
            src, length, seg_a = pack_ranges(flat, ranges, lo, hi, self.cfg.seq_length, m.cls_id, m.sep_id, m.pad_id)
            units = None
            if flat_units is not None:  # specials start a unit, padding continues (never maskable anyway)
                units = pack_ranges(flat_units, ranges, lo, hi, self.cfg.seq_length, 1, 1, 0)[0].astype(np.uint8)
            arrays: dict[str, np.ndarray] = {}
            if not self.cfg.dynamic_masking:
                masked = mask_batch(src, length, m, GeneratorUniforms(self.np_rng, hi - lo), units=units)
                src = masked.src
            arrays["src"] = src.astype(self.dtype)
            arrays["length"] = length.astype(np.uint16)
            arrays["seg_a_len"] = seg_a.astype(np.uint16)
            if self.has_label:
                arrays["label"] = np.frombuffer(ranges.label, dtype=np.int8)[lo:hi].copy()
            if flat_labels is not None:  # specials and padding get -1 (no label)
                arrays["token_label"] = pack_ranges(flat_labels, ranges, lo, hi, self.cfg.seq_length,
                                                    -1, -1, -1)[0].astype(np.int8)
            if units is not None and self.cfg.dynamic_masking:
                arrays["unit"] = units  # the loader masks by these units every epoch
            if not self.cfg.dynamic_masking:
                arrays["mask_count"] = np.bincount(masked.rows, minlength=hi - lo).astype(np.uint16)
                arrays["mask_pos"] = masked.cols.astype(np.uint16)
                arrays["mask_label"] = masked.labels.astype(self.dtype)
            yield arrays, hi - lo


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


class MlmInstances(InstanceBuilder):
    """MLM only; one document per line (RoBERTa); ``--full_sentences`` packs across documents."""

    objectives = ("mlm",)
    trains_on = ("mlm", "bert", "albert", "sd", "sr", "cap", "tdr", "dr", "ir", "dlm")

    corpus_format = "lines"
    has_label = False

    def __init__(self, cfg: InstanceConfig, seed: int, worker: int = 0) -> None:
        super().__init__(cfg, seed, worker)
        self._carry = np.zeros(0, dtype=np.int32)  # full_sentences: packed tokens not yet emitted
        self._carry_units = np.zeros(0, dtype=np.int8)  # their unit codes (knowledge masking)
        self._stream_units: np.ndarray | None = None

    def unit_stream(self, buf: DocumentBuffer) -> np.ndarray | None:
        return self._stream_units if self.cfg.full_sentences else buf.flat_units()

    def ranges(self, buf: DocumentBuffer, final: bool) -> tuple[np.ndarray, Ranges]:
        width = self.cfg.seq_length - 2
        out = Ranges.empty()
        # A document's tokens (all its sentences; one per line in this format) are contiguous in the buffer.
        sent, docs = buf.sent_offsets.tolist(), buf.doc_offsets.tolist()
        bounds = [(sent[docs[d]], sent[docs[d + 1]]) for d in range(len(buf))]
        if not self.cfg.full_sentences:
            for _ in range(self.cfg.copies):
                for first, end in bounds:
                    for start in range(first, end, width):
                        out.add(start, min(width, end - start))
            return buf.flat(), out
        # One stream: carried tokens, then the documents separated by [SEP].
        sep = self.cfg.masking.sep_id
        doc_tokens = np.frombuffer(buf.tokens, dtype=np.int32) if len(buf.tokens) else np.zeros(0, np.int32)
        doc_units = np.frombuffer(buf.units, dtype=np.int8) if buf.units is not None else None
        pieces, unit_pieces = [self._carry], [self._carry_units]
        for d, (first, end) in enumerate(bounds):
            if len(self._carry) or d > 0:
                pieces.append(np.array([sep], dtype=np.int32))
                unit_pieces.append(np.ones(1, dtype=np.int8))
            pieces.append(doc_tokens[first:end])
            if doc_units is not None:
                unit_pieces.append(doc_units[first:end])
        stream = np.concatenate(pieces) if pieces else np.zeros(0, np.int32)
        units = np.concatenate(unit_pieces) if doc_units is not None or len(self._carry_units) else None
        starts: list[tuple[int, int]] = []
        pos, n = 0, len(stream)
        while True:
            if pos < n and stream[pos] == sep:  # never open an instance with a document separator
                pos += 1
            if n - pos < width:
                break
            starts.append((pos, width))
            pos += width
        if final and pos < n:
            starts.append((pos, n - pos))
            pos = n
        self._carry = stream[pos:].copy()
        if units is not None:
            self._carry_units = units[pos:].copy()
            self._stream_units = units if len(units) else np.zeros(1, np.int8)
        else:
            self._stream_units = None
        for _ in range(self.cfg.copies):
            for start, length in starts:
                out.add(start, length)
        return (stream if len(stream) else np.zeros(1, np.int32)), out


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


def parse_labelled_line(text: str) -> tuple[int, str] | None:
    """``label<TAB>text`` -> (label, text); None for a header line (first field ``label``).

    Raises ValueError for a line whose label is not a non-negative integer.
    """
    label, sep, body = text.partition("\t")
    if label.strip().lower() == "label":
        return None
    if not sep or not label.strip().isdigit():
        raise ValueError(f"expected 'label<TAB>text' with an integer label, got {text[:60]!r}")
    return int(label), body


class _Unmasked(InstanceBuilder):
    """Builders whose instances carry no masks: they write src/length/seg_a_len (+ label) directly."""

    uses_masking = False

    @abstractmethod
    def windows(self, buf: DocumentBuffer) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(flat tokens, window starts, window lengths, labels or empty) of one buffer."""

    def ranges(self, buf: DocumentBuffer, final: bool) -> tuple[np.ndarray, Ranges]:  # pragma: no cover
        raise NotImplementedError("unmasked builders write their windows directly (see blocks)")

    @property
    def width(self) -> int:
        return self.cfg.seq_length

    def blocks(self, buf: DocumentBuffer, final: bool = False) -> Iterator[tuple[dict[str, np.ndarray], int]]:
        flat, starts, lengths, labels = self.windows(buf)
        pad = self.cfg.masking.pad_id
        j = np.arange(self.width, dtype=np.int64)[None, :]
        for lo in range(0, len(starts), PACK_BLOCK):
            hi = min(lo + PACK_BLOCK, len(starts))
            inside = j < lengths[lo:hi, None]
            src = np.where(inside, flat[np.where(inside, starts[lo:hi, None] + j, 0)], pad)
            arrays = {"src": src.astype(self.dtype), "length": lengths[lo:hi].astype(np.uint16),
                      "seg_a_len": lengths[lo:hi].astype(np.uint16)}
            if self.has_label:
                arrays["label"] = labels[lo:hi].astype(np.int32)
            yield arrays, hi - lo


class LmInstances(_Unmasked):
    """Next-token windows for the lm target (see the module doc); ``src`` is ``seq_length + 1`` wide."""

    corpus_format = "lines"
    objectives = ("lm",)
    trains_on = ("lm", "bilm")  # the two kinds store the same windows
    batch_layout = "windows"

    @property
    def width(self) -> int:
        return self.cfg.seq_length + 1

    def windows(self, buf: DocumentBuffer) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        if self.cfg.seq_length + 1 > 65535:
            raise ValueError("lm/bilm instances are seq_length + 1 tokens wide: seq_length must be <= 65534")
        m, step = self.cfg.masking, self.cfg.seq_length
        sent, docs = np.frombuffer(buf.sent_offsets, dtype=np.int64), np.frombuffer(buf.doc_offsets, dtype=np.int64)
        doc_start, doc_end = sent[docs[:-1]], sent[docs[1:]]  # token ranges of the documents
        tokens = buf.flat()
        pieces, starts, lengths, base = [], [], [], 0
        for first, end in zip(doc_start.tolist(), doc_end.tolist()):
            stream_len = end - first + 2
            pieces += [np.array([m.cls_id], np.int32), tokens[first:end], np.array([m.sep_id], np.int32)]
            window_starts = np.arange(0, stream_len - 1, step, dtype=np.int64)
            starts.append(base + window_starts)
            lengths.append(np.minimum(step + 1, stream_len - window_starts))
            base += stream_len
        if not pieces:
            return np.zeros(1, np.int32), np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64)
        return np.concatenate(pieces), np.concatenate(starts), np.concatenate(lengths), np.zeros(0, np.int64)


class BilmInstances(LmInstances):
    """The lm windows, for the bilm target (the loader derives previous-token labels from them)."""

    objectives = ("bilm",)
    trains_on = ("bilm", "lm")


class ClsInstances(_Unmasked):
    """``[CLS] text [SEP]`` plus its label, for the cls target."""

    corpus_format = "labelled_lines"
    has_label = True
    objectives = ("cls",)
    trains_on = ("cls",)
    batch_layout = "labelled"

    def windows(self, buf: DocumentBuffer) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        m, keep = self.cfg.masking, self.cfg.seq_length - 2
        sent, docs = np.frombuffer(buf.sent_offsets, dtype=np.int64), np.frombuffer(buf.doc_offsets, dtype=np.int64)
        doc_start, doc_end = sent[docs[:-1]], sent[docs[1:]]
        tokens = buf.flat()
        pieces, starts, lengths, base = [], [], [], 0
        for first, end in zip(doc_start.tolist(), doc_end.tolist()):
            body = tokens[first:min(end, first + keep)]
            pieces += [np.array([m.cls_id], np.int32), body, np.array([m.sep_id], np.int32)]
            starts.append(base)
            lengths.append(len(body) + 2)
            base += len(body) + 2
        labels = np.frombuffer(buf.labels, dtype=np.int64) if len(buf.labels) else np.zeros(0, np.int64)
        if not pieces:
            return np.zeros(1, np.int32), np.zeros(0, np.int64), np.zeros(0, np.int64), labels
        return (np.concatenate(pieces), np.array(starts, np.int64), np.array(lengths, np.int64), labels)


str2instances: dict[str, type[InstanceBuilder]] = {}
register_instances = make_register(str2instances, InstanceBuilder)
register_instances("bert")(BertInstances)
register_instances("albert")(AlbertInstances)
register_instances("mlm")(MlmInstances)
register_instances("lm")(LmInstances)
register_instances("bilm")(BilmInstances)
register_instances("cls")(ClsInstances)
register_instances("sd")(SdInstances)
register_instances("sr")(SrInstances)


def _check_kinds() -> None:
    """Each kind's declared link must name known objectives and kinds (a typo fails at import, not mid-run)."""
    for name, builder in str2instances.items():
        unknown = [o for o in builder.objectives if o not in TARGETS]
        if unknown or builder.trains_on[:1] != (name,) or not set(builder.trains_on) <= set(str2instances) \
                or builder.batch_layout not in BATCH_LAYOUTS:
            raise ValueError(f"dataset kind {name!r}: objectives {builder.objectives} (known: {TARGETS}), trains_on "
                             f"{builder.trains_on} (must start with {name!r}; kinds: {tuple(str2instances)}), "
                             f"batch_layout {builder.batch_layout!r} (known: {BATCH_LAYOUTS})")


# ERNIE 2.0's kinds (cap, tdr, dr, ir, dlm) register themselves into str2instances from their own module, which
# then checks every kind (_check_kinds), whichever of the two modules is imported first.
import uer.data.instances_ernie  # noqa: E402,F401
