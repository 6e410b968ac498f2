"""Pre-training micro-batches from a memory-mapped dataset, in a deterministic, seekable global order.

Order. Global position p = 0, 1, 2, ... (over all ranks and epochs) maps to an instance index:
epoch ``e = p // N``, ``q = p % N``. The dataset is cut into chunks of ``instances_buffer_size``
consecutive instances (the last may be shorter); an epoch visits the chunks in the order
``default_rng([seed, e, 0]).permutation(chunks)`` and the instances of chunk c in the order
``default_rng([seed, e, 1, c]).permutation(size_c)``. Global micro-batch g covers positions
``[g*B*W, (g+1)*B*W)`` and rank r takes ``[g*B*W + r*B, g*B*W + (r+1)*B)``.

Length bucketing (``length_bucketing=K``, pretrain.py's default K = 100) works on optimiser steps of
S = A*B*W positions (A = ``accumulation_steps`` micro-batches per step): steps are grouped in windows of K,
w = s // K. The K*S positions of window w are sorted by their instances' lengths (stable), cut into K groups
of S, and the groups are visited in the order ``default_rng([seed, 2, w]).permutation(K)``: step s takes group
``perm[s % K]``, its micro-batch j the j-th slice of B*W, rank r its r-th slice of B. Batches then hold
instances of similar length and are padded only to their longest, rounded up to ``pad_to_multiple_of``
(pretrain.py: 8; bert/mlm data of short documents: ~20% of the positions were padding at 32 x 128, ~2%
bucketed). Each instance keeps its global position (dynamic masks unchanged), and a step sees the same
instances whatever A, B and W make up its S.

So a batch is a pure function of (seed, g, rank, world_size, B, K, A): ``iter_from(g)`` seeks in O(1) (a resumed
run continues where it stopped), and the ranks of a W-rank run with batch B together see exactly the
instances of a 1-rank run with batch W*B. Reads stay local: a batch touches at most a few chunks.

Dynamic masking draws each instance's mask from a hash of (seed, p) (uer.data.masking.HashUniforms): the
same masks whatever the batch size, rank count or resume point, and new masks every epoch.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Iterator

import numpy as np
import torch

from uer.data.dataset import PretrainDataset
from uer.data.masking import HashUniforms, MaskingConfig, mask_batch
from uer.data.pretrain_instances import str2instances

_CACHE_SIZE = 4  # permutations kept: a batch spans at most a couple of chunks


class PretrainBatches:
    """Micro-batches for one rank.

    Args:
        dataset: an opened dataset (mlm, bert, albert, lm, bilm or cls target).
        batch_size: instances per micro-batch per rank (B).
        rank, world_size: this process's rank among W data-parallel ranks.
        seed: shuffling (and dynamic masking) seed.
        instances_buffer_size: chunk size of the shuffle (UER-py's --instances_buffer_size).
        dynamic_masking: required iff the dataset was built with --dynamic_masking (vocab size, special
            ids and span options; see ``MaskingConfig.from_header``).
        pad_to_multiple_of: round the batch width up to a multiple (e.g. 8 for tensor cores), capped at
            the dataset's width.
        length_bucketing: K > 1 sorts windows of K optimiser steps by length (module doc); 0 or 1: off.
        accumulation_steps: micro-batches per optimiser step (A; only bucketing depends on it).

    Each batch is a dict of CPU int64 tensors:
        src [b, L], seg [b, L] (1 = segment A incl. [CLS] and its [SEP], 2 = segment B, 0 = padding),
        mlm_positions [M] (flat indices into the b*L flattened batch), mlm_labels [M] (original ids),
        sp_labels [b] (bert: 1 = random next; albert: 1 = swapped; only for those targets),
        and tokens_num (int: non-padding tokens). L = the longest instance of the batch (rounded up to
        ``pad_to_multiple_of``).

    lm/bilm datasets (windows of up to seq_length + 1 tokens) give instead, with L = the longest window - 1:
        src [b, L] (each window without its last token), seg [b, L] (1 = real, 0 = padding),
        lm_positions [M] / lm_labels [M] (flat index of every real position and the token after it),
        lm_backward_positions [M'] / lm_backward_labels [M'] (real positions but each window's first,
        and the token before it; the bilm target's right-to-left half), tokens_num.
    cls datasets give src [b, L], seg [b, L] (1 = real, 0 = padding), cls_labels [b], tokens_num.
    """

    def __init__(self, dataset: PretrainDataset, batch_size: int, rank: int = 0, world_size: int = 1,
                 seed: int = 7, instances_buffer_size: int = 25600,
                 dynamic_masking: MaskingConfig | None = None, pad_to_multiple_of: int = 1,
                 length_bucketing: int = 0, accumulation_steps: int = 1) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is not in [0, world_size={world_size})")
        if length_bucketing < 0:
            raise ValueError(f"length_bucketing must be >= 0, got {length_bucketing}")
        if accumulation_steps < 1:
            raise ValueError(f"accumulation_steps must be >= 1, got {accumulation_steps}")
        if instances_buffer_size < 1:
            raise ValueError(f"instances_buffer_size must be >= 1, got {instances_buffer_size}")
        if len(dataset) == 0:
            raise ValueError(f"{dataset.path} holds no instances")
        if dataset.target not in str2instances:
            raise ValueError(f"{dataset.path}: unknown dataset kind {dataset.target!r} "
                             f"(known: {', '.join(str2instances)})")
        if dataset.dynamic_masking and dynamic_masking is None:
            raise ValueError(f"{dataset.path} was built with --dynamic_masking: the loader needs a MaskingConfig "
                             "(MaskingConfig.from_header(dataset.header, span_masking=...))")
        if not dataset.dynamic_masking and dynamic_masking is not None:
            raise ValueError(f"{dataset.path} holds static masks (built without --dynamic_masking); "
                             "do not pass a dynamic MaskingConfig")
        if dynamic_masking is not None and dynamic_masking.vocab_size != dataset.vocab_size:
            raise ValueError(f"MaskingConfig.vocab_size {dynamic_masking.vocab_size} != the dataset's "
                             f"{dataset.vocab_size}")
        self.dataset = dataset
        self.batch_size = batch_size
        self.rank = rank
        self.world_size = world_size
        self.seed = seed
        self.masking = dynamic_masking
        self.pad_to_multiple_of = max(1, pad_to_multiple_of)
        self.bucket_window = length_bucketing if length_bucketing > 1 else 1
        self.accumulation_steps = accumulation_steps
        self._window: tuple[int, np.ndarray, np.ndarray] | None = None  # (w, group order, sorted positions)
        self.n = len(dataset)
        # a window spans at most one epoch's worth of steps (module doc): copies of one instance from several
        # epochs would otherwise be sorted next to each other into the same batches
        self.bucket_window = max(1, min(self.bucket_window,
                                        self.n // (accumulation_steps * batch_size * world_size)))
        self.kind = dataset.target
        # How instances become batches is declared by the kind's instance builder.
        self.layout = str2instances[dataset.target].batch_layout
        self.chunk = min(instances_buffer_size, self.n)
        self.num_chunks = -(-self.n // self.chunk)
        self._orders: OrderedDict[int, tuple[np.ndarray, np.ndarray]] = OrderedDict()
        self._perms: OrderedDict[tuple[int, int], np.ndarray] = OrderedDict()
        # Everything stays memory-mapped (no per-instance array is copied to RAM: datasets may exceed it).
        self._length = dataset.length
        self._seg_a_len = dataset.seg_a_len
        self._label = dataset.label
        self._mask_offsets = dataset.mask_offsets
        self._units = dataset.arrays.get("unit")
        self._token_labels = dataset.arrays.get("token_label")  # ERNIE 2.0's cap/tdr: a label per position

    @property
    def instances_per_batch(self) -> int:
        """Instances per global micro-batch (all ranks): B * W."""
        return self.batch_size * self.world_size

    @property
    def batches_per_epoch(self) -> float:
        """Global micro-batches per pass over the dataset (fractional: batches straddle epochs)."""
        return self.n / self.instances_per_batch

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        return self.iter_from(0)

    def iter_from(self, micro_batch_index: int) -> Iterator[dict[str, torch.Tensor]]:
        """Endless iterator starting at global micro-batch ``micro_batch_index`` (O(1) seek)."""
        g = micro_batch_index
        while True:
            yield self.batch(g)
            g += 1

    def positions(self, micro_batch_index: int) -> np.ndarray:
        """Global positions this rank reads for micro-batch g: [B] int64."""
        if self.bucket_window > 1:
            step, j = divmod(micro_batch_index, self.accumulation_steps)
            w, k = divmod(step, self.bucket_window)
            order, by_length = self._bucket_window(w)
            first = (int(order[k]) * self.accumulation_steps + j) * self.instances_per_batch + self.rank * self.batch_size
            return by_length[first:first + self.batch_size]
        first = micro_batch_index * self.instances_per_batch + self.rank * self.batch_size
        return np.arange(first, first + self.batch_size, dtype=np.int64)

    def _bucket_window(self, w: int) -> tuple[np.ndarray, np.ndarray]:
        """(group visiting order, the window's positions sorted by instance length) of bucketing window w."""
        if self._window is None or self._window[0] != w:
            size = self.bucket_window * self.accumulation_steps * self.instances_per_batch
            positions = np.arange(w * size, (w + 1) * size, dtype=np.int64)
            lengths = np.asarray(self._length[self.indices(positions)])
            by_length = positions[np.argsort(lengths, kind="stable")]
            order = np.random.default_rng([self.seed, 2, w]).permutation(self.bucket_window)
            self._window = (w, order, by_length)
        return self._window[1], self._window[2]

    def indices(self, positions: np.ndarray) -> np.ndarray:
        """Instance index of each global position (the shuffle described in the module doc)."""
        positions = np.asarray(positions, dtype=np.int64)
        epochs, q = np.divmod(positions, self.n)
        out = np.empty_like(positions)
        for e in np.unique(epochs):
            sel = epochs == e
            order, starts = self._epoch_order(int(e))
            slot = np.searchsorted(starts, q[sel], side="right") - 1
            chunks = order[slot]
            offsets = q[sel] - starts[slot]
            res = np.empty(len(chunks), dtype=np.int64)
            for c in np.unique(chunks):
                in_c = chunks == c
                res[in_c] = int(c) * self.chunk + self._chunk_perm(int(e), int(c))[offsets[in_c]]
            out[sel] = res
        return out

    def _epoch_order(self, e: int) -> tuple[np.ndarray, np.ndarray]:
        """(chunk visiting order, start position of each visited chunk within the epoch)."""
        if e not in self._orders:
            order = np.random.default_rng([self.seed, e, 0]).permutation(self.num_chunks)
            sizes = np.minimum(self.chunk, self.n - order * self.chunk)
            starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
            self._orders[e] = (order, starts)
            if len(self._orders) > _CACHE_SIZE:
                self._orders.popitem(last=False)
        return self._orders[e]

    def _chunk_perm(self, e: int, c: int) -> np.ndarray:
        key = (e, c)
        if key not in self._perms:
            size = min(self.chunk, self.n - c * self.chunk)
            self._perms[key] = np.random.default_rng([self.seed, e, 1, c]).permutation(size)
            if len(self._perms) > _CACHE_SIZE:
                self._perms.popitem(last=False)
        else:
            self._perms.move_to_end(key)
        return self._perms[key]

    def batch(self, micro_batch_index: int) -> dict[str, torch.Tensor]:
        """Micro-batch g for this rank (see the class doc for the keys)."""
        return self.batch_at(self.positions(micro_batch_index))

    def evaluation_batches(self) -> Iterator[dict[str, torch.Tensor]]:
        """This rank's share of one pass over the dataset (validation): global positions 0 .. n-1, each on
        exactly one rank, in batches of at most ``batch_size``. Masks of a dynamic-masking dataset are drawn
        from those positions, so every validation sees the same masks."""
        mine = np.arange(self.rank, self.n, self.world_size, dtype=np.int64)
        for lo in range(0, len(mine), self.batch_size):
            yield self.batch_at(mine[lo:lo + self.batch_size])

    def batch_at(self, positions: np.ndarray) -> dict[str, torch.Tensor]:
        """The batch of the given global positions (see the class doc for the keys)."""
        idx = self.indices(positions)
        if self.layout == "windows":
            return self._lm_batch(idx)
        if self.layout == "labelled":
            return self._cls_batch(idx)
        ds = self.dataset
        b = len(idx)
        length = self._length[idx].astype(np.int64)
        seg_a = self._seg_a_len[idx].astype(np.int64)
        width = int(length.max())
        if self.pad_to_multiple_of > 1:
            width = min(-(-width // self.pad_to_multiple_of) * self.pad_to_multiple_of, ds.src.shape[1])
        # Read rows in file order (friendlier to the page cache), then put them back in batch order.
        order = np.argsort(idx, kind="stable")
        src = np.empty((b, width), dtype=np.int64)
        src[order] = ds.src[idx[order], :width]
        if self.masking is not None:
            units = None
            if self._units is not None:  # knowledge masking: the word/entity units stored at preprocessing
                units = np.empty((b, width), dtype=np.uint8)
                units[order] = self._units[idx[order], :width]
            masked = mask_batch(src, length, self.masking, HashUniforms(self.seed, positions), units=units)
            src = masked.src
            mlm_positions = masked.rows * width + masked.cols
            mlm_labels = masked.labels
        else:
            mlm_positions, mlm_labels = self._static_masks(idx, width)
        cols = np.arange(width)[None, :]
        seg = np.where(cols < seg_a[:, None], 1, np.where(cols < length[:, None], 2, 0))
        out: dict[str, torch.Tensor] = {
            "src": torch.from_numpy(src),
            "seg": torch.from_numpy(seg.astype(np.int64)),
            "mlm_positions": torch.from_numpy(np.ascontiguousarray(mlm_positions, dtype=np.int64)),
            "mlm_labels": torch.from_numpy(np.ascontiguousarray(mlm_labels, dtype=np.int64)),
        }
        if self._label is not None:  # sentence-pair / structure label, under the key its target reads
            out[str2instances[self.kind].label_key] = torch.from_numpy(self._label[idx].astype(np.int64))
        if self._token_labels is not None:  # [b, L], -1 where a position has no label
            labels = np.empty((b, width), dtype=np.int64)
            labels[order] = self._token_labels[idx[order], :width]
            out[str2instances[self.kind].token_label_key] = torch.from_numpy(labels)
        out["tokens_num"] = int(length.sum())
        return out

    def batch_of_instances(self, idx: np.ndarray) -> dict[str, torch.Tensor]:
        """The batch of the given instance indices, in order (evaluation: each instance exactly once).

        Only for datasets without masks (lm, bilm, cls): MLM masks depend on the global position.
        """
        idx = np.asarray(idx, dtype=np.int64)
        if self.layout == "windows":
            return self._lm_batch(idx)
        if self.layout == "labelled":
            return self._cls_batch(idx)
        raise ValueError(f"batch_of_instances needs a dataset without masks (lm, bilm, cls), not {self.kind}")

    def _rows(self, idx: np.ndarray, width: int) -> np.ndarray:
        """[len(idx) x width] int64 token rows, read in file order (friendlier to the page cache)."""
        order = np.argsort(idx, kind="stable")
        rows = np.empty((len(idx), width), dtype=np.int64)
        rows[order] = self.dataset.src[idx[order], :width]
        return rows

    def _width(self, longest: int, cap: int) -> int:
        if self.pad_to_multiple_of > 1:
            return min(-(-longest // self.pad_to_multiple_of) * self.pad_to_multiple_of, cap)
        return longest

    def _lm_batch(self, idx: np.ndarray) -> dict[str, torch.Tensor]:
        """Inputs and next/previous-token labels from lm/bilm windows (see the class doc)."""
        inputs = self._length[idx].astype(np.int64) - 1  # the window's last token is only a label
        width = self._width(int(inputs.max()), self.dataset.src.shape[1] - 1)
        window = self._rows(idx, width + 1)
        real = np.arange(width)[None, :] < inputs[:, None]
        rows, cols = np.nonzero(real)  # row-major, like the MLM positions
        back = cols >= 1

        def tensor(a: np.ndarray) -> torch.Tensor:
            return torch.from_numpy(np.ascontiguousarray(a, dtype=np.int64))

        return {
            "src": tensor(window[:, :width]),
            "seg": tensor(real),
            "lm_positions": tensor(rows * width + cols),
            "lm_labels": tensor(window[rows, cols + 1]),
            "lm_backward_positions": tensor(rows[back] * width + cols[back]),
            "lm_backward_labels": tensor(window[rows[back], cols[back] - 1]),
            "tokens_num": int(inputs.sum()),
        }

    def _cls_batch(self, idx: np.ndarray) -> dict[str, torch.Tensor]:
        """Sentences and their labels from a cls dataset."""
        length = self._length[idx].astype(np.int64)
        width = self._width(int(length.max()), self.dataset.src.shape[1])
        seg = (np.arange(width)[None, :] < length[:, None]).astype(np.int64)
        return {"src": torch.from_numpy(self._rows(idx, width)), "seg": torch.from_numpy(seg),
                "cls_labels": torch.from_numpy(self._label[idx].astype(np.int64)), "tokens_num": int(length.sum())}

    def _static_masks(self, idx: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
        """Stored masks of the batch's instances as (flat positions, labels), row-major."""
        starts = np.asarray(self._mask_offsets[idx], dtype=np.int64)
        counts = np.asarray(self._mask_offsets[idx + 1], dtype=np.int64) - starts
        total = int(counts.sum())
        rows = np.repeat(np.arange(len(idx)), counts)
        within = np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)
        gather = np.repeat(starts, counts) + within
        pos = np.asarray(self.dataset.mask_pos[gather], dtype=np.int64)
        labels = np.asarray(self.dataset.mask_label[gather], dtype=np.int64)
        return rows * width + pos, labels


class MixedBatches:
    """Multi-task pre-training (ERNIE 2.0's continual multi-task learning): every global micro-batch comes
    from one of several datasets, drawn with probability proportional to its weight.

    The draw for micro-batch g is a pure hash of (seed, g), the same on every rank, so all ranks train the
    same objective in a step; dataset d's k-th draw is its own micro-batch k (its own shuffle and epochs).
    ``iter_from(g)`` counts the earlier draws of each dataset (vectorised: one pass over g numbers), so a
    resumed run continues exactly.
    """

    def __init__(self, sources: list[PretrainBatches], weights: list[float], seed: int = 7,
                 stages: list[int] | None = None, micro_batches_per_step: int = 1, task_ids: bool = False) -> None:
        if len(sources) != len(weights) or not sources:
            raise ValueError(f"{len(sources)} datasets but {len(weights)} weights")
        if any(w <= 0 for w in weights):
            raise ValueError(f"dataset weights must be positive, got {weights}")
        stages = list(stages) if stages is not None else [0] * len(sources)
        if len(stages) != len(sources) or min(stages) != 0 or any(s < 0 for s in stages):
            raise ValueError(f"stages: one start step per dataset, >= 0, one of them 0; got {stages}")
        self.sources = sources
        self.seed = seed
        # ERNIE 2.0's continual schedule: dataset d is drawn from optimiser step stages[d] on (by weight among
        # the datasets started); steps are counted in micro-batches_per_step micro-batches.
        self.stages = np.asarray(stages, dtype=np.int64)
        self.micro_batches_per_step = micro_batches_per_step
        self.weights = np.asarray(weights, dtype=np.float64)
        self.task_ids = task_ids  # add "task_ids" (the dataset's index) to every batch (--task_embedding)

    def choices(self, first: int, count: int) -> np.ndarray:
        """Dataset index of global micro-batches first .. first + count - 1."""
        g = np.arange(first, first + count)
        u = HashUniforms(self.seed * 7919 + 17, g).uniform(0, 1)[:, 0]
        step = g // self.micro_batches_per_step
        weights = self.weights[None, :] * (self.stages[None, :] <= step[:, None])  # [count x datasets]
        cdf = np.cumsum(weights, axis=1)
        cdf /= cdf[:, -1:]
        return (u[:, None] >= cdf).sum(axis=1).clip(max=len(self.sources) - 1)

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        return self.iter_from(0)

    def iter_from(self, micro_batch_index: int) -> Iterator[dict[str, torch.Tensor]]:
        done = np.bincount(self.choices(0, micro_batch_index), minlength=len(self.sources)) \
            if micro_batch_index else np.zeros(len(self.sources), dtype=np.int64)
        g = micro_batch_index
        while True:
            d = int(self.choices(g, 1)[0])
            batch = self.sources[d].batch(int(done[d]))
            if self.task_ids:
                batch["task_ids"] = torch.full((batch["src"].shape[0],), d, dtype=torch.long)
            yield batch
            done[d] += 1
            g += 1
