#!/usr/bin/env python3
"""LightGBM over the concatenated out-of-fold features of several models (stacking); evaluates and predicts a test set.

The code and the full usage are in uer/tools/stacking.py (``python3 scripts/run_lgb.py --help``).
"""
from uer.tools.stacking import run_lgb_main

if __name__ == "__main__":
    run_lgb_main()
