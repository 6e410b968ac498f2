"""Encoder components. ``str2encoder`` is the one list of encoder names.

Adding an encoder = one new module here with ``@register("name")`` + one import line below.
"""
from __future__ import annotations

from uer.encoders.base import Encoder, register, str2encoder
from uer.encoders.transformer_encoder import TransformerEncoder

__all__ = ["Encoder", "TransformerEncoder", "register", "str2encoder"]
