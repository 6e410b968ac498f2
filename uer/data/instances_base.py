"""What every instance builder shares: the options (``InstanceConfig``), the document buffer, token ranges and
their packing into fixed-width arrays, the ``InstanceBuilder`` base class, and the registry ``str2instances`` the
builder families (uer/data/instances_*.py) register into. uer/data/pretrain_instances.py imports every family and
checks the declarations; import the registry from there.
"""
from __future__ import annotations

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


str2instances: dict[str, type[InstanceBuilder]] = {}
register_instances = make_register(str2instances, InstanceBuilder)


def _check_kinds() -> None:
    """Each kind's declared link must name known objectives and kinds (a typo fails at import, not mid-run)."""
    for name, builder in str2instances.items():
        unknown = [o for o in builder.objectives if o not in TARGETS]
        if unknown or builder.trains_on[:1] != (name,) or not set(builder.trains_on) <= set(str2instances) \
                or builder.batch_layout not in BATCH_LAYOUTS:
            raise ValueError(f"dataset kind {name!r}: objectives {builder.objectives} (known: {TARGETS}), trains_on "
                             f"{builder.trains_on} (must start with {name!r}; kinds: {tuple(str2instances)}), "
                             f"batch_layout {builder.batch_layout!r} (known: {BATCH_LAYOUTS})")
