#!/usr/bin/env python3
"""Context-dependent nearest neighbours: candidates substituted into the sentence, hidden states compared.

The code and the full usage are in uer/tools/neighbours.py (``python3 scripts/topn_words_dep.py --help``).
"""
from uer.tools.neighbours import topn_dep_main

if __name__ == "__main__":
    topn_dep_main()
