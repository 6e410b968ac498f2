#!/usr/bin/env python3
"""Sentence vectors for every input line (UER-py's newer name; default --pooling first, --whitening_size).

The code and the full usage are in uer/tools/features.py (``python3 scripts/extract_features.py --help``).
"""
from uer.tools.features import main

if __name__ == "__main__":
    main(prog="extract_features.py", default_pooling="first")
