"""Pre-training objectives. ``str2target`` lists the single objectives; composite names used on the
command line (``bert`` = mlm + sp, ``albert`` = mlm + sp on sentence-order data) are dataset kinds: each
instance builder (``uer.data.pretrain_instances.str2instances``) declares the objectives it trains. A new
objective's name also goes in ``uer/names.py`` (``TARGETS``).
"""
from __future__ import annotations

from uer.targets.base import Target, TargetOutput, Targets, register, str2target
from uer.targets.mlm_target import MlmTarget
from uer.targets.sp_target import SpTarget
from uer.targets.lm_target import LmTarget
from uer.targets.bilm_target import BilmTarget
from uer.targets.cls_target import ClsTarget
from uer.targets.sentence_targets import SdTarget, SrTarget
from uer.targets.ernie_targets import CapTarget, DlmTarget, DrTarget, IrTarget, TdrTarget
from uer.names import TARGETS
from uer.registry import check_complete

check_complete(str2target, TARGETS, "uer.targets")

__all__ = ["BilmTarget", "CapTarget", "ClsTarget", "DlmTarget", "DrTarget", "IrTarget", "TdrTarget", "LmTarget", "MlmTarget", "SdTarget", "SpTarget", "SrTarget", "Target", "TargetOutput", "Targets",
           "register", "str2target"]
