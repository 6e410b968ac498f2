"""The ``mlm`` instance builder (one document per line, RoBERTa; ``--full_sentences`` packs across documents)."""
from __future__ import annotations

import numpy as np

from uer.data.instances_base import DocumentBuffer, InstanceBuilder, InstanceConfig, Ranges, register_instances


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


register_instances("mlm")(MlmInstances)
