"""Fine-tuning data: TSV files read by column name, encoded instances, and batches with dynamic padding.

Instances live in flat numpy arrays (all token ids concatenated, plus offsets) rather than one Python
list per example: 20k reviews take a few hundred KB, and a batch is built with a couple of vectorised
gathers. A batch is padded to its longest instance, which never exceeds ``--seq_length`` because
instances are truncated when they are encoded.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from functools import cached_property
from typing import Iterable, Sequence

import numpy as np
import torch

from uer.errors import DataError
from uer.opts import PAD_MULTIPLE
from uer.utils.io import check_input_file, read_lines
from uer.text.tokenizers import Tokenizer


# Padding value of per-token integer label fields (Instances.token_fields): torch's cross-entropy skips it.
IGNORE_INDEX = -100


def read_tsv_lines(path: str, required: Sequence[str] = ()) -> tuple[dict[str, int], list[list[str]], list[int]]:
    """Header row -> {column name: index}, the data rows split on tabs, and each row's line in the file.

    Columns are found by name, so their order in the file does not matter (UER-py's convention); a name
    given twice is an error (one of the columns would be ignored), empty names after the last column (a
    trailing tab) are dropped. A leading UTF-8 byte-order mark is skipped. One row per line: a blank line
    before the last row is an error naming it (skipping it would put every later prediction one row off its
    input), except in a one-column file, where it is an empty text; blank lines at the end are ignored.
    Errors name the file and line: bytes that are not UTF-8 (with their offset), a row shorter than the
    header, and a row with more (non-empty) fields than the header, which is a tab inside a text that would
    otherwise lose its end.
    """
    check_input_file(path, "TSV file")
    lines = read_lines(path)
    first = next(lines, None)
    if first is None or not first[1].strip():
        raise DataError("empty first line; it must name the columns (e.g. 'label<TAB>text_a')", path, 1)
    header = first[1].split("\t")
    while len(header) > 1 and not header[-1].strip():
        header.pop()  # a trailing tab
    columns: dict[str, int] = {}
    for i, name in enumerate(header):
        name = name.strip()
        if name in columns:
            raise DataError(f"the header names the column {name!r} twice (columns {columns[name] + 1} and {i + 1}); "
                            "column names must be unique", path, 1)
        columns[name] = i
    missing = [name for name in required if name not in columns]
    if missing:
        raise DataError(f"the header has no column {', '.join(map(repr, missing))} (found: {', '.join(columns)}); "
                        "the first line must name the columns", path, 1)
    rows, numbers = [], []
    width = len(header)
    blank: int | None = None  # first blank line since the last row
    for line_no, line in lines:
        if not line.strip() and width > 1:
            blank = line_no if blank is None else blank
            continue
        if blank is not None:
            raise DataError("blank line: every line after the header is one example (a skipped line would put "
                            "later predictions one row off their input); remove it", path, blank)
        row = line.split("\t")
        if len(row) < width:
            needed = [name for name, i in columns.items() if i >= len(row)]
            raise DataError(f"{len(row)} fields, but the header has {width} (missing: {', '.join(needed)})", path, line_no)
        if len(row) > width and any(field.strip() for field in row[width:]):
            raise DataError(f"{len(row)} fields, but the header has {width}: a tab inside a text? (the text after it "
                            "would be lost; replace the tab by a space)", path, line_no)
        rows.append(row)
        numbers.append(line_no)
    if width == 1:  # one-column file: blank lines are empty texts, but not the ones that end the file
        while rows and not rows[-1][0].strip():
            rows.pop()
            numbers.pop()
    return columns, rows, numbers


def read_tsv(path: str, required: Sequence[str] = ()) -> tuple[dict[str, int], list[list[str]]]:
    """:func:`read_tsv_lines` without the line numbers."""
    columns, rows, _ = read_tsv_lines(path, required)
    return columns, rows


MAX_LABEL = 1_000_000  # a label id above this is a typo or another column, not a class
_PLAIN_INTEGER = re.compile(r"[0-9]+")
_PLAIN_DECIMAL = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")


def parse_integer(value: str, what: str, path: str, line: int, limit: int | None = None) -> int:
    """A non-negative integer written as plain ASCII digits (``int()`` would also take ``1_0``, ``+1``,
    ``١``); ``what`` names the field in the message."""
    text = value.strip()
    if not _PLAIN_INTEGER.fullmatch(text):
        sign = " is negative" if text.startswith("-") and _PLAIN_INTEGER.fullmatch(text[1:]) else " is not an integer"
        raise DataError(f"{what} {value!r}{sign} (plain digits 0-9 only)", path, line)
    number = int(text)
    if limit is not None and number > limit:
        raise DataError(f"{what} {text} is too large (at most {limit})", path, line)
    return number


def parse_decimal(value: str, what: str, path: str, line: int) -> float:
    """A finite number written as a plain decimal (``1.5``, ``-2e-3``): no ``nan``, ``inf`` or ``1_0``."""
    text = value.strip()
    if not _PLAIN_DECIMAL.fullmatch(text):
        raise DataError(f"{what} {value!r} is not a plain decimal number", path, line)
    number = float(text)
    if not math.isfinite(number):
        raise DataError(f"{what} {value!r} is out of the range of a float", path, line)
    return number


def parse_label(value: str, path: str, line: int) -> int:
    """An integer label of ``path`` at file line ``line`` (labels are 0 .. n-1, plain digits)."""
    return parse_integer(value, "label", path, line, MAX_LABEL)


@dataclass
class Instances:
    """Encoded examples, stored flat.

    Attributes:
        tokens: int64 [total_tokens], every instance's ids concatenated.
        segments: int8 [total_tokens], 1 for the first segment, 2 for the second (0 is padding).
        offsets: int64 [instances_num + 1]; instance i is tokens[offsets[i]:offsets[i + 1]].
        fields: per-instance arrays, first dimension instances_num (``label``, ``soft_tgt``, ``task`` ...);
            they become batch tensors under the same name.
        token_fields: per-token arrays aligned with ``tokens`` (first dimension total_tokens), e.g. a tag per
            token; collate pads them to [batch_size x L] with IGNORE_INDEX (integers) or 0.0 (floats).
        groups: int64 [instances_num] group ids or None. The instances of a group (a question and its
            choices, the windows of one document) are contiguous and are never split: batching, evaluation
            and the split over ranks keep each group whole, and ``--batch_size`` counts groups.
    """

    tokens: np.ndarray
    segments: np.ndarray
    offsets: np.ndarray
    fields: dict[str, np.ndarray] = field(default_factory=dict)
    token_fields: dict[str, np.ndarray] = field(default_factory=dict)
    groups: np.ndarray | None = None

    def __post_init__(self) -> None:
        for name, values in self.token_fields.items():
            if len(values) != len(self.tokens):
                raise ValueError(f"token field {name!r} has {len(values)} values for {len(self.tokens)} tokens")
        for name, values in self.fields.items():
            if len(values) != len(self):
                raise ValueError(f"field {name!r} has {len(values)} values for {len(self)} instances")
        if self.groups is not None:
            self.groups = np.asarray(self.groups, dtype=np.int64)
            if len(self.groups) != len(self):
                raise ValueError(f"groups has {len(self.groups)} ids for {len(self)} instances")
            runs = 1 + int(np.count_nonzero(np.diff(self.groups))) if len(self.groups) else 0
            if runs != len(np.unique(self.groups)):
                raise ValueError("the instances of a group must be contiguous (a group id occurs in two places)")

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    @cached_property
    def longest(self) -> int:
        """The longest instance (0 when empty); computed once: collate caps rounded batch widths with it."""
        return int(self.lengths.max()) if len(self) else 0

    def group_bounds(self) -> np.ndarray | None:
        """int64 [groups_num + 1]: group g holds instances bounds[g]:bounds[g + 1]; None without groups."""
        if self.groups is None:
            return None
        starts = np.flatnonzero(np.diff(self.groups)) + 1
        return np.concatenate([[0], starts, [len(self)]]).astype(np.int64)

    def subset(self, indices: np.ndarray) -> "Instances":
        """The instances at ``indices``, in that order (cross-validation folds)."""
        indices = np.asarray(indices, dtype=np.int64)
        lengths = self.lengths[indices]
        offsets = np.zeros(len(indices) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        gather = np.repeat(self.offsets[indices] - offsets[:-1], lengths) + np.arange(offsets[-1])
        return Instances(self.tokens[gather], self.segments[gather], offsets,
                         {name: values[indices] for name, values in self.fields.items()},
                         {name: values[gather] for name, values in self.token_fields.items()},
                         None if self.groups is None else self.groups[indices])

    @classmethod
    def from_sequences(cls, sequences: Iterable[tuple[list[int], int]], fields: dict[str, np.ndarray] | None = None,
                       token_fields: dict[str, Sequence[Sequence]] | None = None,
                       groups: Sequence[int] | np.ndarray | None = None) -> "Instances":
        """From (token ids, length of the first segment) pairs; ``token_fields`` hold one sequence per
        instance, as long as its token ids."""
        ids, segs, lengths = [], [], []
        for tokens, first_len in sequences:
            ids.extend(tokens)
            segs.extend([1] * min(first_len, len(tokens)) + [2] * max(0, len(tokens) - first_len))
            lengths.append(len(tokens))
        offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        flat = {}
        for name, per_instance in (token_fields or {}).items():
            per_instance = list(per_instance)
            if [len(v) for v in per_instance] != lengths:
                raise ValueError(f"token field {name!r}: each instance needs one value per token")
            flat[name] = np.concatenate([np.asarray(v) for v in per_instance]) if per_instance else np.zeros(0)
        return cls(np.asarray(ids, dtype=np.int64), np.asarray(segs, dtype=np.int8), offsets, dict(fields or {}),
                   flat, None if groups is None else np.asarray(groups, dtype=np.int64))


def encode_pair(tokenizer: Tokenizer, text_a: str, text_b: str | None, seq_length: int,
                closing_sep: bool = True) -> tuple[list[int], int]:
    """The input of a text (or a pair) for the classification heads, at most ``seq_length`` tokens.

    Single text: ``[CLS] a [SEP]`` (Google's BERT, HF and current UER-py; the text is cut so the [SEP]
    stays), or with ``closing_sep`` False ``[CLS] a`` (UER-py of 2020, whose fine-tuned models expect it:
    the scripts' --no_closing_sep). Pair: ``[CLS] a [SEP] b [SEP]``, segment 1 up to the first [SEP],
    segment 2 after; truncation cuts the end, as UER-py does. Returns (ids, length of segment 1).
    """
    vocab = tokenizer.vocab
    ids = [vocab.cls_id] + tokenizer.encode(text_a)
    if text_b is not None:
        ids.append(vocab.sep_id)
        first_len = len(ids)
        ids.extend(tokenizer.encode(text_b))
        ids.append(vocab.sep_id)
    elif closing_sep:
        ids = ids[:max(1, seq_length - 1)] + [vocab.sep_id]
        first_len = len(ids)
    else:
        first_len = len(ids)
    return ids[:seq_length], first_len


# ------------------------------------------------------------------------------------------------------
# batching

def width_multiple(amp_dtype: torch.dtype | None) -> int:
    """What fine-tuning batch widths are rounded up to: a multiple of 8 under mixed precision, where oneDNN's
    bfloat16 kernels keep a primitive per batch shape and the heap blocks of each (NER --fp16, tiny: peak RSS 1.32
    -> 0.64 GB and 29% more examples/s), exact widths in float32 (rounding cost 3-9% there; benchmarks/RESULTS.md)."""
    return PAD_MULTIPLE if amp_dtype is not None else 1


def collate(data: Instances, indices: np.ndarray, pad_id: int, pad_to: int | None = None,
            multiple: int = 1) -> dict[str, torch.Tensor]:
    """Tensors of the instances at ``indices``, padded to the longest of them rounded up to ``multiple`` (never
    beyond the longest instance of ``data``, which the model takes), or to ``pad_to``.

    Returns ``src`` and ``seg`` [batch_size x L] (seg 0 marks padding), ``length`` [batch_size], one
    tensor per field of ``data`` and one [batch_size x L] tensor per token field (padding: IGNORE_INDEX for
    integers, 0.0 for floats).
    """
    indices = np.asarray(indices, dtype=np.int64)
    starts = data.offsets[indices]
    lengths = data.offsets[indices + 1] - starts  # not data.lengths: that diffs every offset, once per batch
    width = int(lengths.max()) if pad_to is None else pad_to
    if pad_to is None and multiple > 1:
        width = min(-(-width // multiple) * multiple, data.longest)
    positions = np.arange(width)
    valid = positions[None, :] < lengths[:, None]
    gather = np.where(valid, starts[:, None] + positions[None, :], 0)
    src = np.where(valid, data.tokens[gather], pad_id)
    seg = np.where(valid, data.segments[gather], 0)
    batch = {"src": torch.from_numpy(src), "seg": torch.from_numpy(seg.astype(np.int64)),
             "length": torch.from_numpy(lengths.copy())}
    for name, values in data.fields.items():
        batch[name] = torch.from_numpy(np.ascontiguousarray(values[indices]))
    for name, values in data.token_fields.items():
        pad = IGNORE_INDEX if np.issubdtype(values.dtype, np.integer) else 0
        batch[name] = torch.from_numpy(np.where(valid.reshape(valid.shape + (1,) * (values.ndim - 1)),
                                                values[gather], np.asarray(pad, dtype=values.dtype)))
    return batch


def shuffled_batches(lengths: np.ndarray, batch_size: int, rng: np.random.Generator,
                     bucketing: bool = False, bucket_batches: int = 100) -> list[np.ndarray]:
    """One epoch of training batches (index arrays) over instances with the given lengths.

    Without bucketing: a random permutation cut into batches (UER-py). With bucketing: the permutation
    is cut into chunks of ``bucket_batches`` batches, each chunk is sorted by length before it is cut, and
    the batch order is shuffled again, so batches hold similar lengths (little padding) while each
    epoch still visits the data in a random order.
    """
    order = rng.permutation(len(lengths))
    if bucketing:
        chunk = batch_size * bucket_batches
        order = np.concatenate([part[np.argsort(-lengths[part], kind="stable")]
                                for part in np.array_split(order, max(1, -(-len(order) // chunk)))])
    batches = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    if bucketing:
        batches = [batches[i] for i in rng.permutation(len(batches))]
    return batches


def length_sorted_batches(lengths: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """Evaluation batches: instances sorted by length (longest first), so padding is minimal.

    Results do not depend on the grouping (padding is masked); callers put predictions back in file order.
    """
    order = np.argsort(-lengths, kind="stable")
    return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]


def _units(data: Instances) -> tuple[np.ndarray, np.ndarray | None]:
    """What batching counts: instances, or groups (lengths = their longest instance) with their bounds."""
    bounds = data.group_bounds()
    if bounds is None:
        return data.lengths, None
    return np.maximum.reduceat(data.lengths, bounds[:-1]) if len(data) else data.lengths, bounds


def _expand(batches: list[np.ndarray], bounds: np.ndarray | None) -> list[np.ndarray]:
    """Batches of groups -> batches of their instances (in file order inside each group)."""
    if bounds is None:
        return batches
    return [np.concatenate([np.arange(bounds[g], bounds[g + 1]) for g in batch]) for batch in batches]


def training_batches(data: Instances, batch_size: int, rng: np.random.Generator,
                     bucketing: bool = False) -> list[np.ndarray]:
    """One epoch of training batches of ``data`` (:func:`shuffled_batches`); with groups, ``batch_size``
    groups per batch, each group whole."""
    lengths, bounds = _units(data)
    return _expand(shuffled_batches(lengths, batch_size, rng, bucketing), bounds)


def evaluation_batches(data: Instances, batch_size: int) -> list[np.ndarray]:
    """Length-sorted evaluation batches of ``data`` (:func:`length_sorted_batches`); with groups,
    ``batch_size`` groups per batch, each group whole."""
    lengths, bounds = _units(data)
    return _expand(length_sorted_batches(lengths, batch_size), bounds)


def batches_per_epoch(data: Instances, batch_size: int) -> int:
    units = len(data) if data.groups is None else len(data.group_bounds()) - 1
    return -(-units // batch_size)


def split_for_rank(batch: np.ndarray, rank: int, world_size: int,
                   groups: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """This rank's share of a global batch, and a weight per instance (0 = filler).

    The global batch is cut into ``world_size`` near-equal contiguous parts: of its instances, or, when
    ``groups`` (the group id of each instance of ``batch``, contiguous) is given, of its groups, so a group
    stays on one rank. A rank whose part is empty (a last batch smaller than the world) gets a filler with
    weight 0, the first instance (or group) of the batch, so every rank runs forward and backward (DDP needs
    that) while the loss stays that of the real instances.
    """
    if groups is None:
        part = np.array_split(batch, world_size)[rank]
        if len(part) == 0:
            return batch[:1], np.zeros(1, dtype=np.float32)
        return part, np.ones(len(part), dtype=np.float32)
    groups = np.asarray(groups)
    if len(groups) != len(batch):
        raise ValueError(f"{len(groups)} group ids for a batch of {len(batch)}")
    bounds = np.concatenate([[0], np.flatnonzero(np.diff(groups)) + 1, [len(batch)]])
    mine = np.array_split(np.arange(len(bounds) - 1), world_size)[rank]
    if len(mine) == 0:
        return batch[:bounds[1]], np.zeros(bounds[1], dtype=np.float32)
    part = batch[bounds[mine[0]]:bounds[mine[-1] + 1]]
    return part, np.ones(len(part), dtype=np.float32)
