#!/usr/bin/env python3
"""Build a vocabulary from a corpus (special tokens, then tokens by count; --processes_num workers).

The code and the full usage are in uer/tools/build_vocab.py (``python3 scripts/build_vocab.py --help``).
"""
from uer.tools.build_vocab import main

if __name__ == "__main__":
    main()
