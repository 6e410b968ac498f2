#!/usr/bin/env python3
"""Build a pre-training dataset from a corpus (UER-py's preprocess.py command line).

The code and the full usage are in uer/cli/preprocess.py (``python3 preprocess.py --help``).
"""
import sys

from uer.cli.preprocess import main

if __name__ == "__main__":
    sys.exit(main())
