"""Encoder components. ``str2encoder`` is the one list of encoder names.

Adding an encoder = one new module here with ``@register("name")`` + one import line below + its name in
``uer/names.py`` (``ENCODERS``, what argparse offers without importing torch).
"""
from __future__ import annotations

from uer.encoders.base import Encoder, register, str2encoder
from uer.encoders.transformer_encoder import TransformerEncoder
from uer.encoders.rnn_encoder import GruEncoder, LstmEncoder, RnnEncoder
from uer.encoders.birnn_encoder import BigruEncoder, BilstmEncoder, BirnnEncoder
from uer.encoders.cnn_encoder import CnnEncoder
from uer.encoders.gatedcnn_encoder import GatedcnnEncoder
from uer.encoders.attn_encoder import AttnEncoder
from uer.encoders.rcnn_encoder import RcnnEncoder
from uer.encoders.crnn_encoder import CrnnEncoder
from uer.encoders.synt_encoder import SyntEncoder
from uer.names import ENCODERS
from uer.registry import check_complete

check_complete(str2encoder, ENCODERS, "uer.encoders")

__all__ = ["AttnEncoder", "BigruEncoder", "BilstmEncoder", "BirnnEncoder", "CnnEncoder", "CrnnEncoder", "Encoder",
           "GatedcnnEncoder", "GruEncoder", "LstmEncoder", "RcnnEncoder", "RnnEncoder", "SyntEncoder",
           "TransformerEncoder", "register", "str2encoder"]
