#!/usr/bin/env python3
"""Predict every task's label with a multi-task classifier (run_classifier_mt.py).

The code and the full usage are in uer/cli/run_classifier_mt_infer.py (``python3 inference/run_classifier_mt_infer.py --help``).
"""
from uer.cli.run_classifier_mt_infer import main

if __name__ == "__main__":
    main(prog="run_classifier_mt_infer.py")
