#!/usr/bin/env python3
"""Turn a raw Chinese corpus (or People's Daily word/tag text) into space-separated words, BERT corpus format.

The code and the full usage are in uer/tools/segment.py (``python3 scripts/segment_corpus.py --help``).
"""
from uer.tools.segment import main

if __name__ == "__main__":
    main()
