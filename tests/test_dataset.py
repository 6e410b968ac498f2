"""The dataset file format (round trip, refusal of foreign/truncated files, atomic merge) and the
pre-training batch loader (seek, rank split, epochs, dynamic masks)."""
from __future__ import annotations

import json
import os
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest

from uer.data.pretrain_loader import PretrainBatches
from uer.data.dataset import (ALIGN, MAGIC, DatasetFormatError, DatasetWriter, PretrainDataset, merge_shards,
                               token_dtype)
from uer.data.masking import MaskingConfig, mask_batch

PAD, UNK, CLS, SEP, MASK = 0, 1, 2, 3, 4
VOCAB = 3000
WIDTH = 32


def masking(**kw) -> MaskingConfig:
    return MaskingConfig(vocab_size=VOCAB, pad_id=PAD, cls_id=CLS, sep_id=SEP, mask_id=MASK, unk_id=UNK, **kw)


def header_fields(dynamic: bool, target: str = "bert") -> dict:
    return {"target": target, "seq_length": WIDTH, "vocab_size": VOCAB, "dynamic_masking": dynamic,
            "span_masking": {"enabled": False, "geo_prob": 0.2, "max_length": 10},
            "special_ids": {"pad": PAD, "unk": UNK, "cls": CLS, "sep": SEP, "mask": MASK},
            "tokenizer": {"name": "test"}, "note": "extra fields survive"}


def random_block(rng: np.random.Generator, n: int, dynamic: bool) -> dict[str, np.ndarray]:
    """n bert-like instances: [CLS] A [SEP] B [SEP], labels, and (static) stored masks."""
    length = rng.integers(6, WIDTH + 1, size=n)
    seg_a = np.array([rng.integers(3, ln - 2) for ln in length], dtype=np.int64)
    src = rng.integers(5, VOCAB, size=(n, WIDTH))
    src[:, 0] = CLS
    src[np.arange(n), seg_a - 1] = SEP
    src[np.arange(n), length - 1] = SEP
    src[np.arange(WIDTH)[None, :] >= length[:, None]] = PAD
    arrays = {"src": src.astype(token_dtype(VOCAB)), "length": length.astype(np.uint16),
              "seg_a_len": seg_a.astype(np.uint16), "label": rng.integers(0, 2, size=n).astype(np.int8)}
    if not dynamic:
        from uer.data.masking import GeneratorUniforms
        m = mask_batch(src, length, masking(), GeneratorUniforms(rng, n))
        arrays["src"] = m.src.astype(token_dtype(VOCAB))
        arrays["mask_count"] = np.bincount(m.rows, minlength=n).astype(np.uint16)
        arrays["mask_pos"] = m.cols.astype(np.uint16)
        arrays["mask_label"] = m.labels.astype(token_dtype(VOCAB))
    return arrays


def write_dataset(path: Path, n_blocks: list[list[int]], dynamic: bool, seed: int = 0) -> list[dict]:
    """One shard per inner list, one block per size; returns the blocks in order."""
    rng = np.random.default_rng(seed)
    blocks, shards = [], []
    for s, sizes in enumerate(n_blocks):
        shard = path.with_name(f"shard{s}")
        with DatasetWriter(shard) as w:
            for n in sizes:
                b = random_block(rng, n, dynamic)
                w.write(b, n)
                blocks.append(b)
        shards.append(shard)
    merge_shards(shards, path, header_fields(dynamic))
    return blocks


def test_round_trip_static(tmp_path: Path) -> None:
    path = tmp_path / "dataset.pt"
    blocks = write_dataset(path, [[50, 7], [0, 33]], dynamic=False)
    ds = PretrainDataset.open(path)
    assert len(ds) == 90 and ds.target == "bert" and ds.seq_length == WIDTH and not ds.dynamic_masking
    assert ds.header["note"] == "extra fields survive" and ds.header["format_version"] == 1
    for name in ("src", "length", "seg_a_len", "label", "mask_pos", "mask_label"):
        expected = np.concatenate([b[name] for b in blocks])
        assert ds.arrays[name].dtype == expected.dtype
        assert np.array_equal(ds.arrays[name], expected), name
    counts = np.concatenate([b["mask_count"] for b in blocks])
    assert np.array_equal(ds.mask_offsets, np.concatenate([[0], np.cumsum(counts)]))
    assert isinstance(ds.src, np.memmap) and ds.src.dtype == np.uint16
    assert all(m["offset"] % ALIGN == 0 for m in ds.header["arrays"].values())
    inst = ds.instance(60)
    assert len(inst["src"]) == int(ds.length[60]) and len(inst["mask_pos"]) == counts[60]
    assert not list(tmp_path.glob("shard*")) and not list(tmp_path.glob(".*tmp*"))  # shards removed


def test_round_trip_dynamic_and_wide_vocab(tmp_path: Path) -> None:
    path = tmp_path / "d.pt"
    write_dataset(path, [[10]], dynamic=True)
    ds = PretrainDataset.open(path)
    assert ds.dynamic_masking and ds.mask_offsets is None and ds.mask_pos is None
    assert token_dtype(65535) == np.uint16 and token_dtype(65536) == np.int32


def test_not_our_format_is_refused_with_a_clear_message(tmp_path: Path) -> None:
    legacy = tmp_path / "dataset.pt"
    with open(legacy, "wb") as f:  # what UER-py's preprocess.py writes: a stream of pickles
        pickle.dump(((([101, 2, 102], 0), [(1, 2)], 0, [3])), f)
    with pytest.raises(DatasetFormatError, match=r"dataset\.pt.*pickle.*re-run.*preprocess\.py"):
        PretrainDataset.open(legacy)
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"hello world, not a dataset")
    with pytest.raises(DatasetFormatError, match="junk.bin.*preprocess.py"):
        PretrainDataset.open(junk)
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        PretrainDataset.open(tmp_path / "missing.pt")


def test_truncated_and_future_version_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "dataset.pt"
    write_dataset(path, [[40]], dynamic=False)
    data = path.read_bytes()
    cut = tmp_path / "cut.pt"
    cut.write_bytes(data[:-100])
    with pytest.raises(DatasetFormatError, match="truncated"):
        PretrainDataset.open(cut)
    cut.write_bytes(data[:30])
    with pytest.raises(DatasetFormatError, match="truncated"):
        PretrainDataset.open(cut)
    # A newer format version is refused rather than misread.
    (hlen,) = struct.unpack("<Q", data[8:16])
    header = json.loads(data[16:16 + hlen])
    header["format_version"] = 99
    blob = json.dumps(header).encode()
    future = tmp_path / "future.pt"
    future.write_bytes(MAGIC + struct.pack("<Q", len(blob)) + blob)
    with pytest.raises(DatasetFormatError, match="version 99"):
        PretrainDataset.open(future)


def test_merge_is_atomic_and_cleans_up_on_failure(tmp_path: Path) -> None:
    path = tmp_path / "dataset.pt"
    good = tmp_path / "s0"
    with DatasetWriter(good) as w:
        w.write(random_block(np.random.default_rng(0), 5, True), 5)
    bad = tmp_path / "s1"
    w = DatasetWriter(bad)
    w.write(random_block(np.random.default_rng(1), 5, True), 5)
    w.abort()  # a worker that died: no end marker
    with pytest.raises(DatasetFormatError, match="incomplete"):
        merge_shards([good, bad], path, header_fields(True))
    assert not path.exists()
    assert sorted(os.listdir(tmp_path)) == []  # no temp file, shards removed
    # An existing dataset is only replaced by a complete new one.
    write_dataset(path, [[5]], dynamic=True)
    before = path.read_bytes()
    w = DatasetWriter(bad)
    w.abort()
    with pytest.raises(DatasetFormatError):
        merge_shards([bad], path, header_fields(True))
    assert path.read_bytes() == before


# ----------------------------------------------------------------------------------------------- loader

def instance_view(batch: dict, row: int) -> tuple:
    """One instance of a batch, independent of the batch's padded width."""
    width = batch["src"].shape[1]
    n = int((batch["seg"][row] > 0).sum())
    pos = batch["mlm_positions"].numpy()
    in_row = pos // width == row
    return (batch["src"][row, :n].tolist(), batch["seg"][row, :n].tolist(), (pos[in_row] % width).tolist(),
            batch["mlm_labels"][in_row].tolist(), int(batch["sp_labels"][row]))


def instances_of(batch: dict) -> list[tuple]:
    return [instance_view(batch, r) for r in range(batch["src"].shape[0])]


@pytest.fixture(scope="module")
def datasets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, PretrainDataset]:
    root = tmp_path_factory.mktemp("loader")
    write_dataset(root / "static.pt", [[300, 200], [250]], dynamic=False, seed=1)
    write_dataset(root / "dynamic.pt", [[400, 350]], dynamic=True, seed=2)
    return {"static": PretrainDataset.open(root / "static.pt"), "dynamic": PretrainDataset.open(root / "dynamic.pt")}


def loader(ds: PretrainDataset, batch: int, rank: int = 0, world: int = 1, **kw) -> PretrainBatches:
    dyn = masking() if ds.dynamic_masking else None
    return PretrainBatches(ds, batch, rank=rank, world_size=world, seed=13, instances_buffer_size=64,
                           dynamic_masking=dyn, **kw)


@pytest.mark.parametrize("kind", ["static", "dynamic"])
def test_batch_contents(datasets: dict, kind: str) -> None:
    ds = datasets[kind]
    ld = loader(ds, 16)
    b = ld.batch(3)
    idx = ld.indices(ld.positions(3))
    lengths = np.asarray(ds.length[idx], dtype=int)
    assert b["src"].shape == (16, lengths.max()) and b["src"].dtype.is_floating_point is False
    assert b["tokens_num"] == lengths.sum()
    for r, i in enumerate(idx):
        n, a = int(ds.length[i]), int(ds.seg_a_len[i])
        assert b["seg"][r, :a].eq(1).all() and b["seg"][r, a:n].eq(2).all() and b["seg"][r, n:].eq(0).all()
        assert int(b["sp_labels"][r]) == int(ds.label[i])
        view = instance_view(b, r)
        if kind == "static":  # stored masks come back unchanged
            stored = ds.instance(int(i))
            assert view[0] == stored["src"] and view[2] == stored["mask_pos"] and view[3] == stored["mask_label"]
        else:  # masks applied on the fly, labels are the stored tokens
            orig = ds.src[i, :n].tolist()
            assert [orig[p] for p in view[2]] == view[3] and len(view[2]) >= 1
            assert all(view[0][p] == orig[p] for p in range(n) if p not in set(view[2]))
    for key in ("src", "seg", "mlm_positions", "mlm_labels", "sp_labels"):
        assert str(b[key].dtype) == "torch.int64"
    # pretrain.py rounds widths up to a multiple of 8 (uer.opts.PAD_MULTIPLE): the same instances and masks,
    # padding after them (seg 0), the width capped at the dataset's
    padded = loader(ds, 16, pad_to_multiple_of=8).batch(3)
    assert padded["src"].shape[1] == min(-(-lengths.max() // 8) * 8, ds.src.shape[1])
    assert instances_of(padded) == instances_of(b) and padded["seg"][:, lengths.max():].eq(0).all()
    assert padded["tokens_num"] == b["tokens_num"]
    assert loader(ds, 16, pad_to_multiple_of=10 ** 6).batch(3)["src"].shape[1] == ds.src.shape[1]


@pytest.mark.parametrize("bucketing", [0, 5], ids=["unsorted", "bucketed"])
@pytest.mark.parametrize("kind", ["static", "dynamic"])
def test_seek_equals_sequential(datasets: dict, kind: str, bucketing: int) -> None:
    ds = datasets[kind]
    seq = loader(ds, 24, length_bucketing=bucketing)
    it = iter(seq)
    batches = [next(it) for _ in range(70)]  # > 2 epochs of 750 instances
    fresh = loader(ds, 24, length_bucketing=bucketing)
    for k in (0, 1, 31, 32, 69):
        got = next(fresh.iter_from(k))
        assert instances_of(got) == instances_of(batches[k])
        for key in ("src", "seg", "mlm_positions", "mlm_labels", "sp_labels"):
            assert got[key].equal(batches[k][key])


@pytest.mark.parametrize("bucketing", [0, 5], ids=["unsorted", "bucketed"])
@pytest.mark.parametrize("kind", ["static", "dynamic"])
def test_two_ranks_see_what_one_rank_with_double_batch_sees(datasets: dict, kind: str, bucketing: int) -> None:
    ds = datasets[kind]
    one = loader(ds, 20, length_bucketing=bucketing)
    r0, r1 = (loader(ds, 10, rank=r, world=2, length_bucketing=bucketing) for r in (0, 1))
    for g in (0, 5, 37, 80):
        assert instances_of(one.batch(g)) == instances_of(r0.batch(g)) + instances_of(r1.batch(g))


def test_epochs_cover_every_instance_once_in_a_new_order(datasets: dict) -> None:
    ds = datasets["static"]
    ld = loader(ds, 8)
    n = len(ds)
    e0 = ld.indices(np.arange(n))
    e1 = ld.indices(np.arange(n, 2 * n))
    assert sorted(e0.tolist()) == list(range(n)) and sorted(e1.tolist()) == list(range(n))
    assert not np.array_equal(e0, e1)
    # Reads stay local: consecutive positions come from one chunk of instances_buffer_size instances.
    assert len(np.unique(e0[:64] // 64)) == 1
    # Another seed gives another order.
    other = PretrainBatches(ds, 8, seed=14, instances_buffer_size=64)
    assert not np.array_equal(other.indices(np.arange(n)), e0)


def test_length_bucketing_permutes_each_window_and_cuts_the_padding(datasets: dict) -> None:
    ds = datasets["dynamic"]
    plain, bucketed = loader(ds, 10), loader(ds, 10, length_bucketing=6)
    window = [b for g in range(6, 12) for b in instances_of(bucketed.batch(g))]  # the second window of 6 batches
    assert sorted(window) == sorted(b for g in range(6, 12) for b in instances_of(plain.batch(g)))
    widths = [bucketed.batch(g)["src"].shape[1] for g in range(6, 12)]
    lengths = sorted(int(ds.length[i]) for i in plain.indices(np.arange(60, 120)))
    assert sorted(widths) == lengths[9::10]  # each batch holds 10 consecutive lengths: padded to the 10th
    assert widths != sorted(widths)  # and the batches come in a shuffled order

    def padding(ld: PretrainBatches) -> float:
        sizes = [(b["src"].numel(), b["tokens_num"]) for b in map(ld.batch, range(60))]
        return 1 - sum(t for _, t in sizes) / sum(n for n, _ in sizes)

    assert padding(bucketed) < padding(plain) / 3, (padding(bucketed), padding(plain))
    # an optimiser step of 2 accumulated micro-batches of 5 reads what one batch of 10 does
    accumulated = loader(ds, 5, length_bucketing=6, accumulation_steps=2)
    for step in (0, 7, 13):
        pair = instances_of(accumulated.batch(2 * step)) + instances_of(accumulated.batch(2 * step + 1))
        assert sorted(pair) == sorted(instances_of(bucketed.batch(step)))
    # dynamic masks are a function of the instance's global position: the same whatever the batch
    by_position = {int(p): instance_view(plain.batch(int(p) // 10), int(p) % 10) for p in range(60, 120)}
    batch = bucketed.batch(7)
    for row, p in enumerate(bucketed.positions(7)):
        assert instance_view(batch, row) == by_position[int(p)]


def test_dynamic_masks_change_between_epochs(datasets: dict) -> None:
    ds = datasets["dynamic"]
    ld = loader(ds, 1)
    n = len(ds)
    e0, e1 = ld.indices(np.arange(n)), ld.indices(np.arange(n, 2 * n))
    where1 = np.argsort(e1)
    differ = 0
    for i in range(50):
        p0, p1 = int(np.nonzero(e0 == i)[0][0]), int(where1[i])
        b0, b1 = ld.batch(p0), ld.batch(p1)
        differ += instance_view(b0, 0)[2] != instance_view(b1, 0)[2]
    assert differ >= 45


def test_loader_argument_errors(datasets: dict) -> None:
    with pytest.raises(ValueError, match="dynamic_masking"):
        PretrainBatches(datasets["dynamic"], 4)
    with pytest.raises(ValueError, match="static masks"):
        PretrainBatches(datasets["static"], 4, dynamic_masking=masking())
    with pytest.raises(ValueError, match="rank"):
        PretrainBatches(datasets["static"], 4, rank=2, world_size=2)
    with pytest.raises(ValueError, match="length_bucketing"):
        PretrainBatches(datasets["static"], 4, length_bucketing=-1)
    with pytest.raises(ValueError, match="accumulation_steps"):
        PretrainBatches(datasets["static"], 4, accumulation_steps=0)
