"""Instance builders without masks: ``lm`` and ``bilm`` (windows of a document stream, GPT/ELMo) and ``cls``
(``label<TAB>text`` lines)."""
from __future__ import annotations

from abc import abstractmethod
from typing import Iterator

import numpy as np

from uer.data.instances_base import PACK_BLOCK, DocumentBuffer, InstanceBuilder, Ranges, register_instances


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


register_instances("lm")(LmInstances)
register_instances("bilm")(BilmInstances)
register_instances("cls")(ClsInstances)
