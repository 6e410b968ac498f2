#!/usr/bin/env python3
"""The encoder's output for every input line (default: per-token hidden states; --pooling for sentence vectors).

The code and the full usage are in uer/tools/features.py (``python3 scripts/extract_feature.py --help``).
"""
from uer.tools.features import main

if __name__ == "__main__":
    main(prog="extract_feature.py", default_pooling="none")
