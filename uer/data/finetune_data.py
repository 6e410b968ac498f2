"""Fine-tuning data: TSV files read by column name, encoded instances, and batches with dynamic padding.

Instances live in flat numpy arrays (all token ids concatenated, plus offsets) rather than one Python
list per example: 20k reviews take a few hundred KB, and a batch is built with a couple of vectorised
gathers. A batch is padded to its longest instance, which never exceeds ``--seq_length`` because
instances are truncated when they are encoded.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numpy as np
import torch

from uer.errors import DataError
from uer.utils.io import check_input_file, read_lines
from uer.text.tokenizers import Tokenizer


def read_tsv_lines(path: str, required: Sequence[str] = ()) -> tuple[dict[str, int], list[list[str]], list[int]]:
    """Header row -> {column name: index}, the data rows split on tabs, and each row's line in the file.

    Columns are found by name, so their order in the file does not matter (UER-py's convention).
    Blank lines are skipped; a leading UTF-8 byte-order mark is skipped. Errors name the file and line:
    bytes that are not UTF-8 (with their offset), a row shorter than the header, and a row with more
    (non-empty) fields than the header, which is a tab inside a text that would otherwise lose its end.
    """
    check_input_file(path, "TSV file")
    lines = read_lines(path)
    first = next(lines, None)
    if first is None or not first[1].strip():
        raise DataError("empty first line; it must name the columns (e.g. 'label<TAB>text_a')", path, 1)
    header = first[1].split("\t")
    columns = {name.strip(): i for i, name in enumerate(header)}
    missing = [name for name in required if name not in columns]
    if missing:
        raise DataError(f"the header has no column {', '.join(map(repr, missing))} (found: {', '.join(columns)}); "
                        "the first line must name the columns", path, 1)
    rows, numbers = [], []
    width = len(header)
    for line_no, line in lines:
        if not line.strip():
            continue
        row = line.split("\t")
        if len(row) < width:
            needed = [name for name, i in columns.items() if i >= len(row)]
            raise DataError(f"{len(row)} fields, but the header has {width} (missing: {', '.join(needed)})", path, line_no)
        if len(row) > width and any(field.strip() for field in row[width:]):
            raise DataError(f"{len(row)} fields, but the header has {width}: a tab inside a text? (the text after it "
                            "would be lost; replace the tab by a space)", path, line_no)
        rows.append(row)
        numbers.append(line_no)
    return columns, rows, numbers


def read_tsv(path: str, required: Sequence[str] = ()) -> tuple[dict[str, int], list[list[str]]]:
    """:func:`read_tsv_lines` without the line numbers."""
    columns, rows, _ = read_tsv_lines(path, required)
    return columns, rows


def parse_label(value: str, path: str, line: int) -> int:
    """An integer label of ``path`` at file line ``line`` (labels are 0 .. n-1)."""
    try:
        label = int(value)
    except ValueError:
        raise DataError(f"label {value!r} is not an integer (labels are 0 .. n-1)", path, line) from None
    if label < 0:
        raise DataError(f"label {label} is negative (labels are 0 .. n-1)", path, line)
    return label


@dataclass
class Instances:
    """Encoded examples, stored flat.

    Attributes:
        tokens: int64 [total_tokens], every instance's ids concatenated.
        segments: int8 [total_tokens], 1 for the first segment, 2 for the second (0 is padding).
        offsets: int64 [instances_num + 1]; instance i is tokens[offsets[i]:offsets[i + 1]].
        fields: per-instance arrays, first dimension instances_num (``label``, ``soft_tgt``, ``task`` ...);
            they become batch tensors under the same name.
    """

    tokens: np.ndarray
    segments: np.ndarray
    offsets: np.ndarray
    fields: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def subset(self, indices: np.ndarray) -> "Instances":
        """The instances at ``indices``, in that order (cross-validation folds)."""
        indices = np.asarray(indices, dtype=np.int64)
        lengths = self.lengths[indices]
        offsets = np.zeros(len(indices) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        gather = np.repeat(self.offsets[indices] - offsets[:-1], lengths) + np.arange(offsets[-1])
        return Instances(self.tokens[gather], self.segments[gather], offsets,
                         {name: values[indices] for name, values in self.fields.items()})

    @classmethod
    def from_sequences(cls, sequences: Iterable[tuple[list[int], int]], fields: dict[str, np.ndarray] | None = None,
                       ) -> "Instances":
        """From (token ids, length of the first segment) pairs."""
        ids, segs, lengths = [], [], []
        for tokens, first_len in sequences:
            ids.extend(tokens)
            segs.extend([1] * min(first_len, len(tokens)) + [2] * max(0, len(tokens) - first_len))
            lengths.append(len(tokens))
        offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        return cls(np.asarray(ids, dtype=np.int64), np.asarray(segs, dtype=np.int8), offsets, dict(fields or {}))


def encode_pair(tokenizer: Tokenizer, text_a: str, text_b: str | None, seq_length: int) -> tuple[list[int], int]:
    """UER-py's classifier input, truncated to ``seq_length``.

    Single text: ``[CLS] a`` (no closing [SEP], as UER-py; its fine-tuned models expect that).
    Pair: ``[CLS] a [SEP] b [SEP]``, segment 1 up to the first [SEP], segment 2 after; truncation cuts
    the end, as UER-py does. Returns (ids, length of segment 1).
    """
    vocab = tokenizer.vocab
    ids = [vocab.cls_id] + tokenizer.encode(text_a)
    if text_b is not None:
        ids.append(vocab.sep_id)
        first_len = len(ids)
        ids.extend(tokenizer.encode(text_b))
        ids.append(vocab.sep_id)
    else:
        first_len = len(ids)
    return ids[:seq_length], first_len


def check_special_tokens(tokenizer: Tokenizer) -> None:
    vocab = tokenizer.vocab
    missing = [name for name, i in (("[CLS]", vocab.cls_id), ("[SEP]", vocab.sep_id), ("[PAD]", vocab.pad_id)) if i < 0]
    if missing:
        raise DataError(f"the vocabulary has no {', '.join(missing)} token; fine-tuning needs [CLS], [SEP] and [PAD]")


# ------------------------------------------------------------------------------------------------------
# batching

def collate(data: Instances, indices: np.ndarray, pad_id: int, pad_to: int | None = None) -> dict[str, torch.Tensor]:
    """Tensors of the instances at ``indices``, padded to the longest of them (or to ``pad_to``).

    Returns ``src`` and ``seg`` [batch_size x L] (seg 0 marks padding), ``length`` [batch_size] and one
    tensor per field of ``data``.
    """
    indices = np.asarray(indices, dtype=np.int64)
    starts, lengths = data.offsets[indices], data.lengths[indices]
    width = int(lengths.max()) if pad_to is None else pad_to
    positions = np.arange(width)
    valid = positions[None, :] < lengths[:, None]
    gather = np.where(valid, starts[:, None] + positions[None, :], 0)
    src = np.where(valid, data.tokens[gather], pad_id)
    seg = np.where(valid, data.segments[gather], 0)
    batch = {"src": torch.from_numpy(src), "seg": torch.from_numpy(seg.astype(np.int64)),
             "length": torch.from_numpy(lengths.copy())}
    for name, values in data.fields.items():
        batch[name] = torch.from_numpy(np.ascontiguousarray(values[indices]))
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


def split_for_rank(batch: np.ndarray, rank: int, world_size: int) -> tuple[np.ndarray, np.ndarray]:
    """This rank's share of a global batch, and a weight per instance (0 = filler).

    The global batch is cut into ``world_size`` near-equal contiguous parts. A rank whose part is empty
    (a last batch smaller than the world) gets one filler instance with weight 0, so every rank runs
    forward and backward (DDP needs that) while the loss stays that of the real instances.
    """
    part = np.array_split(batch, world_size)[rank]
    if len(part) == 0:
        return batch[:1], np.zeros(1, dtype=np.float32)
    return part, np.ones(len(part), dtype=np.float32)
