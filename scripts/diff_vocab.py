#!/usr/bin/env python3
"""What two vocabularies share and where they differ.

The code and the full usage are in uer/tools/vocab_tools.py (``python3 scripts/diff_vocab.py --help``).
"""
from uer.tools.vocab_tools import diff_main

if __name__ == "__main__":
    diff_main()
