#!/usr/bin/env python3
"""Bayesian-optimisation search of LightGBM's hyper-parameters by cross-validation on out-of-fold features.

The code and the full usage are in uer/tools/stacking.py (``python3 scripts/run_lgb_cv_bayesopt.py --help``).
"""
from uer.tools.stacking import bayesopt_main

if __name__ == "__main__":
    bayesopt_main()
