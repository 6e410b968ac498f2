"""The transformer encoder (BERT's post-LayerNorm or GPT-2's pre-LayerNorm), with the masks BERT and GPT use."""
from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from uer.encoders.base import Encoder, attention_config_problems, register
from uer.layers.activations import str2act
from uer.layers.layer_norm import build_layer_norm
from uer.layers.multi_headed_attn import FIRST_POSITION, KVCache, MultiHeadedAttention
from uer.layers.position_ffn import PositionwiseFeedForward
from uer.layers.transformer import PreNormTransformerLayer, TransformerLayer
from uer.names import MASKS

if TYPE_CHECKING:
    from uer.model_config import ModelConfig


@register("transformer")
class TransformerEncoder(Encoder):
    """A stack of :class:`TransformerLayer`.

    Keys follow UER-py: ``encoder.transformer.{i}.*`` per layer, or ``encoder.transformer.*`` (one
    layer applied ``layers_num`` times) with parameter sharing; ``encoder.linear`` projects
    emb_size -> hidden_size under factorized embedding parameterization (ALBERT); ``encoder.layer_norm``
    is the final layer norm of pre-LayerNorm models (GPT-2).
    """

    def __init__(self, layers: list[TransformerLayer] | TransformerLayer, layers_num: int, mask: str,
                 linear: nn.Module | None = None, final_layer_norm: nn.Module | None = None) -> None:
        super().__init__()
        if mask not in MASKS:
            raise ValueError(f"unknown mask {mask!r}; expected one of {MASKS}")
        self.mask = mask
        self.causal = mask == "causal"
        self.layers_num = layers_num
        self.parameter_sharing = isinstance(layers, TransformerLayer)
        self.transformer = layers if self.parameter_sharing else nn.ModuleList(layers)
        if linear is not None:
            self.linear = linear
        if final_layer_norm is not None:
            self.layer_norm = final_layer_norm

    @classmethod
    def from_config(cls, cfg: "ModelConfig") -> "TransformerEncoder":
        head_size = cfg.hidden_size // cfg.heads_num
        layer_cls = PreNormTransformerLayer if cfg.layernorm_positioning == "pre" else TransformerLayer

        def make_layer() -> TransformerLayer:
            return layer_cls(
                self_attn=MultiHeadedAttention(cfg.hidden_size, cfg.heads_num, head_size, cfg.dropout, cfg.has_bias),
                feed_forward=PositionwiseFeedForward(cfg.hidden_size, cfg.feedforward_size, str2act[cfg.hidden_act],
                                                     cfg.has_bias),
                layer_norm_1=build_layer_norm(cfg.hidden_size, cfg.layernorm, cfg.layernorm_eps),
                layer_norm_2=build_layer_norm(cfg.hidden_size, cfg.layernorm, cfg.layernorm_eps),
                dropout=cfg.dropout,
            )

        layers = make_layer() if cfg.parameter_sharing else [make_layer() for _ in range(cfg.layers_num)]
        linear = nn.Linear(cfg.emb_size, cfg.hidden_size) if cfg.factorized_embedding_parameterization else None
        final = (build_layer_norm(cfg.hidden_size, cfg.layernorm, cfg.layernorm_eps)
                 if cfg.layernorm_positioning == "pre" else None)
        return cls(layers, cfg.layers_num, cfg.mask, linear, final)

    @classmethod
    def config_problems(cls, cfg: "ModelConfig") -> list[str]:
        return attention_config_problems(cfg)

    def attention_mask(self, seg: torch.Tensor, dtype: torch.dtype) -> torch.Tensor | None:
        """Additive [batch_size x 1 x L x L] mask (0 = may attend, -10000 = may not) from padding (seg == 0)
        and the mask type; built once per forward and shared by all layers.

        -10000 rather than -inf (UER-py's value): it stays finite in float16 and never turns a row of
        scores into NaN. Returns None when nothing needs masking (fastest kernels).
        """
        key_visible = seg > 0  # [B x L]
        if self.mask == "fully_visible":
            # The shortcut reads the data; an exported graph (ONNX) keeps the mask, which adds zeros then.
            if not torch.compiler.is_exporting() and bool(key_visible.all()):
                return None
            allowed = key_visible[:, None, None, :]
        else:
            seq_length = seg.shape[1]
            causal = torch.ones(seq_length, seq_length, dtype=torch.bool, device=seg.device).tril()
            allowed = causal[None, None, :, :] & key_visible[:, None, None, :]
        return (~allowed).to(dtype) * -10000.0

    def new_cache(self) -> list[KVCache]:
        """One empty key/value cache per layer application (for :meth:`forward` with ``cache``)."""
        if self.mask != "causal":
            raise ValueError("incremental decoding needs a causal mask (--encoder gpt or --mask causal)")
        return [KVCache() for _ in range(self.layers_num)]

    @property
    def supports_first_only(self) -> bool:
        """Whether ``forward(..., first_only=True)`` is available (fully visible attention)."""
        return self.mask == "fully_visible"

    def forward(self, emb: torch.Tensor, seg: torch.Tensor, cache: list[KVCache] | None = None,
                first_only: bool = False, positions: torch.Tensor | None = None) -> torch.Tensor:
        """
        Args:
            emb: [batch_size x seq_length x emb_size]
            seg: [batch_size x seq_length] (0 marks padding)
            cache: from :meth:`new_cache`; then ``emb`` holds only the positions after the cached ones
                (no padding) and their hidden states are returned.
            first_only: return the first position's hidden state only, [batch_size x 1 x hidden_size]
                (a classifier reading [CLS]): the last layer then computes one position instead of all,
                which is exact and saves most of that layer (~40% of a 2-layer model's work, ~8% of 12).
            positions: sorted distinct flat indices into [batch_size*seq_length]: the last layer computes
                these positions only (pre-training reads the masked positions and [CLS]; exact in the same
                way) and the others are returned as zeros.
        Returns:
            [batch_size x seq_length x hidden_size]
        """
        if (first_only or positions is not None) and (cache is not None or not self.supports_first_only):
            raise ValueError("first_only and positions need fully visible attention and no cache")
        hidden = self.linear(emb) if hasattr(self, "linear") else emb
        if cache is None:
            mask = self.attention_mask(seg, hidden.dtype)
        else:
            # New queries sit at positions past..past+n-1 and may see every key up to their own position.
            past, n = len(cache[0]), emb.shape[1]
            later = torch.arange(past + n, device=emb.device)[None, :] > past + torch.arange(n, device=emb.device)[:, None]
            mask = None if n == 1 else later.to(hidden.dtype) * -10000.0
        rows = None if positions is None else PositionRows(positions, *seg.shape)
        last_queries = FIRST_POSITION if first_only else (rows.index if rows is not None else None)
        for i in range(self.layers_num):
            layer = self.transformer if self.parameter_sharing else self.transformer[i]
            queries = last_queries if i == self.layers_num - 1 else None
            hidden = layer(hidden, mask, False, None if cache is None else cache[i], queries)
        if hasattr(self, "layer_norm"):  # pre-LayerNorm (GPT-2): the residual stream is normalised once at the end
            hidden = self.layer_norm(hidden)
        return hidden if rows is None else rows.scatter(hidden)


class PositionRows:
    """Flat positions of a [B x L] batch as a [B x Q] index (Q: the most positions of one row; shorter rows
    fill up with one of their own positions), and the way back: :meth:`scatter` puts the [B x Q x H] rows
    computed for the index at their positions of a [B x L x H] tensor of zeros (each position once, so
    gradients flow to each computed row once)."""

    def __init__(self, positions: torch.Tensor, batch_size: int, seq_length: int) -> None:
        row = positions // seq_length
        counts = torch.bincount(row, minlength=batch_size)
        starts = torch.cumsum(counts, 0) - counts
        self.positions, self.batch_size, self.seq_length = positions, batch_size, seq_length
        self.row, self.slot = row, torch.arange(len(positions), device=positions.device) - starts[row]
        width = max(int(counts.max()), 1) if len(positions) else 1
        # padding slots repeat a computed position of the row (or 0 for a row with none): harmless queries
        last_of_row = (positions % seq_length).new_zeros(batch_size).index_put((row,), positions % seq_length)
        self.index = last_of_row[:, None].repeat(1, width)
        self.index[row, self.slot] = positions % seq_length

    def scatter(self, rows: torch.Tensor) -> torch.Tensor:
        flat = rows.new_zeros(self.batch_size * self.seq_length, rows.shape[-1])
        flat = flat.index_copy(0, self.positions, rows[self.row, self.slot])
        return flat.view(self.batch_size, self.seq_length, rows.shape[-1])
