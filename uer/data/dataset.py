"""The pre-processed dataset file: a small JSON header plus raw little-endian numpy arrays.

Never a pickle, so a dataset from an untrusted source cannot run code, and pretrain.py maps it with
``np.memmap`` instead of reading it into RAM (a dataset larger than RAM trains; DDP ranks share pages).

File layout (``--dataset_path``; users call it dataset.pt out of habit)::

    offset 0   8 bytes   magic b"UERDSET1"
    offset 8   8 bytes   header length H, little-endian uint64
    offset 16  H bytes   UTF-8 JSON header
   16+H     8 bytes   b"CRC1" + CRC32 of bytes [0, 16+H) (little-endian uint32): the header checksum
               zeros     up to a 64-byte boundary
               arrays    raw little-endian, C order, each at a 64-byte-aligned offset given in the header

Checksums (``"checksums": "crc32"`` in the header): the header's CRC32 follows it, and each array's entry
holds ``"crc32"`` (8 hex digits) of its bytes. Opening a dataset checks the header; ``verify=True`` (pretrain.py
does it once per run unless ``--no_verify_dataset``) reads every array and checks its CRC32, so a flipped
byte is an error naming the array instead of a silently wrong token. Files written before checksums (no
``checksums`` field, zeros after the header) load with a notice: old readers ignore both additions.
The header also records ``vocab_sha256``, the fingerprint of the vocabulary (:meth:`Vocab.fingerprint`),
so that pretrain.py refuses a vocabulary of the same size in another order.

Header fields (format_version 1)::

    format_version, target, seq_length, vocab_size, instances_num, dynamic_masking,
    span_masking {enabled, geo_prob, max_length}, tokenizer {...}, special_ids {pad, unk, cls, sep, mask},
    arrays {name: {dtype, shape, offset, crc32}}, checksums, vocab_sha256, plus any extra fields (readers
    ignore what they don't know).

Arrays of the mlm/bert/albert targets (N instances, S = seq_length):

    src         [N, S]  token ids (uint16 if vocab_size <= 65535 else int32), static masks applied,
                        padded with [PAD]
    length      [N]     uint16, number of real tokens
    seg_a_len   [N]     uint16, length of segment A incl. [CLS] and its [SEP] (== length when single)
    label       [N]     int8, bert: 1 = B is a random sentence (HF NSP: 0 = IsNext); albert: 1 = swapped
    mask_offsets [N+1]  int64, static masking only: instance i's masks are mask_pos/mask_label[o[i]:o[i+1]]
    mask_pos    [M]     uint16, positions inside the instance
    mask_label  [M]     original token ids (same dtype as src)

Arrays of the lm/bilm targets (next-token windows; no masks, ``dynamic_masking`` false):

    src         [N, S+1] token ids of a window of up to S+1 tokens (inputs are its first tokens, labels
                         the following ones: see uer.data.pretrain_loader), padded with [PAD]
    length      [N]     uint16, tokens in the window
    seg_a_len   [N]     uint16, == length

Arrays of the cls target: src [N, S] (``[CLS] text [SEP]``), length, seg_a_len (== length), and
``label`` [N] int32 (the class). New targets add arrays or another ``src`` width without a format change
(format_version stays 1): readers look arrays up by name and shapes come from the header.

Workers stream instances to *shard* files (:class:`DatasetWriter`): ``b"UERSHRD1"`` followed by blocks
``[8-byte JSON length][JSON {n, arrays: {name: {dtype, shape}}}][array bytes]`` and a final end block
``{"end": true, "instances": N}`` (a shard without it is incomplete). :func:`merge_shards` concatenates
shards block by block into the final file (bounded memory), turning per-instance ``*_count`` arrays
into CSR ``*_offsets``, and renames it into place atomically.
"""
from __future__ import annotations

import json
import logging
import os
import struct
import zlib
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np

logger = logging.getLogger(__name__)
from uer.errors import UserError
from uer.utils.io import atomic_open, check_input_file

MAGIC = b"UERDSET1"
HEADER_CRC_TAG = b"CRC1"
_NO_CRC = "00000000"  # placeholder of the fixed-width crc32 fields while the arrays are written
SHARD_MAGIC = b"UERSHRD1"
FORMAT_VERSION = 1
ALIGN = 64
# Per-instance count arrays written by workers -> the CSR offsets array of the merged file.
CSR_COUNTS = {"mask_count": "mask_offsets"}
_COPY_CHUNK = 16 << 20


class DatasetFormatError(UserError, ValueError):
    """The file is not a dataset of ours, is truncated, or has an unsupported version."""


def token_dtype(vocab_size: int) -> np.dtype:
    """uint16 when every id fits, else int32."""
    return np.dtype("<u2") if vocab_size <= 65535 else np.dtype("<i4")


def _align(x: int) -> int:
    return (x + ALIGN - 1) // ALIGN * ALIGN


def _le(dtype: np.dtype | str) -> np.dtype:
    """The little-endian version of a dtype (the file is little-endian on every platform)."""
    return np.dtype(dtype).newbyteorder("<")


def _dtype_name(dtype: np.dtype) -> str:
    return np.dtype(dtype).name  # "uint16", "int64", ... (endianness is fixed by the format)


class DatasetWriter:
    """Streams blocks of instances from one worker to a shard file.

    Each ``write`` call appends one block; all blocks of a shard must have the same array names,
    dtypes and trailing shapes. Use as a context manager: a shard is only valid once closed normally.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self._f = open(self.path, "wb")
        self._f.write(SHARD_MAGIC)
        self.instances = 0
        self._layout: dict[str, tuple[str, tuple[int, ...]]] | None = None

    def write(self, arrays: Mapping[str, np.ndarray], n: int) -> None:
        """Append a block of ``n`` instances. Per-instance arrays have first dimension ``n``; ragged
        arrays (mask_pos, mask_label) any first dimension."""
        layout = {name: (_dtype_name(a.dtype), tuple(a.shape[1:])) for name, a in arrays.items()}
        if self._layout is None:
            self._layout = layout
        elif layout != self._layout:
            raise ValueError(f"block layout {layout} differs from the shard's {self._layout}")
        meta = {"n": int(n), "arrays": {name: {"dtype": _dtype_name(a.dtype), "shape": list(a.shape)}
                                         for name, a in arrays.items()}}
        blob = json.dumps(meta).encode("utf-8")
        try:
            self._f.write(struct.pack("<Q", len(blob)))
            self._f.write(blob)
            for a in arrays.values():
                self._f.write(np.ascontiguousarray(a, dtype=_le(a.dtype)).tobytes())
        except OSError as err:  # a full disk or a file-size limit: the message names the file
            raise OSError(err.errno, err.strerror, str(self.path)) from None
        self.instances += int(n)

    def close(self) -> None:
        if self._f.closed:
            return
        blob = json.dumps({"end": True, "instances": self.instances}).encode("utf-8")
        self._f.write(struct.pack("<Q", len(blob)))
        self._f.write(blob)
        self._f.close()

    def abort(self) -> None:
        """Close without the end marker (the shard stays invalid)."""
        if not self._f.closed:
            self._f.close()

    def __enter__(self) -> "DatasetWriter":
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def _scan_shard(path: Path) -> tuple[list[tuple[int, int, dict]], int]:
    """Block index of a shard: [(data offset, n, arrays meta)], and its instance count."""
    blocks: list[tuple[int, int, dict]] = []
    size = path.stat().st_size
    with open(path, "rb") as f:
        if f.read(8) != SHARD_MAGIC:
            raise DatasetFormatError(f"{path} is not a dataset shard")
        pos = 8
        while True:
            raw = f.read(8)
            if len(raw) < 8:
                raise DatasetFormatError(f"shard {path} is incomplete (its worker did not finish)")
            (hlen,) = struct.unpack("<Q", raw)
            meta = json.loads(f.read(hlen).decode("utf-8"))
            pos += 8 + hlen
            if meta.get("end"):
                total = sum(b[1] for b in blocks)
                if meta["instances"] != total:
                    raise DatasetFormatError(f"shard {path} is inconsistent")
                return blocks, total
            nbytes = sum(int(np.prod(m["shape"], dtype=np.int64)) * np.dtype(m["dtype"]).itemsize
                         for m in meta["arrays"].values())
            if pos + nbytes > size:
                raise DatasetFormatError(f"shard {path} is truncated")
            blocks.append((pos, int(meta["n"]), meta["arrays"]))
            pos += nbytes
            f.seek(pos)


def _block_array_offsets(block_arrays: dict) -> dict[str, tuple[int, int]]:
    """Relative (offset, nbytes) of each array inside a block's data."""
    out, rel = {}, 0
    for name, m in block_arrays.items():
        nbytes = int(np.prod(m["shape"], dtype=np.int64)) * np.dtype(m["dtype"]).itemsize
        out[name] = (rel, nbytes)
        rel += nbytes
    return out


def merge_shards(shard_paths: Iterable[str | os.PathLike], out_path: str | os.PathLike,
                 header_fields: Mapping[str, Any]) -> dict[str, Any]:
    """Concatenate worker shards (in the given order) into the final dataset file.

    Streams block by block (memory bounded by one block), writes ``out_path`` via a temporary file in the
    same directory and ``os.replace``: a crash never leaves a half-written dataset under the final name.
    The shards are removed afterwards, on success and on failure.

    Args:
        shard_paths: shard files written by :class:`DatasetWriter`, in instance order.
        out_path: the final dataset file.
        header_fields: target, seq_length, vocab_size, ... (``arrays``, ``instances_num`` and
            ``format_version`` are filled in here).

    Returns:
        The header that was written.
    """
    shard_paths = [Path(p) for p in shard_paths]
    out_path = Path(out_path)
    try:
        index = [(p, _scan_shard(p)[0]) for p in shard_paths]
        blocks = [(p, off, n, arrays) for p, bl in index for (off, n, arrays) in bl]
        total_n = sum(b[2] for b in blocks)
        # Final arrays: name -> (dtype, total shape).
        layout: dict[str, tuple[np.dtype, list[int]]] = {}
        for _, _, n, arrays in blocks:
            for name, m in arrays.items():
                shape = list(m["shape"])
                if name in layout:
                    dtype, total = layout[name]
                    if dtype != np.dtype(m["dtype"]) or total[1:] != shape[1:]:
                        raise DatasetFormatError(f"array {name!r} differs between shards")
                    total[0] += shape[0]
                else:
                    layout[name] = (np.dtype(m["dtype"]), shape)
        final: dict[str, tuple[np.dtype, list[int]]] = {}
        for name, (dtype, shape) in layout.items():
            if name in CSR_COUNTS:
                final[CSR_COUNTS[name]] = (np.dtype("int64"), [total_n + 1])
            else:
                final[name] = (dtype, shape)

        header = dict(header_fields)
        header.update(format_version=FORMAT_VERSION, instances_num=total_n, checksums="crc32")
        data_start = 0
        while True:  # the header holds offsets that depend on its own length: iterate to a fixed point
            offsets, pos = {}, data_start
            for name, (dtype, shape) in final.items():
                offsets[name] = pos
                pos = _align(pos + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize)
            header["arrays"] = {name: {"dtype": _dtype_name(dtype), "shape": shape, "offset": offsets[name],
                                       "crc32": _NO_CRC} for name, (dtype, shape) in final.items()}
            blob = json.dumps(header, ensure_ascii=False).encode("utf-8")
            needed = _align(16 + len(blob) + 8)
            if needed <= data_start:
                break
            data_start = needed

        with atomic_open(out_path, "wb") as out:
            out.write(b"\0" * data_start)  # the header goes here once the arrays' checksums are known
            for name, (dtype, shape) in final.items():
                out.write(b"\0" * (offsets[name] - out.tell()))
                count_name = next((c for c, o in CSR_COUNTS.items() if o == name), None)
                crc = _CrcWriter(out)
                if count_name is not None:
                    _write_offsets(crc, blocks, count_name)
                else:
                    _copy_array(crc, blocks, name)
                header["arrays"][name]["crc32"] = f"{crc.crc:08x}"
            out.write(b"\0" * (pos - out.tell()))
            final_blob = json.dumps(header, ensure_ascii=False).encode("utf-8")
            assert len(final_blob) == len(blob)  # fixed-width checksums: the offsets still hold
            head = MAGIC + struct.pack("<Q", len(final_blob)) + final_blob
            out.seek(0)
            out.write(head + HEADER_CRC_TAG + struct.pack("<I", zlib.crc32(head)))
        return header
    finally:
        for p in shard_paths:
            if p.exists():
                p.unlink()


class _CrcWriter:
    """A file wrapper that keeps the CRC32 of what goes through it."""

    def __init__(self, out: Any) -> None:
        self.out, self.crc = out, 0

    def write(self, data: bytes) -> None:
        self.crc = zlib.crc32(data, self.crc)
        self.out.write(data)


def _copy_array(out: Any, blocks: list, name: str) -> None:
    handles: dict[Path, Any] = {}
    try:
        for path, data_off, _, arrays in blocks:
            rel, nbytes = _block_array_offsets(arrays)[name]
            f = handles.get(path) or handles.setdefault(path, open(path, "rb"))
            f.seek(data_off + rel)
            while nbytes > 0:
                chunk = f.read(min(nbytes, _COPY_CHUNK))
                if not chunk:
                    raise DatasetFormatError(f"shard {path} is truncated")
                out.write(chunk)
                nbytes -= len(chunk)
    finally:
        for f in handles.values():
            f.close()


def _write_offsets(out: Any, blocks: list, count_name: str) -> None:
    """Per-instance counts of every block -> one running int64 offsets array starting with 0."""
    base = 0
    out.write(np.zeros(1, dtype="<i8").tobytes())
    handles: dict[Path, Any] = {}
    try:
        for path, data_off, _, arrays in blocks:
            rel, nbytes = _block_array_offsets(arrays)[count_name]
            f = handles.get(path) or handles.setdefault(path, open(path, "rb"))
            f.seek(data_off + rel)
            counts = np.frombuffer(f.read(nbytes), dtype=_le(arrays[count_name]["dtype"]))
            offsets = base + np.cumsum(counts, dtype=np.int64)
            out.write(offsets.astype("<i8").tobytes())
            if len(offsets):
                base = int(offsets[-1])
    finally:
        for f in handles.values():
            f.close()


def _not_ours_message(path: Path, head: bytes) -> str:
    if head[:1] == b"\x80" or head[:2] == b"PK":
        what = "looks like a pickle/torch.save dataset (UER-py's format)"
    else:
        what = "is not a dataset written by this project's preprocess.py"
    return (f"{path} {what}. Datasets are not unpickled (a pickle can run code); "
            f"re-run this project's preprocess.py on the corpus to build {path.name}.")


class PretrainDataset:
    """A dataset file opened for reading: header plus memory-mapped arrays (nothing read into RAM).

    Attributes:
        path: the file.
        header: the JSON header (dict).
        arrays: name -> read-only ``np.memmap`` (or empty array).
    """

    def __init__(self, path: Path, header: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        self.path = path
        self.header = header
        self.arrays = arrays

    @classmethod
    def open(cls, path: str | os.PathLike, verify: bool = False) -> "PretrainDataset":
        """Validate magic, header checksum, version and size, then map every array; ``verify`` also checks
        every array's checksum (reads the whole file once). Raises DatasetFormatError."""
        path = Path(path)
        check_input_file(path, "dataset file", " (build it with preprocess.py)")
        size = path.stat().st_size
        with open(path, "rb") as f:
            head = f.read(16)
            if len(head) < 16 or head[:8] != MAGIC:
                raise DatasetFormatError(_not_ours_message(path, head))
            (hlen,) = struct.unpack("<Q", head[8:16])
            if 16 + hlen > size:
                raise DatasetFormatError(f"{path} is truncated (header cut off); re-run preprocess.py")
            blob = f.read(hlen)
            trailer = f.read(8)
        if trailer[:4] == HEADER_CRC_TAG:
            (stored,) = struct.unpack("<I", trailer[4:8])
            if zlib.crc32(head + blob) != stored:
                raise DatasetFormatError(f"{path}: the header is corrupt (its CRC32 does not match: a changed byte "
                                         "in the first bytes of the file); re-run preprocess.py or restore a copy")
        try:
            header = json.loads(blob.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise DatasetFormatError(f"{path} has a corrupt header ({e}); re-run preprocess.py") from e
        if not isinstance(header, dict):
            raise DatasetFormatError(f"{path} has a corrupt header (not a JSON object); re-run preprocess.py")
        version = header.get("format_version")
        if version != FORMAT_VERSION:
            raise DatasetFormatError(f"{path} has dataset format version {version}; this code reads version "
                                     f"{FORMAT_VERSION}. Re-run preprocess.py with this version.")
        if header.get("checksums") and trailer[:4] != HEADER_CRC_TAG:
            raise DatasetFormatError(f"{path}: the header checksum is missing or damaged; re-run preprocess.py")
        arrays: dict[str, np.ndarray] = {}
        for name, m in header["arrays"].items():
            dtype, shape, offset = _le(m["dtype"]), tuple(m["shape"]), int(m["offset"])
            nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
            if offset + nbytes > size:
                raise DatasetFormatError(f"{path} is truncated (array {name!r} needs bytes up to "
                                         f"{offset + nbytes}, the file has {size}); re-run preprocess.py")
            if nbytes == 0:
                arrays[name] = np.zeros(shape, dtype=dtype)
            else:
                arrays[name] = np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=shape)
        ds = cls(path, header, arrays)
        if "src" not in arrays or len(arrays["src"]) != ds.instances_num:
            raise DatasetFormatError(f"{path}: header and arrays disagree on the number of instances")
        if not header.get("checksums"):
            logger.warning("%s was written before datasets carried checksums: damage to it cannot be detected "
                           "(re-run preprocess.py to add them)", path)
        elif verify:
            ds.verify()
        return ds

    def verify(self) -> None:
        """Read every array and compare its CRC32 with the header's; raises DatasetFormatError naming the
        first damaged array (about one second per GB: see benchmarks/bench_dataset_checksum.py)."""
        with open(self.path, "rb") as f:
            for name, m in self.header["arrays"].items():
                expected = m.get("crc32")
                if expected is None:
                    continue
                start = int(m["offset"])
                nbytes = int(np.prod(m["shape"], dtype=np.int64)) * np.dtype(m["dtype"]).itemsize
                end = start + nbytes
                f.seek(start)
                crc = 0
                while nbytes > 0:
                    chunk = f.read(min(nbytes, _COPY_CHUNK))
                    if not chunk:
                        break
                    crc = zlib.crc32(chunk, crc)
                    nbytes -= len(chunk)
                if f"{crc:08x}" != expected:
                    raise DatasetFormatError(
                        f"{self.path}: array {name!r} is damaged: its bytes {start}-{end} have CRC32 {crc:08x}, the "
                        f"header says {expected} (changed since preprocess.py wrote them); re-run preprocess.py or "
                        "restore a copy (--no_verify_dataset skips this check)")

    # Header facts.
    @property
    def target(self) -> str:
        return self.header["target"]

    @property
    def seq_length(self) -> int:
        return int(self.header["seq_length"])

    @property
    def vocab_size(self) -> int:
        return int(self.header["vocab_size"])

    @property
    def instances_num(self) -> int:
        return int(self.header["instances_num"])

    @property
    def dynamic_masking(self) -> bool:
        return bool(self.header["dynamic_masking"])

    def __len__(self) -> int:
        return self.instances_num

    # Arrays (None when the target or masking mode has none).
    @property
    def src(self) -> np.ndarray:
        return self.arrays["src"]

    @property
    def length(self) -> np.ndarray:
        return self.arrays["length"]

    @property
    def seg_a_len(self) -> np.ndarray:
        return self.arrays["seg_a_len"]

    @property
    def label(self) -> np.ndarray | None:
        return self.arrays.get("label")

    @property
    def mask_offsets(self) -> np.ndarray | None:
        return self.arrays.get("mask_offsets")

    @property
    def mask_pos(self) -> np.ndarray | None:
        return self.arrays.get("mask_pos")

    @property
    def mask_label(self) -> np.ndarray | None:
        return self.arrays.get("mask_label")

    def instance(self, i: int) -> dict[str, Any]:
        """One instance as plain Python values (for tests and inspection, not for training speed)."""
        n = int(self.length[i])
        out: dict[str, Any] = {"src": self.src[i, :n].tolist(), "seg_a_len": int(self.seg_a_len[i])}
        if self.label is not None:
            out["label"] = int(self.label[i])
        if self.mask_offsets is not None:
            a, b = int(self.mask_offsets[i]), int(self.mask_offsets[i + 1])
            out["mask_pos"] = self.mask_pos[a:b].tolist()
            out["mask_label"] = self.mask_label[a:b].tolist()
        return out
