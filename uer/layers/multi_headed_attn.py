"""Multi-head self-attention with UER-py's parameter names."""
from __future__ import annotations

import contextlib
import math
from typing import Iterator

import torch
import torch.nn.functional as F
from torch import nn

from uer.layers.dropout import dropout


class KVCache:
    """Keys and values of the positions seen so far by one attention application (incremental decoding).

    Generation feeds only the new positions through the encoder; each attention call appends their keys
    and values here and attends over everything stored, so a new token costs one step, not a re-run.
    """

    def __init__(self) -> None:
        self.key: torch.Tensor | None = None  # [batch_size x heads_num x cached_length x head_size]
        self.value: torch.Tensor | None = None

    def __len__(self) -> int:
        return 0 if self.key is None else self.key.shape[2]

    def extend(self, key: torch.Tensor, value: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Append the new positions' keys/values; returns all keys/values stored."""
        if self.key is not None:
            key = torch.cat([self.key, key], dim=2)
            value = torch.cat([self.value, value], dim=2)
        self.key, self.value = key, value
        return key, value


ATTENTION_PATHS = ("auto", "fused", "reference")
_forced_path = "auto"


@contextlib.contextmanager
def attention_path(path: str) -> Iterator[None]:
    """Within the block every attention takes ``path``: "fused" (SDPA), "reference" (the explicit
    matmul-softmax-matmul) or "auto" (:func:`attention`'s choice). For tests and benchmarks."""
    global _forced_path
    if path not in ATTENTION_PATHS:
        raise ValueError(f"attention path {path!r}: expected one of {ATTENTION_PATHS}")
    before, _forced_path = _forced_path, path
    try:
        yield
    finally:
        _forced_path = before


def attention(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, mask: torch.Tensor | None,
              dropout_p: float, is_causal: bool = False) -> torch.Tensor:
    """softmax(q k^T / sqrt(d) + mask) v, with dropout on the weights: [batch x heads x queries x head_size].

    Two paths computing the same function (equal to 1e-5 in float32, tested for every mask and encoder):
    ``F.scaled_dot_product_attention`` (flash / memory-efficient kernels on GPU) and the explicit three ops.
    The choice, measured on this project's 2-core AVX-512 CPU with torch 2.13 (benchmarks/RESULTS.md, issue 21):
    CUDA always SDPA; CPU float32 without dropout SDPA (1.1-1.4x faster than the explicit ops); CPU float32 with
    dropout the explicit ops (SDPA's CPU dropout draws one bernoulli per weight, the explicit path uses the
    cheaper :func:`uer.layers.dropout.dropout`: a BERT-mini training step ~3% faster); CPU bfloat16 the explicit
    ops (SDPA's CPU kernels are 1.4-1.8x slower there, training and inference alike). ``mask`` is additive (see
    :class:`MultiHeadedAttention`); ``is_causal`` only with ``mask`` None, keys aligned to the queries' end (a
    cache holds earlier keys).
    """
    fused = query.is_cuda or (query.dtype == torch.float32 and dropout_p == 0.0)
    if _forced_path != "auto":
        fused = _forced_path == "fused"
    keys_length, queries_length = key.shape[2], query.shape[2]
    if fused and not (is_causal and keys_length != queries_length):  # SDPA's causal mask is top-left aligned
        if mask is not None and mask.dtype != query.dtype:
            mask = mask.to(query.dtype)
        return F.scaled_dot_product_attention(query, key, value, attn_mask=mask, dropout_p=dropout_p,
                                              is_causal=is_causal)
    # scaling the queries touches L x head_size numbers, scaling the scores L x L (at 512 positions: 8x more)
    scores = torch.matmul(query * (1.0 / math.sqrt(query.shape[-1])), key.transpose(-1, -2))
    # bfloat16 scores stay bfloat16: the softmax kernel computes in float32 and rounds only its output (bit-equal
    # to a float32 softmax cast back, tested), and no float32 copy of the [B x H x L x L] scores and weights is
    # made and kept for the backward (a bf16 BERT-mini training step ~6% faster in CPU time). The mask (finite:
    # -10000) is cast to the scores' type. float16 still goes through float32 (its range is narrow).
    low_precision = scores.dtype == torch.bfloat16
    if mask is not None:
        scores = scores + (mask.to(scores.dtype) if low_precision else mask)
    elif is_causal:
        visible = torch.ones(queries_length, keys_length, dtype=torch.bool, device=query.device)
        scores = scores.masked_fill(~visible.tril(keys_length - queries_length), float("-inf"))
    probs = F.softmax(scores, dim=-1) if low_precision else F.softmax(scores, dim=-1, dtype=torch.float32)
    return torch.matmul(dropout(probs.to(value.dtype), dropout_p), value)


FIRST_POSITION = slice(0, 1)  # queries for a layer whose output is read at [CLS] only


def query_rows(hidden: torch.Tensor, queries: slice | torch.Tensor | None) -> torch.Tensor:
    """The rows of ``hidden`` [B x L x H] that query: all for None, a slice of positions (``FIRST_POSITION``:
    [B x 1 x H], a view), or the positions of an index [B x Q] ([B x Q x H])."""
    if queries is None:
        return hidden
    if isinstance(queries, slice):
        return hidden[:, queries]
    return hidden.gather(1, queries[..., None].expand(-1, -1, hidden.shape[-1]))


class FoldedProjection(nn.Module):
    """Stands where a key or value projection was once stack_projections() folded it into the stacked layers (an
    inference copy keeps no second copy of its weights); calling it means the stacked path was bypassed."""

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        raise RuntimeError("this projection was folded into stacked_qkv / stacked_kv by stack_projections()")


class MultiHeadedAttention(nn.Module):
    """Scaled dot-product attention over ``heads_num`` heads.

    ``linear_layers`` holds the query, key and value projections in that order and ``final_linear`` the
    output projection, as UER-py names them (checkpoint compatibility). The score computation is
    :func:`attention` (``F.scaled_dot_product_attention`` where it is the faster path).
    """

    def __init__(self, hidden_size: int, heads_num: int, head_size: int, dropout: float,
                 has_bias: bool = True) -> None:
        super().__init__()
        self.heads_num = heads_num
        self.head_size = head_size
        inner = heads_num * head_size
        self.linear_layers = nn.ModuleList([nn.Linear(hidden_size, inner, bias=has_bias) for _ in range(3)])
        self.dropout = dropout
        self.final_linear = nn.Linear(inner, hidden_size, bias=has_bias)
        # Frozen copies of the projections stacked into one layer each (q, k, v and k, v), made by
        # stack_projections() for int8 inference; None otherwise (training uses the separate parameters).
        self.stacked_qkv: nn.Module | None = None
        self.stacked_kv: nn.Module | None = None

    def stack_projections(self) -> None:
        """Stack the query, key and value projections into one linear layer (and key + value into another, for
        a subset of ``queries``), used from then on in place of the three. For inference on a copy that is about to be
        quantized (uer.utils.quantize): dynamic int8 quantizes each layer's input once per call, so one stacked
        layer does a third of the quantizing work and makes one larger product instead of three small ones
        (BERT-tiny: the quantized layers' time 11% lower). The key and value projections are then replaced by
        :class:`FoldedProjection` (only the stacked layers use them: no second copy, ~14 MB less for an int8
        BERT-base); the query projection stays for the subset-of-queries path. Inference only: the model can no
        longer be trained or saved under UER-py's key names."""
        def stack(linears: list[nn.Linear]) -> nn.Linear:
            first = linears[0]
            out = nn.Linear(first.in_features, sum(linear.out_features for linear in linears),
                            bias=first.bias is not None)
            with torch.no_grad():
                out.weight.copy_(torch.cat([linear.weight for linear in linears]))
                if first.bias is not None:
                    out.bias.copy_(torch.cat([linear.bias for linear in linears]))
            return out.requires_grad_(False).to(first.weight.device)

        if self.stacked_qkv is not None:
            return  # stacked already
        if not all(isinstance(linear, nn.Linear) for linear in self.linear_layers):
            raise ValueError("stack_projections needs float nn.Linear projections (stack before quantizing)")
        self.stacked_qkv = stack(list(self.linear_layers))
        self.stacked_kv = stack(list(self.linear_layers[1:]))
        self.linear_layers[1] = FoldedProjection()
        self.linear_layers[2] = FoldedProjection()

    def project_qkv(self, hidden: torch.Tensor, queries: slice | torch.Tensor | None = None
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Queries, keys and values, each [batch_size x heads_num x positions x head_size] (queries: only the
        positions ``queries`` names, see :func:`query_rows`).

        With many positions, one matrix product with the weight matrices stacked (they stay separate
        parameters, as checkpoints name them): ~20% faster on CPU than three products, one kernel launch on
        GPU. With few (incremental decoding feeds one position at a time), copying the stacked weights would
        cost about what the products do, so each projection runs on its own.
        """
        batch_size, seq_length, _ = hidden.shape

        def heads(x: torch.Tensor) -> torch.Tensor:  # [B x L x heads*size] -> [B x heads x L x size]
            return x.view(batch_size, x.shape[1], self.heads_num, self.head_size).transpose(1, 2)

        some_queries = queries is not None
        projections = self.linear_layers[1:] if some_queries else self.linear_layers
        stacked = self.stacked_kv if some_queries else self.stacked_qkv
        # Exporting (ONNX with dynamic axes) takes the stacked product: a branch on the shape cannot be exported.
        # int8 (uer.utils.quantize) replaces the projections by quantized ones, whose weights cannot be stacked
        # on the fly: stack_projections() stacked them before quantizing.
        stackable = isinstance(self.linear_layers[0], nn.Linear)
        if stacked is not None:
            projected = self._split(stacked(hidden), len(projections))
        elif not stackable or (batch_size * seq_length < 64 and not torch.compiler.is_exporting()):
            projected = [heads(linear(hidden)) for linear in projections]
        else:
            weight = torch.cat([linear.weight for linear in projections])
            bias = None if projections[0].bias is None else torch.cat([linear.bias for linear in projections])
            projected = self._split(F.linear(hidden, weight, bias), len(projections))
        if some_queries:
            projected.insert(0, heads(self.linear_layers[0](query_rows(hidden, queries))))
        query, key, value = projected
        return query, key, value

    def _split(self, stacked: torch.Tensor, parts: int) -> list[torch.Tensor]:
        """[B x L x parts*heads*size] -> ``parts`` tensors of [B x heads x L x size] (views)."""
        batch_size, seq_length, _ = stacked.shape
        return list(stacked.view(batch_size, seq_length, parts, self.heads_num, self.head_size)
                    .permute(2, 0, 3, 1, 4).unbind(0))

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor | None, is_causal: bool = False,
                cache: KVCache | None = None, queries: slice | torch.Tensor | None = None) -> torch.Tensor:
        """
        Args:
            hidden: [batch_size x seq_length x hidden_size]
            mask: additive float mask (0 where attention is allowed, a large negative number where
                not), broadcastable to [batch_size x heads_num x seq_length x keys_length]; None
                attends everywhere.
            is_causal: apply a causal mask (only when ``mask`` is None).
            cache: keys/values of earlier positions; the new ones are appended to it (keys_length =
                cached + seq_length; the caller gives the matching mask).
            queries: only these positions query (all positions are still attended to; see :func:`query_rows`):
                ``FIRST_POSITION`` for a last layer whose output is read at the first position only, an index
                [batch_size x Q] for the positions an objective reads; None: all. Needs a mask whose query
                dimension broadcasts (padding only), no causal mask and no cache.
        Returns:
            [batch_size x seq_length x hidden_size], seq_length the number of query positions
        """
        if queries is not None and (is_causal or cache is not None or (mask is not None and mask.shape[-2] != 1)):
            raise ValueError("attention of some queries needs a padding-only mask, no causal mask and no cache")
        query, key, value = self.project_qkv(hidden, queries)
        batch_size, seq_length = hidden.shape[0], query.shape[2]
        if cache is not None:
            key, value = cache.extend(key, value)
        dropout_p = self.dropout if self.training else 0.0
        context = attention(query, key, value, mask, dropout_p, is_causal and mask is None)
        context = context.transpose(1, 2).reshape(batch_size, seq_length, self.heads_num * self.head_size)
        return self.final_linear(context)
