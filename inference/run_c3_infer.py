#!/usr/bin/env python3
"""Predict the choice of every question of a C3-format file with a model fine-tuned by run_c3.py.

The code and the full usage are in uer/cli/run_c3_infer.py (``python3 inference/run_c3_infer.py --help``).
"""
from uer.cli.run_c3_infer import main

if __name__ == "__main__":
    main()
