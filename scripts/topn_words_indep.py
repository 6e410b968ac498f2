#!/usr/bin/env python3
"""Nearest neighbours of words by cosine in the word embedding matrix.

The code and the full usage are in uer/tools/neighbours.py (``python3 scripts/topn_words_indep.py --help``).
"""
from uer.tools.neighbours import topn_indep_main

if __name__ == "__main__":
    topn_indep_main()
