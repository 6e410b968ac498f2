"""Embedding components. ``str2embedding`` is the one list of names (config, argparse and builder use it).

An embedding in the config is a list of parts, e.g. ``["word", "pos", "seg"]``; their outputs are
summed, then layer-normalised and dropped out by :class:`uer.embeddings.embedding.Embedding`.
"""
from __future__ import annotations

from uer.embeddings.base import EmbeddingPart, register, str2embedding
from uer.embeddings.pos_embedding import PosEmbedding
from uer.embeddings.seg_embedding import SegEmbedding
from uer.embeddings.sinusoidalpos_embedding import SinusoidalposEmbedding
from uer.embeddings.word_embedding import WordEmbedding
from uer.embeddings.embedding import Embedding
from uer.names import EMBEDDINGS
from uer.registry import check_complete

check_complete(str2embedding, EMBEDDINGS, "uer.embeddings")

__all__ = ["Embedding", "EmbeddingPart", "PosEmbedding", "SegEmbedding", "SinusoidalposEmbedding", "WordEmbedding", "register", "str2embedding"]
