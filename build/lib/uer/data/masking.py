"""Masked-language-model masking (BERT token masking and SpanBERT span masking), vectorised over a batch.

One function, :func:`mask_batch`, serves both places that mask:

* preprocess.py (static masking): masks every instance of a docs buffer at once, drawing its random
  numbers from one ``numpy.random.Generator`` per worker (:class:`GeneratorUniforms`);
* the pre-training loader (dynamic masking): masks a micro-batch when it is built, with random numbers
  that are a pure hash of ``(seed, global position of the instance)`` (:class:`HashUniforms`), so the
  masks do not depend on the batch size, the number of ranks, or where a resumed run starts.

Rules (UER-py / Google BERT semantics):

* Maskable tokens are the non-special ones inside the instance: never [CLS], [SEP] or [PAD].
* ``budget = max(1, round(0.15 * maskable))`` tokens are masked per instance (none when nothing is maskable).
* Token masking: ``budget`` maskable positions chosen uniformly without replacement.
* Span masking: the maskable tokens (in order, skipping specials) are cut into consecutive tiles whose
  lengths are i.i.d. from the geometric distribution clipped at ``span_max_length``
  (``P(k) ∝ p (1-p)^(k-1)``, k = 1..max); tiles are visited in random order and taken whole while they fit
  the budget; the first one that does not fit is cut to fill the budget exactly (SpanBERT does the same
  with its last span), later ones are skipped. A span can run across the [SEP] between two segments.
* Knowledge masking (ERNIE 1.0; ``units`` given, from :mod:`uer.text.segment`): the maskable tokens are cut
  into units at the stored word/entity starts (and after every special token, so a unit never crosses
  [CLS] or [SEP]). Entity units are visited first, in random order, then word units in random order; a
  unit is taken whole when it fits the remaining budget and skipped otherwise (Google's whole-word
  masking rule), so no unit is ever cut. If no unit fits at all (every unit longer than the budget), the
  first unit in the visiting order is taken whole, so every instance has a prediction.
* 80/10/10: each chosen *unit* becomes [MASK] with p=0.8, random tokens with p=0.1, unchanged with p=0.1.
  The unit is the token for token masking, the whole span for span masking (as SpanBERT and UER-py
  decide per span) and the whole word or entity for knowledge masking; with "random", each token of a
  span gets its own random id.
* Random replacement ids are uniform over ``[1, vocab_size)`` minus the special ids
  ([PAD], [UNK], [CLS], [SEP], [MASK]).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any, Mapping, NamedTuple, Protocol

import numpy as np

MASK_PROB = 0.15

# Streams of random numbers used by mask_batch; each is an independent [n, L] draw.
_STREAM_SELECT = 0   # token masking: selection keys
_STREAM_SPAN_LEN = 1  # span masking: tile lengths
_STREAM_SPAN_KEY = 2  # span masking: tile visiting order
_STREAM_ACTION = 3   # 80/10/10 decision per unit
_STREAM_TOKEN = 4    # replacement token ids
_STREAM_UNIT_KEY = 5  # knowledge masking: unit visiting order
_ENTITY_START = 2    # unit codes of uer.text.segment: 0 continues, 1 starts a word, 2 starts an entity


@dataclass(frozen=True)
class MaskingConfig:
    """What masking needs to know: vocabulary size, special ids and the span options.

    Args:
        vocab_size: number of ids; random replacements are drawn from [1, vocab_size).
        pad_id, cls_id, sep_id, mask_id: special ids (never masked; [MASK] is the replacement).
        unk_id: excluded from random replacements when given.
        span_masking: SpanBERT-style span masking instead of token masking.
        span_geo_prob: p of the geometric span-length distribution.
        span_max_length: longest span (the distribution is clipped, not truncated-and-piled-up).
        mask_prob: fraction of the maskable tokens to predict.
    """

    vocab_size: int
    pad_id: int
    cls_id: int
    sep_id: int
    mask_id: int
    unk_id: int | None = None
    span_masking: bool = False
    span_geo_prob: float = 0.2
    span_max_length: int = 10
    mask_prob: float = MASK_PROB

    def __post_init__(self) -> None:
        if self.vocab_size < 2:
            raise ValueError(f"vocab_size must be >= 2, got {self.vocab_size}")
        if not 0.0 < self.mask_prob < 1.0:
            raise ValueError(f"mask_prob must be in (0, 1), got {self.mask_prob}")
        if self.span_masking:
            if not 0.0 < self.span_geo_prob <= 1.0:
                raise ValueError(f"span_geo_prob must be in (0, 1], got {self.span_geo_prob}")
            if self.span_max_length < 1:
                raise ValueError(f"span_max_length must be >= 1, got {self.span_max_length}")
        if len(self.replacement_ids) == 0:
            raise ValueError("the vocabulary has no non-special token to use as a random replacement")

    @classmethod
    def from_vocab(cls, vocab: Any, *, span_masking: bool = False, span_geo_prob: float = 0.2,
                   span_max_length: int = 10) -> "MaskingConfig":
        """From a ``uer.text.vocab.Vocab`` (``len(vocab)`` and ``pad_id/unk_id/cls_id/sep_id/mask_id``)."""
        return cls(vocab_size=len(vocab), pad_id=vocab.pad_id, cls_id=vocab.cls_id, sep_id=vocab.sep_id,
                   mask_id=vocab.mask_id, unk_id=getattr(vocab, "unk_id", None), span_masking=span_masking,
                   span_geo_prob=span_geo_prob, span_max_length=span_max_length)

    @classmethod
    def from_header(cls, header: Mapping[str, Any], *, span_masking: bool | None = None,
                    span_geo_prob: float | None = None, span_max_length: int | None = None) -> "MaskingConfig":
        """From a dataset header (``PretrainDataset.header``); span options default to the header's.

        For a dynamic-masking dataset the span options belong to pre-training (UER-py's docs: give
        --span_masking to pretrain.py), so pretrain.py passes them explicitly.
        """
        ids = header["special_ids"]
        span = header.get("span_masking") or {}
        return cls(vocab_size=int(header["vocab_size"]), pad_id=ids["pad"], cls_id=ids["cls"], sep_id=ids["sep"],
                   mask_id=ids["mask"], unk_id=ids.get("unk"),
                   span_masking=bool(span.get("enabled", False)) if span_masking is None else span_masking,
                   span_geo_prob=float(span.get("geo_prob", 0.2)) if span_geo_prob is None else span_geo_prob,
                   span_max_length=int(span.get("max_length", 10)) if span_max_length is None else span_max_length)

    @cached_property
    def replacement_ids(self) -> np.ndarray:
        """Ids a "random token" replacement may take: [1, vocab_size) minus the special ids."""
        ids = np.arange(1, self.vocab_size, dtype=np.int64)
        special = [i for i in (self.pad_id, self.cls_id, self.sep_id, self.mask_id, self.unk_id) if i is not None]
        return ids[~np.isin(ids, special)]

    @cached_property
    def span_cdf(self) -> np.ndarray:
        """Cumulative distribution of the clipped geometric span length (index k-1 = P(len <= k))."""
        return span_length_cdf(self.span_geo_prob, self.span_max_length)


class RandomSource(Protocol):
    """Independent random numbers for one batch, one row per instance (n rows)."""

    def uniform(self, stream: int, cols: int) -> np.ndarray:
        """float64 [n, cols] in [0, 1); ``stream`` names what the numbers are for."""
        ...

    def bits(self, stream: int, cols: int) -> np.ndarray:
        """uint64 [n, cols], uniform over all 64-bit values."""
        ...

    def uniform_at(self, stream: int, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """float64 [len(rows)] in [0, 1), one number per (row, col) coordinate."""
        ...


class GeneratorUniforms:
    """Random numbers from a numpy Generator (preprocessing: one Generator per worker, drawn in order)."""

    def __init__(self, rng: np.random.Generator, rows: int) -> None:
        self.rng = rng
        self.rows = rows

    def uniform(self, stream: int, cols: int) -> np.ndarray:
        return self.rng.random((self.rows, cols))

    def bits(self, stream: int, cols: int) -> np.ndarray:
        return self.rng.bit_generator.random_raw((self.rows, cols))

    def uniform_at(self, stream: int, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        return self.rng.random(len(rows))


_MASK64 = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15


def _mix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser on uint64 arrays (wrapping arithmetic): a good 64-bit avalanche hash."""
    x = x ^ (x >> np.uint64(30))
    x = x * np.uint64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> np.uint64(27))
    x = x * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


class HashUniforms:
    """Counter-based uniforms: value = hash(seed, key of the row, stream, column).

    Dynamic masking uses the instance's global position as the key, so an instance's mask depends on
    nothing but (seed, position): not on the batch it lands in, the rank, or earlier batches.
    """

    def __init__(self, seed: int, keys: np.ndarray) -> None:
        seed_word = np.array([(int(seed) * _GOLDEN + 0x632BE59BD9B4E019) & _MASK64], dtype=np.uint64)
        keys64 = np.asarray(keys, dtype=np.int64).astype(np.uint64)
        # Two rounds so that neighbouring keys and neighbouring seeds give unrelated rows.
        self.row_state = _mix64(_mix64(seed_word) ^ (keys64 * np.uint64(_GOLDEN)))

    def _hash(self, row_state: np.ndarray, stream: int, cols: np.ndarray) -> np.ndarray:
        col_word = ((cols.astype(np.uint64) + np.uint64(1)) * np.uint64(0xD1B54A32D192ED03)
                    + np.uint64(((stream + 1) * 0xAEF17502108EF2D9) & _MASK64))
        return _mix64(row_state ^ _mix64(col_word))

    def uniform(self, stream: int, cols: int) -> np.ndarray:
        x = self._hash(self.row_state[:, None], stream, np.arange(cols)[None, :])
        return (x >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))

    def bits(self, stream: int, cols: int) -> np.ndarray:
        return self._hash(self.row_state[:, None], stream, np.arange(cols)[None, :])

    def uniform_at(self, stream: int, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        x = self._hash(self.row_state[rows], stream, np.asarray(cols))
        return (x >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))


def span_length_cdf(geo_prob: float, max_length: int) -> np.ndarray:
    """CDF of the geometric(p) span length clipped (renormalised) to 1..max_length."""
    k = np.arange(1, max_length + 1, dtype=np.float64)
    pmf = geo_prob * (1.0 - geo_prob) ** (k - 1)
    cdf = np.cumsum(pmf / pmf.sum())
    cdf[-1] = 1.0
    return cdf


def sample_span_lengths(u: np.ndarray, cdf: np.ndarray) -> np.ndarray:
    """Inverse-CDF sampling: uniforms ``u`` (any shape) -> span lengths in 1..len(cdf) (int64)."""
    return np.searchsorted(cdf, u, side="right").astype(np.int64) + 1


class MaskedBatch(NamedTuple):
    """Result of :func:`mask_batch`; positions are sorted row-major (row, then column)."""

    src: np.ndarray    # [n, L] int64, masks applied
    rows: np.ndarray   # [M] int64 instance index of each masked token
    cols: np.ndarray   # [M] int64 position inside the instance
    labels: np.ndarray  # [M] int64 original token id


def maskable_positions(src: np.ndarray, lengths: np.ndarray, cfg: MaskingConfig) -> np.ndarray:
    """bool [n, L]: inside the instance and not [CLS], [SEP] or [PAD]."""
    inside = np.arange(src.shape[1])[None, :] < np.asarray(lengths)[:, None]
    return inside & (src != cfg.cls_id) & (src != cfg.sep_id) & (src != cfg.pad_id)


_INDEX_BITS = 16  # low key bits hold the column: fixed, so keys do not depend on the batch's padded width
_LOW = np.uint64((1 << _INDEX_BITS) - 1)
_HIGH = ~_LOW  # OR-ing it into a key sorts it after every random key, keeping its column bits


def _unique_keys(rand: RandomSource, stream: int, width: int) -> np.ndarray:
    """Random uint64 sort keys, distinct within a row: the low 16 bits hold the column index.

    Sorting these gives a random permutation per row (argsort via a plain, much faster, sort). A column's
    key depends only on (row, column), not on ``width``, so dynamic masks do not change with padding.
    """
    if width > (1 << _INDEX_BITS):
        raise ValueError(f"instances longer than {1 << _INDEX_BITS} tokens are not supported (got {width})")
    return (rand.bits(stream, width) & ~_LOW) | np.arange(width, dtype=np.uint64)[None, :]


def mask_batch(src: np.ndarray, lengths: np.ndarray, cfg: MaskingConfig, rand: RandomSource,
               units: np.ndarray | None = None) -> MaskedBatch:
    """Choose and apply MLM masks for a batch of instances.

    Args:
        src: [n, L] token ids (padding beyond ``lengths``); not modified.
        lengths: [n] number of real tokens per instance.
        cfg: vocabulary facts and span options.
        rand: random numbers, one row per instance.
        units: [n, L] unit codes for knowledge masking (whole words / entities), or None.

    Returns:
        MaskedBatch with the masked copy of ``src`` as int64 and the masked (row, col, original id) triples.
    """
    src = np.asarray(src)
    n, width = src.shape
    out = src.astype(np.int64, copy=True)
    if n == 0 or width == 0:
        empty = np.zeros(0, dtype=np.int64)
        return MaskedBatch(out, empty, empty, empty)
    maskable = maskable_positions(out, lengths, cfg)
    n_maskable = np.count_nonzero(maskable, axis=1)
    budget = np.where(n_maskable > 0, np.maximum(1, np.floor(cfg.mask_prob * n_maskable + 0.5)), 0).astype(np.int64)

    if units is not None:
        selected, unit = _select_units(maskable, np.asarray(units)[:, :width], budget, rand)
        flat = np.flatnonzero(selected)
        rows, cols = flat // width, flat % width
        unit_cols = unit.reshape(-1)[flat]
    elif not cfg.span_masking:
        # Non-maskable positions get the largest key; the budget-th smallest key is the threshold.
        keys = _unique_keys(rand, _STREAM_SELECT, width)
        keys[~maskable] |= _HIGH
        kth = np.sort(keys, axis=1)[np.arange(n), np.maximum(budget - 1, 0)]
        selected = maskable & (keys <= kth[:, None]) & (budget > 0)[:, None]
        flat = np.flatnonzero(selected)
        rows, cols = flat // width, flat % width
        unit_cols = cols  # each token is its own unit
    else:
        selected, tile = _select_spans(maskable, n_maskable, budget, cfg, rand)
        flat = np.flatnonzero(selected)
        rows, cols = flat // width, flat % width
        unit_cols = tile.reshape(-1)[flat]

    labels = out.reshape(-1)[flat]
    action = rand.uniform_at(_STREAM_ACTION, rows, unit_cols)
    token_u = rand.uniform_at(_STREAM_TOKEN, rows, cols)
    replacement = cfg.replacement_ids
    new_ids = np.where(action < 0.8, cfg.mask_id,
                       np.where(action < 0.9, replacement[(token_u * len(replacement)).astype(np.int64)], labels))
    out.reshape(-1)[flat] = new_ids
    return MaskedBatch(out, rows, cols, labels)


def _select_spans(maskable: np.ndarray, n_maskable: np.ndarray, budget: np.ndarray, cfg: MaskingConfig,
                  rand: RandomSource) -> tuple[np.ndarray, np.ndarray]:
    """Span selection (see module doc). Returns (selected bool [n, L], tile id per position [n, L])."""
    n, width = maskable.shape
    # Tiles live in "compressed" coordinates: c = index among the row's maskable tokens; tile t covers
    # c in [starts[t], starts[t] + lens[t]).
    lens = sample_span_lengths(rand.uniform(_STREAM_SPAN_LEN, width), cfg.span_cdf).astype(np.int32)
    starts = np.cumsum(lens, axis=1, dtype=np.int32) - lens
    n_m = n_maskable.astype(np.int32)[:, None]
    valid = starts < n_m
    cost = np.where(valid, np.minimum(lens, n_m - starts), 0).astype(np.int32)
    # Visit tiles in random order; take whole tiles while they fit, cut the first that overflows.
    keys = _unique_keys(rand, _STREAM_SPAN_KEY, width)
    keys[~valid] |= _HIGH  # invalid tiles cost 0 anyway; this just puts them last
    order = (np.sort(keys, axis=1) & _LOW).astype(np.intp)
    sorted_cost = np.take_along_axis(cost, order, axis=1)
    before = np.cumsum(sorted_cost, axis=1, dtype=np.int32) - sorted_cost
    take_sorted = np.clip(budget.astype(np.int32)[:, None] - before, 0, sorted_cost)
    take = np.empty_like(take_sorted)
    np.put_along_axis(take, order, take_sorted, axis=1)
    # Map each maskable position to its tile (count of tile starts <= c, minus one) and its offset in it.
    c = np.cumsum(maskable, axis=1, dtype=np.int32) - 1
    c_safe = np.clip(c, 0, width - 1)
    starts_marker = np.zeros((n, width), dtype=np.int32)
    flat_starts = (np.arange(n, dtype=np.int64)[:, None] * width + starts)[valid]
    starts_marker.reshape(-1)[flat_starts] = 1
    tile_of_c = np.cumsum(starts_marker, axis=1, dtype=np.int32) - 1
    tile = np.take_along_axis(tile_of_c, c_safe, axis=1).clip(0)
    offset = c_safe - np.take_along_axis(starts, tile, axis=1)
    selected = maskable & (offset < np.take_along_axis(take, tile, axis=1))
    return selected, tile


def _select_units(maskable: np.ndarray, units: np.ndarray, budget: np.ndarray,
                  rand: RandomSource) -> tuple[np.ndarray, np.ndarray]:
    """Knowledge-masking selection (see module doc). Returns (selected bool [n, L], unit index per position)."""
    n, width = maskable.shape
    after_special = np.ones_like(maskable)
    after_special[:, 1:] = ~maskable[:, :-1]
    start = maskable & ((units > 0) | after_special)
    unit = np.cumsum(start, axis=1) - 1  # index of each position's unit within its row
    unit = np.where(maskable, unit, 0).clip(0)
    rows = np.nonzero(maskable)[0]
    lens = np.bincount(rows * width + unit[maskable], minlength=n * width).reshape(n, width)
    entity = np.zeros((n, width), dtype=bool)
    er, ec = np.nonzero(start & (units == _ENTITY_START))
    entity[er, unit[er, ec]] = True
    # Sort keys: entities before words (top bit clear), random order within each group, empty slots last.
    keys = _unique_keys(rand, _STREAM_UNIT_KEY, width)
    random_part = ((keys & ~_LOW) >> np.uint64(1)) & ~_LOW
    keys = random_part | (keys & _LOW) | np.where(entity, np.uint64(0), np.uint64(1 << 63))
    keys[lens == 0] |= _HIGH
    order = (np.sort(keys, axis=1) & _LOW).astype(np.intp)
    sorted_len = np.take_along_axis(lens, order, axis=1)
    take_sorted = np.zeros((n, width), dtype=bool)
    total = np.zeros(n, dtype=np.int64)
    for k in range(int((lens > 0).sum(axis=1).max(initial=0))):
        fits = (sorted_len[:, k] > 0) & (total + sorted_len[:, k] <= budget)
        take_sorted[:, k] = fits
        total += np.where(fits, sorted_len[:, k], 0)
        if np.all(total >= budget):
            break
    nothing = (total == 0) & (budget > 0) & (sorted_len[:, 0] > 0)
    take_sorted[nothing, 0] = True
    take = np.zeros_like(take_sorted)
    np.put_along_axis(take, order, take_sorted, axis=1)
    selected = maskable & np.take_along_axis(take, unit, axis=1)
    return selected, unit
