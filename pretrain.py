#!/usr/bin/env python3
"""Pre-train an embedding + encoder + target model on a dataset written by preprocess.py.

The code and the full usage are in uer/cli/pretrain.py (``python3 pretrain.py --help``).
"""
from uer.cli.pretrain import main

if __name__ == "__main__":
    main()
